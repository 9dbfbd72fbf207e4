"""The step tables of shared/WORKFLOWS.md, with their ids, for either direction."""

from __future__ import annotations

from typing import Any

from inventory.models import Side
from workflows.models import StepDef


def switch_steps(a: Side, b: Side) -> list[StepDef]:
    """switch (A main -> B main), manual chapter 4: 18 steps."""
    la, lb = a.lower(), b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM; both DSMs report stopped"),
        (f"dsm-{la}-backup", "auto", f"{a}'s DSM to backup"),
        ("stop-browse", "auto", "Stop all Browse components"),
        ("switch-browse", "auto", f"Switch all Browse components to {b} (do not start)"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"insync-{lb}-main", "auto", f"Set InSync direction {b} -> {a}"),
        (
            f"smartbins-{la}-backup",
            "auto",
            f"{a}'s SmartBins to backup (pseudo on the PseudoSmartBins host)",
        ),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        ("switch-clients", "auto", f"Switch every client on {a} to {b}, in parallel"),
        ("check-projects", "manual", f"Open a few Aurora projects on {b} and check them"),
        ("start-browse", "auto", f"Start all Browse components; Browse Active on {b}"),
        (f"verify-{lb}", "manual", f"Record on {b}, edit a project on {b}, verify Browse"),
        (
            "approve-overwrite",
            "gate",
            f"From here on {a}'s database and media are overwritten from {b}",
        ),
        ("start-replication", "auto", f"Start replication on {b}'s DSM; {b} master, {a} backup"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {b}'s NAS head"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


# An unplanned switch (workflows/unplanned.py): the steps it does not do, and the steps
# that act on the lost side A (tried once; a failure skips them as "side lost").
NOT_UNPLANNED = ("approve-overwrite", "start-replication", "start-insync", "start-allsync")


def lost_side_steps(a: Side) -> tuple[str, ...]:
    la = a.lower()
    return ("stop-replication", f"dsm-{la}-backup", "stop-allsync", f"smartbins-{la}-backup")


def split_switch_steps(a: Side, b: Side) -> list[StepDef]:
    """split-switch (A main -> B main in stages, pilots first), manual chapter 5."""
    la, lb = a.lower(), b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main: both DSMs main, the pair is split"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        ("switch-pilots", "auto", f"Switch the pilot client(s) to {b}"),
        ("verify-pilots", "manual", f"Record and edit on {b} with the pilots (may take days)"),
        ("stop-browse", "auto", "Stop all Browse components"),
        ("switch-browse", "auto", f"Switch all Browse components to {b} (do not start)"),
        (f"dsm-{la}-backup", "auto", f"{a}'s DSM to backup"),
        (f"smartbins-{la}-backup", "auto", f"{a}'s SmartBins to backup"),
        ("switch-clients", "auto", f"Switch the remaining clients on {a} to {b}"),
        (
            "approve-overwrite",
            "gate",
            f"From here on {a}'s database and media are overwritten from {b}",
        ),
        ("start-replication", "auto", f"Start replication on {b}'s DSM; {b} master, {a} backup"),
        (f"insync-{lb}-main", "auto", f"Set InSync direction {b} -> {a}"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {b}'s NAS head"),
        ("start-browse", "auto", f"Start all Browse components; Browse Active on {b}"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def split_steps(a: Side, b: Side) -> list[StepDef]:
    """split (A stays main, B becomes independent), manual chapter 6."""
    lb = b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main: both DSMs main, the pair is split"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        (
            "move-editors",
            "manual",
            "Name the clients to move to the other side (or none); the service moves them",
        ),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


# The gates that may be skipped, and what a skip passes over with them. Skipping
# approve-purge keeps the orphans (nothing is deleted); approve-overwrite has no such
# entry anywhere: only an approval passes it.
RESTORE_GATES: dict[str, tuple[str, ...]] = {"approve-purge": ("purge-orphans",)}


def restore_steps(m: Side, o: Side) -> list[StepDef]:
    """restore (rejoin with M main, O the other side), manual chapter 7."""
    lm, lo = m.lower(), o.lower()
    rows = [
        ("find-orphans", "auto", f"List master clips in {o}'s SmartBins folders that {m} lacks"),
        ("approve-purge", "gate", f"Approve deleting those orphan clips on {o} only"),
        ("purge-orphans", "auto", f"Delete the orphans on {o}'s volume (never on {m}'s)"),
        (f"smartbins-{lo}-backup", "auto", f"{o}'s SmartBins to backup"),
        ("switch-clients", "auto", f"Switch every client on {o} to {m}"),
        (f"dsm-{lo}-backup", "auto", f"{o}'s DSM to backup"),
        ("approve-overwrite", "gate", f"{o}'s database will be overwritten by {m}'s"),
        ("start-replication", "auto", f"Start replication on {m}'s DSM; wait for the asset counts"),
        (f"insync-{lm}-main", "auto", f"Set InSync direction {m} -> {o}"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {m}'s NAS head"),
        (f"browse-to-{lm}", "auto", f"Browse Active on {m} (stop, switch, start if it is not)"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


# The activities that verify a manual step, and the tool each one reads.
VERIFY_ACTIVITIES = {"insync_state": "InSync", "allsync_state": "AllSync"}


def steps_for_activity(activity_type: str, inp: dict[str, Any]) -> list[str]:
    """The steps an activity can belong to, from its type and input (the step table,
    read backwards): for reports rebuilt from histories and for the worker's logs."""
    side = str(inp.get("side") or "").lower()
    running = inp.get("running")
    t = activity_type
    if t == "dsm_set_mode":
        return [f"dsm-{side}-{inp.get('mode')}"]
    per_side = {
        "insync_set_main": "insync-{}-main",
        "smartbins_set_backup": "smartbins-{}-backup",
        "smartbins_set_main": "smartbins-{}-main",
    }
    if t in per_side:
        return [per_side[t].format(side)]
    if t == "browse_move":
        return [f"browse-to-{str(inp.get('to') or '').lower()}"]
    if t in ("insync_run", "allsync_run"):
        tool = t.split("_")[0]
        return [f"{'start' if running else 'stop'}-{tool}"]
    if t in VERIFY_ACTIVITIES:
        tool = t.split("_")[0]
        return [f"stop-{tool}", f"start-{tool}"]
    return {
        "dsm_stop_replication": ["stop-replication"],
        "dsm_stop_own_replication": ["stop-replication"],
        "dsm_start_replication": ["start-replication"],
        "dsm_wait_in_sync": ["start-replication"],
        "browse_stop": ["stop-browse"],
        "browse_switch": ["switch-browse"],
        "browse_start": ["start-browse"],
        "find_orphans": ["find-orphans"],
        "purge_orphans": ["purge-orphans"],
        # restore and split-switch read the pair again before they move the clients
        "probe_pair": ["switch-clients"],
        # the random tag of the child workflow ids, drawn as the first clients move
        "new_tag": ["switch-clients", "switch-pilots", "move-editors"],
    }.get(t, [])
