"""What steps mean across the kinds: the steps an unplanned switch passes over or tries once,
and which steps an activity can belong to. Each kind's own step table is in its module
(workflows/switch.py, split.py, split_switch.py, restore.py)."""

from __future__ import annotations

from typing import Any

from inventory.models import Side

# An unplanned switch (workflows/unplanned.py): the steps it does not do, and the steps
# that act on the lost side A (tried once; a failure skips them as "side lost").
NOT_UNPLANNED = ("approve-overwrite", "start-replication", "start-insync", "start-allsync")


def lost_side_steps(a: Side) -> tuple[str, ...]:
    la = a.lower()
    return ("stop-replication", f"dsm-{la}-backup", "stop-allsync", f"smartbins-{la}-backup")


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
