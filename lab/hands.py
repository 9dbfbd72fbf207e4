"""The operator's hands: what a person does at a real device for the manual steps.

K2 InSync is a desktop application and AllSync's scheduler is started by hand, so
the workflows ask an operator to stop and start them and then verify the result
over PowerShell. In the lab these functions are that operator: they edit lab.db
directly (one transaction each; no connection to `amsm lab serve` is needed).

Each returns a sentence; each refuses (LabError) a host that is down, because
nobody can start an application on a machine that is restarting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab import LabError
from lab.powershell import is_up
from lab.state import LabState, Txn


def _set_process(txn: Txn, host: str, process: str, label: str, running: bool) -> str:
    doc: dict[str, Any] = txn.require_host(host)
    name = doc["name"]
    if not is_up(doc):
        raise LabError(f"{name} is restarting; try again when it is up")
    procs: list[str] = doc.setdefault("processes", [])
    was_running = any(p.lower() == process.lower() for p in procs)
    if running == was_running:
        return f"{label} was already {'running' if running else 'stopped'} on {name}"
    if running:
        procs.append(process)
        return f"{label} started on {name}"
    doc["processes"] = [p for p in procs if p.lower() != process.lower()]
    return f"{label} stopped on {name}"


def set_insync(directory: str | Path, running: bool) -> str:
    """Open (running=True) or close K2 InSync on the Control Point PC."""
    with LabState(directory).transaction() as txn:
        topo = txn.topology
        process = topo["devices"]["insync_process"]
        return _set_process(txn, topo["control_point"], process, "InSync", running)


def set_allsync(directory: str | Path, side: str, running: bool) -> str:
    """Start or stop AllSync on `side`'s CIFS NAS head; refuses a side other than X or Y."""
    side = side.upper()
    with LabState(directory).transaction() as txn:
        topo = txn.topology
        if side not in topo["sides"]:
            raise LabError(f"no side {side!r}; the sides are X and Y")
        host = topo["sides"][side]["nas_cifs"]
        process = topo["devices"]["allsync_process"]
        return _set_process(txn, host, process, "AllSync", running)


def do_manual_step(
    directory: str | Path, step: str, to: str, stop_allsync_on: str | None = None
) -> str:
    """What the operator does at the device before ticking a manual step.

    `to` is the side that is main at the end of the run: AllSync starts on its NAS
    head, and stops on the other side's (or on `stop_allsync_on`). Steps with nothing
    to do at a device (gates, other manual steps) return an empty sentence.
    """
    other = {"X": "Y", "Y": "X"}[to.upper()]
    if step == "stop-insync":
        return set_insync(directory, running=False)
    if step == "start-insync":
        return set_insync(directory, running=True)
    if step == "stop-allsync":
        return set_allsync(directory, stop_allsync_on or other, running=False)
    if step == "start-allsync":
        return set_allsync(directory, to, running=True)
    return ""
