"""Plans of the sync tools' operations (activities/drivers/operations/sync_tools.py):
InSync or AllSync started or stopped through its service, and InSync's direction."""

from __future__ import annotations

from activities.drivers.plans import Plan, change, nothing
from activities.drivers.refusals import insync_direction_running
from inventory.models import Side, other


def tool_set(label: str, host: str, service: str, running: bool | None, run: bool) -> Plan:
    """`label` (InSync or AllSync) on `host`, whose process runs or not, started or
    stopped through `service`."""
    if running == run:
        return nothing(f"{label} already {'running' if run else 'stopped'} on {host}")
    verb = "start" if run else "stop"
    return change(
        host,
        f"{verb} {label} on {host} (its service)",
        f"{label} {'started' if run else 'stopped'} on {host} (service {service})",
    )


def insync_set_main(
    host: str,
    process: str,
    running: bool,
    now: Side | None,
    main: Side,
    same_cfg: bool | None,
) -> Plan:
    """InSync on `host` set to copy `main` -> the other side: its registry's direction
    (`now`) and Insync.cfg the template's copy (`same_cfg`; None: not read, as in a dry
    run). Refused while InSync's `process` runs (overridable)."""
    o = other(main)
    if now == main and same_cfg is not False:
        unless = "" if same_cfg else " by its registry"
        return nothing(f"InSync on {host} already copies {main} -> {o}{unless}")
    return change(
        host,
        f"set InSync on {host} to copy {main} -> {o}",
        f"InSync on {host} set to copy {main} -> {o}",
        insync_direction_running(process, running),
    )
