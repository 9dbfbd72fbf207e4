"""Every safety rule the service keeps, in one table: what it protects, whether an
operator may force it (break-glass: `--override RULE --reason ...`), and where it is
enforced.

The drivers, the control workflow and the CLI all take rule names and the
overridable/absolute verdict from here, so a rule cannot be overridable in one place
and absolute in another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

RULE_REPLICATION_FROM_MAIN = "replication-only-from-main"
RULE_REPLICATION_PEER_BACKUP = "replication-only-to-backup-peer"
RULE_INSYNC_STOPPED = "insync-direction-only-while-stopped"
RULE_BROWSE_STOPPED = "browse-switch-only-stopped"
RULE_CLIENT_BRIDGE = "client-switch-needs-bridge"
RULE_CLIENT_WRITE_FILTER = "client-switch-not-under-write-filter"
RULE_PURGE_BACKUP_ONLY = "purge-only-on-backup-volume"
RULE_CONTROL_ALONGSIDE_RUN = "control-alongside-run"
RULE_ONE_WORKFLOW_PER_PAIR = "one-workflow-per-pair"
RULE_MAIN_NOT_REPLICATED_ONTO = "main-only-when-not-replicated-onto"
RULE_NO_SWITCH_IN_BLACKOUT = "no-switch-in-blackout"


@dataclass(frozen=True)
class Rule:
    name: str
    protects: str  # one sentence an operator understands
    overridable: bool
    enforced: str  # where in the code, and by what

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


RULES: tuple[Rule, ...] = (
    Rule(
        RULE_CONTROL_ALONGSIDE_RUN,
        "a console control does not change devices under a running switch, split or restore "
        "unless it mends that run's failed step",
        True,
        "control workflow (workflows/control.py), before anything is done",
    ),
    Rule(
        RULE_NO_SWITCH_IN_BLACKOUT,
        "no switch, split or restore starts, and no client is restarted, during an on-air "
        "blackout window of the inventory (a client's restart waits for the window's end)",
        True,
        "the run as it starts and each client batch before a restart (workflows/base.py, "
        "workflows/client_switch.py, over workflows/blackout.py)",
    ),
    Rule(
        RULE_INSYNC_STOPPED,
        "InSync is not re-pointed while it copies, so a copy in progress does not turn round",
        True,
        "InSync driver on the Control Point PC "
        "(activities/drivers/operations/sync_tools.py insync_set_main)",
    ),
    Rule(
        RULE_BROWSE_STOPPED,
        "a Browse component's config files are not swapped under its running services",
        True,
        "Browse driver (activities/drivers/operations/browse.py browse_switch)",
    ),
    Rule(
        RULE_CLIENT_BRIDGE,
        "a client is not taken off its volume unless it answers on the new side's bridge "
        "K2 server's iSCSI port",
        True,
        "client driver (activities/drivers/operations/clients.py client_prepare)",
    ),
    Rule(
        RULE_CLIENT_WRITE_FILTER,
        "a client whose system drive a write filter protects (UWF on C:, or an FBWF/EWF "
        "whose state amsm cannot read) is not switched: the restart would discard the switch",
        True,
        "client driver (activities/drivers/operations/clients.py client_prepare)",
    ),
    Rule(
        RULE_REPLICATION_FROM_MAIN,
        "replication never copies a backup DSM's database over the other DSM",
        False,
        "DSM driver (activities/drivers/dsm.py start_replication)",
    ),
    Rule(
        RULE_REPLICATION_PEER_BACKUP,
        "replication never runs while both DSMs are main (split): it would overwrite a main "
        "database",
        False,
        "DSM driver (activities/drivers/dsm.py start_replication)",
    ),
    Rule(
        RULE_MAIN_NOT_REPLICATED_ONTO,
        "a DSM is never made main while replication still copies the other DSM's database "
        "onto it: the copy would go on overwriting what editors write to the new main",
        False,
        "DSM driver (activities/drivers/dsm.py set_mode)",
    ),
    Rule(
        RULE_PURGE_BACKUP_ONLY,
        "material is never deleted on the main side's volume, nor a clip the main side has, "
        "nor anything outside V:\\VibrantAVIFiles",
        False,
        "media driver (activities/drivers/operations/media.py purge_orphans)",
    ),
    Rule(
        RULE_ONE_WORKFLOW_PER_PAIR,
        "two switches, splits or restores never drive the same pair at once",
        False,
        "Temporal: the fixed workflow id amsm-<pair> with conflict policy fail (amsm start); "
        "every run and control refuses to run under any other id (workflows/base.py, "
        "workflows/control.py)",
    ),
)

BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
OVERRIDABLE: tuple[str, ...] = tuple(r.name for r in RULES if r.overridable)


def is_overridable(name: str) -> bool:
    rule = BY_NAME.get(name)
    return rule is not None and rule.overridable


def override_refusal(name: str) -> str | None:
    """Why `name` cannot be overridden (unknown or absolute), or None when it can."""
    rule = BY_NAME.get(name)
    if rule is None:
        return f"unknown rule {name!r}; rules that can be overridden: {', '.join(OVERRIDABLE)}"
    if not rule.overridable:
        return (
            f"rule {name!r} cannot be overridden: it protects absolutely ({rule.protects}); "
            "see `amsm rules`"
        )
    return None
