"""Plans of a DSM's operations (activities/drivers/dsm.py executes them): its mode, and
replication stopped or started, from the mode and replication each DSM reported itself."""

from __future__ import annotations

from activities.drivers.plans import Blocked, Plan, change, nothing
from activities.drivers.refusals import main_while_replicated_onto, replication_from


def set_mode(
    dsm: str, mode: str, now: str | None, replication: str | None, role: str | None
) -> Plan:
    """DSM `dsm`, in mode `now` with its replication `replication` as `role`, set to
    `mode`. Making it main is refused while replication still copies onto it (rule
    main-only-when-not-replicated-onto), checked before "already": a DSM that reads main
    while it is replicated onto is never "already main"."""
    refusal = main_while_replicated_onto(dsm, replication, role) if mode == "main" else None
    if now == mode and refusal is None:
        return nothing(f"DSM {dsm} is already {mode}")
    return change(dsm, f"set DSM {dsm} to {mode}", f"DSM {dsm} set to {mode}", refusal)


def stop_replication(
    dsm: str,
    state: str | None,
    role: str | None,
    peer: str | None = None,
    peer_state: str | None = None,
    peer_role: str | None = None,
) -> Plan:
    """Replication stopped on DSM `dsm` (its job in `state` as `role`) and, given its
    `peer` (None: it is lost), the peer's backup replication too (the manual: stopping
    on the main stops the backup's processes)."""
    if state == "running":
        plan = change(
            dsm,
            f"stop replication on DSM {dsm} (running as {role})",
            f"replication stopped on DSM {dsm}",
        )
    elif state == "failed":
        plan = nothing(f"replication is not running on DSM {dsm} (its last run failed)")
    else:
        plan = nothing(f"replication is already stopped on DSM {dsm}")
    if peer is not None and role != "backup" and (peer_state, peer_role) == ("running", "backup"):
        plan = plan.then(
            change(
                peer,
                f"stop replication on its backup {peer}",
                f"replication stopped on its backup {peer}",
            )
        )
    return plan


# The name a dry run gives a replication job that blocks a start (`REFUSED by ...`).
REPLICATION_RUNNING = "replication-running"


def runs_as(dsm: str, role: str | None, wanted: str) -> Blocked:
    """DSM `dsm` runs replication as `role`, where a start needs it `wanted` or stopped:
    its job must be stopped first (amsm never stops a job it did not plan to)."""
    return Blocked(
        dsm,
        f"DSM {dsm} runs replication as {role}, not as {wanted}; stop it first "
        "(amsm replication stop)",
        REPLICATION_RUNNING,
    )


def join_as_backup(dsm: str, state: str | None, role: str | None) -> Plan:
    """DSM `dsm` made to receive replication (its own backup job). Called after the
    master's plan, which holds the interlocks. Blocked while `dsm` runs replication in
    another role (a master job of its own would leave both DSMs replicating as masters)."""
    if (state, role) == ("running", "backup"):
        return nothing(f"{dsm} already runs as replication backup")
    plan = change(dsm, f"run {dsm} as replication backup", f"{dsm} runs as replication backup")
    if state == "running":
        return Plan(plan.items, blocked=runs_as(dsm, role, "backup"))
    return plan


def start_replication(
    dsm: str,
    mode: str | None,
    state: str | None,
    role: str | None,
    peer: str,
    peer_mode: str | None,
    peer_state: str | None,
    peer_role: str | None,
) -> Plan:
    """Replication started FROM DSM `dsm` onto `peer`: its master job, then the peer's
    backup job. Refused unless `dsm` is main and `peer` backup (both rules absolute);
    then blocked, before the master job starts, while `dsm` runs replication as anything
    but master, or `peer` as anything but backup (sp_start_job starts a job at once,
    Microsoft Learn: a check after it would come too late)."""
    refusal = replication_from(dsm, mode, peer, peer_mode)
    if state == "running" and role == "master":
        mine = nothing(f"replication already runs from DSM {dsm}")
    else:
        mine = change(
            dsm,
            f"start replication from DSM {dsm} to {peer}",
            f"replication started from DSM {dsm} to {peer}",
        )
        if state == "running":
            mine = Plan(mine.items, blocked=runs_as(dsm, role, "master"))
    both = mine.then(join_as_backup(peer, peer_state, peer_role))
    return Plan(both.items, refusal, both.blocked)
