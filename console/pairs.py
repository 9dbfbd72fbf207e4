"""The console's view of each pair: what its JSON answers say (the same as `amsm status
--json` and `amsm show current --json`) and the one live subscription per pair.

One poller per pair, shared by every open browser: while anyone watches the pair, it
looks at the current run twice a second (a describe, which the server answers) and asks
its checklist (a query, which the worker answers) only when its history grew, and reads
the pair's watch (a query) every two seconds, and wakes every subscriber when either changed. Browsers
then draw from this snapshot; twenty consoles cost Temporal and the worker what one
costs. The poller stops when the last browser leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from client.commands.show import show_data
from client.commands.status import status_view
from client.runs import (
    fetch_checklist,
    read_status,
    read_watched_status,
    resolve_run,
)
from client.session import CliError
from inventory.models import Inventory
from inventory.status import PairStatus
from workflows.models import Checklist
from workflows.watch import watch_workflow_id

log = logging.getLogger("amsm.console")

CHECKLIST_EVERY = 0.5  # seconds: a step change shows within a second
STATUS_EVERY = 2.0  # the watch itself reads the devices every timing.status_interval
# A poll that takes longer than this is abandoned and tried again at the next tick.
READ_TIMEOUT = 5.0


async def status_json(client: Client, inv: Inventory, act: bool) -> dict[str, Any]:
    """`amsm status --json` of the pair (client/commands/status.py's own): read from the
    devices now by whoever may act; a viewer gets what the pair's watch last read, with
    `read` saying when; the waiting fence and the readiness watch's verdict."""
    if act:
        st, when = await read_status(client, inv), None
    else:
        st, when = await read_watched_status(client, inv)
    return (await status_view(client, inv, st, when))[0]


async def checklist_of(client: Client, inv: Inventory, run: str = "current") -> Checklist:
    """The checklist of RUN (an id, a prefix or 'current'), as `amsm show` reads it."""
    return await fetch_checklist(await resolve_run(client, inv, run))


async def show_json(client: Client, inv: Inventory, run: str = "current") -> dict[str, Any]:
    """`amsm show RUN --json`."""
    return (await show_data(client, inv, run))[0]


def no_run(e: CliError) -> bool:
    """The pair has never had a run (no workflow amsm-<pair>)."""
    return str(e).startswith("no such run")


@dataclass
class Snapshot:
    """What the console last read of a pair; `version` grows with every change."""

    version: int = 0
    status: PairStatus | None = None
    status_when: str = ""  # when the status was read, and by whom
    status_error: str | None = None
    checklist: Checklist | None = None
    checklist_error: str | None = None
    # the checklist's JSON, to tell a change
    _seen: tuple[str, str] = ("", "")


@dataclass
class PairLive:
    inv: Inventory
    snapshot: Snapshot = field(default_factory=Snapshot)
    subscribers: set[asyncio.Event] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    reads: int = 0  # Temporal calls made by the poller (the benchmark and tests read it)
    queries: int = 0  # of which checklist queries the worker answered
    seen: tuple[str | None, int, Any] | None = None  # (run, history length, status) last asked
    seen_watch: tuple[str | None, int, Any] | None = None  # the same, of the pair's watch


class Hub:
    """The pairs the console serves, each with its shared poller."""

    def __init__(self, client: Client, inventories: list[Inventory]) -> None:
        self.client = client
        self.pairs: dict[str, PairLive] = {inv.pair: PairLive(inv) for inv in inventories}

    def inventory(self, pair: str) -> Inventory | None:
        live = self.pairs.get(pair)
        return live.inv if live else None

    # -- reading ------------------------------------------------------------------------------
    async def refresh(self, pair: str, status: bool = True, fresh: bool = False) -> Snapshot:
        """Read the pair once (its checklist, and its status unless `status` is False) and
        wake the subscribers if anything changed. `fresh`: the status read from the devices
        now (a short workflow) instead of the watch's last reading."""
        live = self.pairs[pair]
        snap = live.snapshot
        changed = False
        live.reads += 1
        try:
            c: Checklist | None = await asyncio.wait_for(self._checklist(live), READ_TIMEOUT)
            c_error = None
        except CliError as e:
            c, c_error = None, (None if no_run(e) else str(e))
        except TimeoutError:
            c, c_error = snap.checklist, "the checklist did not answer within 5 s"
        seen_c = c.model_dump_json() if c else (c_error or "")
        if seen_c != snap._seen[0]:
            ended = (
                snap.checklist is not None
                and c is not None
                and snap.checklist.run_id == c.run_id
                and snap.checklist.state != c.state
                and c.state not in ("running", "awaiting-operator")
            )
            waiting_before = {
                s.id
                for s in (snap.checklist.steps if snap.checklist else [])
                if s.status == "awaiting-approval"
            }
            gate_now = c is not None and any(
                s.status == "awaiting-approval" and s.id not in waiting_before for s in c.steps
            )
            snap.checklist, snap.checklist_error = c, c_error
            snap._seen = (seen_c, snap._seen[1])
            changed = True
            # A run that ended changed the devices, and a gate shows what it overwrites:
            # read them now.
            fresh = fresh or ended or gate_now
        if status or fresh:
            st, when, s_error = await self._status(live, fresh)
            if st is not None and snap.status is not None and st.read_at < snap.status.read_at:
                st, when = snap.status, snap.status_when  # the watch's is older than ours
            seen_s = (st.model_dump_json() if st else "") + (s_error or "")
            if seen_s != snap._seen[1]:
                snap.status, snap.status_when, snap.status_error = st, when, s_error
                snap._seen = (snap._seen[0], seen_s)
                changed = True
        if changed:
            snap.version += 1
            for ev in list(live.subscribers):
                ev.set()
        return snap

    async def _checklist(self, live: PairLive) -> Checklist:
        """The current run's checklist, asked of the worker only when the run's history
        grew (or it is another run): every change of a checklist is written by a workflow
        task, so an unchanged history length is an unchanged checklist, and the poller
        costs the worker nothing while a run waits (the length is the server's answer)."""
        handle = await resolve_run(self.client, live.inv, "current")
        try:
            desc = await handle.describe()
        except RPCError:
            desc = None  # fetch_checklist says what is wrong
        seen = (desc.run_id, desc.history_length, desc.status) if desc else None
        known = live.snapshot.checklist
        if seen is not None and known is not None and live.seen == seen:
            return known
        c = await fetch_checklist(handle)
        live.queries += 1
        live.seen = seen
        return c

    async def _status(
        self, live: PairLive, fresh: bool
    ) -> tuple[PairStatus | None, str, str | None]:
        """(the pair's status, when it was read, the error of this read). `fresh`: read
        from the devices now (a short workflow); else the watch's last reading, or the
        devices once when the watch has none yet (a worker just started)."""
        snap = live.snapshot
        live.reads += 1
        try:
            if fresh:
                st = await read_status(self.client, live.inv)
                return st, f"read from the devices at {st.read_at}", None
            st, when = await asyncio.wait_for(self._watched(live), READ_TIMEOUT)
            return st, when, None
        except CliError as e:
            if snap.status is None and not fresh:
                return await self._status(live, fresh=True)
            return snap.status, snap.status_when, str(e)
        except TimeoutError:
            return snap.status, snap.status_when, "the status did not answer within 5 s"

    async def _watched(self, live: PairLive) -> tuple[PairStatus, str]:
        """The pair's status as its watch last read it, asked of the worker only when the
        watch's history grew (it records every reading it makes)."""
        snap = live.snapshot
        handle = self.client.get_workflow_handle(watch_workflow_id(live.inv.workflow_id))
        try:
            desc = await handle.describe()
            seen: tuple[str | None, int, Any] | None = (
                desc.run_id,
                desc.history_length,
                desc.status,
            )
        except RPCError:
            seen = None  # read_watched_status says what is wrong
        if seen is not None and snap.status is not None and live.seen_watch == seen:
            return snap.status, snap.status_when
        st, when = await read_watched_status(self.client, live.inv)
        live.queries += 1
        live.seen_watch = seen
        return st, when

    # -- the live subscription ----------------------------------------------------------------
    def subscribe(self, pair: str) -> asyncio.Event:
        live = self.pairs[pair]
        ev = asyncio.Event()
        live.subscribers.add(ev)
        if live.task is None or live.task.done():
            live.task = asyncio.create_task(self._poll(pair), name=f"console-poll-{pair}")
        return ev

    def unsubscribe(self, pair: str, ev: asyncio.Event) -> None:
        live = self.pairs[pair]
        live.subscribers.discard(ev)
        if not live.subscribers and live.task is not None:
            live.task.cancel()
            live.task = None

    async def _poll(self, pair: str) -> None:
        loop = asyncio.get_running_loop()
        next_status = 0.0
        while True:
            started = loop.time()
            try:
                await self.refresh(pair, status=started >= next_status)
            except asyncio.CancelledError:
                raise
            except Exception:  # a poll that failed is tried again; the page says what it saw
                log.exception("console: reading pair %s failed", pair)
            if started >= next_status:
                next_status = started + STATUS_EVERY
            await asyncio.sleep(max(0.05, CHECKLIST_EVERY - (loop.time() - started)))

    async def close(self) -> None:
        for live in self.pairs.values():
            if live.task is not None:
                live.task.cancel()
                with contextlib.suppress(BaseException):
                    await live.task


def namespace(**kw: Any) -> argparse.Namespace:
    """The CLI's helpers take parsed arguments; the console passes its own."""
    return argparse.Namespace(**kw)
