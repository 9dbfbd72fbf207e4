"""The interlocks' decisions, pure: given what a driver read, the rule that refuses the
operation and its sentence, or None. The drivers refuse with them (Overrides.refuse);
the dry run (`amsm start ... --dry-run`, workflows/preview.py) asks the same questions
of the devices as a run would leave them, so a refusal is worded and decided once.

No I/O and no device library: the workflows import this module."""

from __future__ import annotations

from dataclasses import dataclass

from inventory.rules import (
    RULE_BROWSE_STOPPED,
    RULE_CLIENT_BRIDGE,
    RULE_CLIENT_WRITE_FILTER,
    RULE_INSYNC_STOPPED,
    RULE_MAIN_NOT_REPLICATED_ONTO,
    RULE_REPLICATION_FROM_MAIN,
    RULE_REPLICATION_PEER_BACKUP,
)


@dataclass(frozen=True)
class Refusal:
    rule: str
    refusal: str  # what the interlock says when it refuses
    forced: str  # what the operation's message says when the rule is overridden


def main_while_replicated_onto(
    dsm: str, replication: str | None, role: str | None
) -> Refusal | None:
    """Making DSM `dsm` main, with its replication `replication` as `role`."""
    copying = replication == "running" and role != "master"
    if not (copying or replication is None):
        return None
    return Refusal(
        RULE_MAIN_NOT_REPLICATED_ONTO,
        f"replication still copies onto DSM {dsm} (replication {replication}, "
        f"{role or 'no role'}); stop it first (amsm replication stop)",
        "",
    )


def replication_from(
    dsm: str, mode: str | None, peer: str, peer_mode: str | None
) -> Refusal | None:
    """Starting replication from DSM `dsm` (in `mode`) onto `peer` (in `peer_mode`)."""
    if mode != "main":
        return Refusal(
            RULE_REPLICATION_FROM_MAIN,
            f"replication starts only from a main DSM; {dsm} is {mode}",
            f"DSM {dsm} was {mode}",
        )
    if peer_mode != "backup":
        return Refusal(
            RULE_REPLICATION_PEER_BACKUP,
            f"the peer DSM {peer} is {peer_mode}; replication would overwrite a main "
            "database (split mode)",
            f"the peer DSM {peer} was {peer_mode}",
        )
    return None


def browse_switch_running(component: str, running: list[str]) -> Refusal | None:
    """Swapping the config files of Browse `component` whose services `running` run."""
    if not running:
        return None
    return Refusal(
        RULE_BROWSE_STOPPED,
        f"Browse {component} switches only when stopped; running: {', '.join(running)}",
        f"Browse {component} was running ({', '.join(running)})",
    )


def insync_direction_running(process: str, running: bool) -> Refusal | None:
    """Changing the InSync direction while its process `process` runs (or not)."""
    if not running:
        return None
    return Refusal(
        RULE_INSYNC_STOPPED,
        f"the InSync direction changes only while InSync is stopped; {process} is running",
        f"InSync ({process}) was running",
    )


def client_without_bridge(
    host: str, to: str, bridge: str, portals: list[str], port: int, reached: list[str]
) -> Refusal | None:
    """Taking client `host` off its volume towards `to` when it reaches `reached` of the
    portals of `to`'s bridge K2 server (a client already logged in to `to` is not asked)."""
    if reached:
        return None
    return Refusal(
        RULE_CLIENT_BRIDGE,
        f"{host} cannot reach {to}'s bridge K2 server {bridge} "
        f"at its iSCSI portal {', '.join(portals)} on port {port}",
        f"{host} did not reach {', '.join(portals)} on port {port}",
    )


# What to tell a site, per write filter: how to see it and turn it off for the next boot
# (Microsoft Learn: `uwfmgr filter disable` / `enable`, effective at the next restart;
# Windows Embedded Standard 7: `fbwfmgr /displayconfig`, `/disable`, `/enable`;
# `ewfmgr C:`, `ewfmgr C: -disable`, `-enable`).
WRITE_FILTER_HELP = {
    "UWF": ("uwfmgr get-config", "uwfmgr filter disable", "uwfmgr filter enable"),
    "FBWF": ("fbwfmgr /displayconfig", "fbwfmgr /disable", "fbwfmgr /enable"),
    "EWF": ("ewfmgr C:", "ewfmgr C: -disable", "ewfmgr C: -enable"),
}


def client_under_write_filter(
    host: str,
    installed: list[str],
    uwf_on: bool | None,
    uwf_protected: list[str],
    drives: list[str],
) -> Refusal | None:
    """Switching client `host`, whose switch writes to `drives` (C: for the registry and
    the iSCSI initiator's settings, the fsnameservers file's drive), with the write
    filters `installed` (UWF: on in this session or not, the drives it protects now).

    A protected drive keeps nothing past the restart the switch makes. UWF's state is
    read; FBWF's and EWF's is not (no WMI provider), so an installed one refuses too:
    an operator who checked that it is off overrides."""
    hit = [d for d in drives if d.upper() in uwf_protected] if uwf_on else []
    blind = [f for f in installed if f != "UWF"]
    if not hit and not blind:
        return None
    also = ""
    if hit:
        show, off, on = WRITE_FILTER_HELP["UWF"]
        what = f"UWF protects {', '.join(hit)} on {host} in this session"
        if not blind:
            also = " (or set devices.uwf_off_for_switch: true, and the switch does it)"
    else:
        show, off, on = WRITE_FILTER_HELP[blind[0]]
        what = (
            f"{' and '.join(blind)} {'is' if len(blind) == 1 else 'are'} installed on {host} "
            f"and amsm cannot read whether {'it protects' if len(blind) == 1 else 'they protect'} "
            f"{', '.join(drives)}"
        )
    return Refusal(
        RULE_CLIENT_WRITE_FILTER,
        f"{what}: the switch's changes there (iSCSI logins, fsnameservers, Aurora DSM "
        f"pointer) would be discarded at its restart. Check it ({show}), turn it off for the "
        f"next boot ({off}) and restart {host}, switch it, then turn it on again ({on}) and "
        f"restart it{also}",
        f"{what} (the operator says it is off)",
    )
