"""The console's view of each pair: what its JSON answers say (the same as `amsm status
--json` and `amsm show current --json`) and the one live subscription per pair.

One subscription per pair, shared by every open browser. While anyone watches the pair,
it follows the current run's history and the pair watch's history as the Temporal server
writes them (api/follow.py: long polls the server answers when an event is written).
A step's change shows from the run's own record of it (its memo, in the history) the
moment it is written; the worker is asked for the whole checklist (the `progress` query)
only after a workflow task of the run completed, at most every MIN_QUERY_GAP seconds, and
never for the watch's readings: each is the result of the watch's activity, read from its
history. It reads the readiness watch's schedule and a waiting fence (the server
answers) every READINESS_EVERY seconds, and looks for a control's approvals run every
APPROVALS_EVERY seconds. It
wakes every subscriber when something changed; browsers then draw from this snapshot, so
twenty consoles cost Temporal and the worker what one costs. It stops when the last
browser leaves. Every Temporal call it makes is a function of api/ (api/follow.py for the
live stream's own: a run's mark, the checklist and the watch's status asked only when it
changed, the histories followed); this module holds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio.client import Client

from api.control_approvals import approvals_if_changed
from api.fence import read_fence
from api.follow import (
    RunMark,
    current_checklist,
    follow_run,
    follow_watch,
    run_mark,
    watch_mark,
    watched_status,
)
from api.readiness import ReadinessView, read_readiness
from api.refusal import Refused
from api.runs import read_status, watched_when
from api.show import show
from api.status import status
from inventory.models import Inventory
from inventory.status import PairStatus
from workflows.models import Checklist, StepRecord

log = logging.getLogger("amsm.console")
T = TypeVar("T")

# Seconds. The run's checklist is asked at most this often while its tasks complete (a
# switch of 184 clients completes several a second, each answer is every client's stage):
# a client's stage shows within about a second; a step's change shows at once, from its
# record.
MIN_QUERY_GAP = 0.5
# With no run open, how often to look for one (a describe; the console's own starts and
# ticks look at once).
IDLE_EVERY = 0.5
# A watch not started yet (the worker starts it) or a server not answering: look again.
RETRY_EVERY = 2.0
# How often to look for a control's approvals run, which other operators approve from
# their own pages (a describe; the checklist only when it changed).
APPROVALS_EVERY = 2.0
READINESS_EVERY = 10.0  # its checks run every timing.readiness_interval (1 h by default)
# A read that takes longer than this is abandoned and tried again.
READ_TIMEOUT = 5.0


async def status_json(temporal: Client, inv: Inventory, operator: str, act: bool) -> dict[str, Any]:
    """`amsm status --json` of the pair (api/status.py, as the CLI's): read from the
    devices now by whoever may act; a viewer gets what the pair's watch last read, with
    `read` saying when; the waiting fence and the readiness watch's verdict."""
    return (await status(temporal, inv, operator, cached=not act)).to_json()


async def show_json(temporal: Client, inv: Inventory, run: str = "current") -> dict[str, Any]:
    """`amsm show RUN --json` (api/show.py, as the CLI's)."""
    return (await show(temporal, inv, run)).to_json()


async def within(aw: Awaitable[T], seconds: float) -> T:
    """`aw`, or TimeoutError after `seconds`. Not asyncio.wait_for: on Python 3.11 it
    swallows a cancel that comes as its awaitable finishes (cpython bpo-42130), so a
    subscription's task cancelled when the last browser left could go on reading
    Temporal unseen (the likeliest cause of the console benchmark once counting some
    150 reads a minute with no page open and no subscription)."""
    async with asyncio.timeout(seconds):
        return await aw


def no_run(e: Refused) -> bool:
    """The pair has never had a run (no workflow amsm-<pair>)."""
    return e.kind == "not-found"


@dataclass
class Snapshot:
    """What the console last read of a pair; `version` grows with every change."""

    version: int = 0
    status: PairStatus | None = None
    status_when: str = ""  # when the status was read, and by whom
    status_error: str | None = None
    checklist: Checklist | None = None
    checklist_error: str | None = None
    # A gate started waiting and the devices are being read again for its typed count.
    reading_counts: bool = False
    # The steps are shown from the run's records (api/follow.py), ahead of the
    # whole checklist: its clients, items and times are the last read's until it comes.
    partial: bool = False
    readiness: ReadinessView | None = None
    # The sides a running fence still waits to put in backup (both when it cannot be
    # read, as the workflows count it), and why it could not be read.
    fences: list[str] = field(default_factory=list)
    fence_error: str | None = None
    # The approvals run a console control's break-glass override waits on, if one does
    # (api/control_approvals.py), and why it could not be read.
    approvals: Checklist | None = None
    approvals_error: str | None = None
    _seen_approvals: str = ""
    # the checklist's, the status's and the readiness's and fence's JSON, to tell a change
    _seen: tuple[str, str, str] = ("", "", "")


@dataclass
class PairLive:
    inv: Inventory
    snapshot: Snapshot = field(default_factory=Snapshot)
    subscribers: set[asyncio.Event] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    reads: int = 0  # Temporal calls made for the pair (the benchmark and tests read them)
    queries: int = 0  # of which queries the worker answered
    records: int = 0  # step records shown ahead of the worker's answer
    seen: RunMark | None = None  # (run, history length, status) last asked
    seen_watch: RunMark | None = None  # the same, of the pair's watch
    seen_approvals: RunMark | None = None  # the same, of a control's approvals run
    approvals_poke: asyncio.Event = field(default_factory=asyncio.Event)  # look now
    approvals_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # reads one at a time
    # The watch's run and the event of its history the status shown is of.
    watch_shown: tuple[str, int] | None = None
    # Checklist reads one at a time, so that a later read never loses to an earlier one.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)  # the run may have changed
    poke: asyncio.Event = field(default_factory=asyncio.Event)  # look for a new run now
    fresh_task: asyncio.Task[None] | None = None
    fresh_again: bool = False  # another fresh read is wanted after the one running
    full: Checklist | None = None  # the last checklist the worker answered
    # The run's step records shown since that answer, with the event that keeps each,
    # and their run.
    ahead: list[tuple[int, StepRecord]] = field(default_factory=list)
    seen_run: str | None = None

    @property
    def following(self) -> bool:
        return any(not t.done() for t in self.tasks)


class Hub:
    """The pairs the console serves, each with its shared subscription."""

    def __init__(self, temporal: Client, inventories: list[Inventory]) -> None:
        self.temporal = temporal
        self.pairs: dict[str, PairLive] = {inv.pair: PairLive(inv) for inv in inventories}

    def inventory(self, pair: str) -> Inventory | None:
        live = self.pairs.get(pair)
        return live.inv if live else None

    # -- reading once -------------------------------------------------------------------------
    async def refresh(self, pair: str, status: bool = True, fresh: bool = False) -> Snapshot:
        """Read the pair once (its checklist, its status unless `status` is False, and its
        readiness) and wake the subscribers if anything changed. `fresh`: the status read
        from the devices now (a short workflow) instead of the watch's last reading."""
        live = self.pairs[pair]
        live.poke.set()
        live.approvals_poke.set()
        await asyncio.gather(self._read_checklist(live), self._read_approvals(live))
        if status or fresh:
            self._apply_status(live, *(await self._status(live, fresh)))
        if status:
            await self._read_readiness(live)
        return live.snapshot

    async def _read_checklist(self, live: PairLive) -> None:
        async with live.lock:
            live.reads += 1
            try:
                c: Checklist | None = await within(self._checklist(live), READ_TIMEOUT)
                c_error = None
            except Refused as e:
                c, c_error = None, (None if no_run(e) else str(e))
            except TimeoutError:
                c, c_error = live.full, "the checklist did not answer within 5 s"
            self._apply_checklist(live, c, c_error)

    async def _checklist(self, live: PairLive) -> Checklist:
        """The current run's checklist, asked of the worker only when the run's history
        grew (or it is another run): every change of a checklist is written by a workflow
        task, so an unchanged history length is an unchanged checklist."""
        known = live.full  # the worker's last answer (what the page shows may be ahead)
        unless = live.seen if known is not None else None
        seen, c = await current_checklist(self.temporal, live.inv, unless)
        if c is None and known is not None:
            return known
        assert c is not None  # asked unless the run is as it was when KNOWN was answered
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
                st = await read_status(self.temporal, live.inv)
                return st, f"read from the devices at {st.read_at}", None
            st, when = await within(self._watched(live), READ_TIMEOUT)
            return st, when, None
        except Refused as e:
            if snap.status is None and not fresh:
                return await self._status(live, fresh=True)
            return snap.status, snap.status_when, str(e)
        except TimeoutError:
            return snap.status, snap.status_when, "the status did not answer within 5 s"

    async def _watched(self, live: PairLive) -> tuple[PairStatus, str]:
        """The pair's status as its watch last read it, asked of the worker only when the
        watch's history grew (it records every reading it makes)."""
        snap = live.snapshot
        unless = live.seen_watch if snap.status is not None else None
        seen, read = await watched_status(self.temporal, live.inv, unless)
        if read is None and snap.status is not None:
            return snap.status, snap.status_when
        assert read is not None  # asked unless the watch is as it was at the status shown
        live.queries += 1
        live.seen_watch = seen
        return read

    async def _read_readiness(self, live: PairLive) -> None:
        """The readiness watch's schedule and last verdict (the server answers), and the
        pair's fence if one still waits (visibility; its state by query, only when one
        runs)."""
        live.reads += 1
        snap = live.snapshot
        ready: ReadinessView | None
        try:
            ready = await within(read_readiness(self.temporal, live.inv), READ_TIMEOUT)
        except TimeoutError:
            ready = snap.readiness  # the last verdict stays; the next read tries again
        fences, fence_error = await self._fences(live)
        seen = (ready.model_dump_json() if ready else "") + f"{fences}{fence_error}"
        if seen != snap._seen[2]:
            snap.readiness, snap.fences, snap.fence_error = ready, fences, fence_error
            snap._seen = (snap._seen[0], snap._seen[1], seen)
            self._wake(live)

    async def _read_approvals(self, live: PairLive) -> None:
        """The approvals run a control waits on (its checklist asked of the worker only
        when its history grew); one read at a time, so a later one never loses."""
        async with live.approvals_lock:
            live.reads += 1
            snap = live.snapshot
            c, error = snap.approvals, None
            try:
                mark, answer = await within(
                    approvals_if_changed(self.temporal, live.inv, live.seen_approvals),
                    READ_TIMEOUT,
                )
                if answer is not None:
                    live.queries += 1
                    c = answer
                elif mark is None:
                    c = None
                live.seen_approvals = mark
            except Refused as e:
                error = str(e)
            except TimeoutError:
                error = "the control's approvals did not answer within 5 s"
            seen = (c.model_dump_json() if c else "") + (error or "")
            if seen != snap._seen_approvals:
                snap.approvals, snap.approvals_error, snap._seen_approvals = c, error, seen
                self._wake(live)

    async def _fences(self, live: PairLive) -> tuple[list[str], str | None]:
        try:
            view = await within(read_fence(self.temporal, live.inv), READ_TIMEOUT)
        except (Refused, TimeoutError) as e:
            # Unread, it counts as waiting on both sides (activities/pair.py fences_waiting).
            return ["X", "Y"], str(e) or "the fence did not answer within 5 s"
        if view is None or view.state.status != "waiting":
            return [], None
        return [view.state.side], None

    # -- what changed -------------------------------------------------------------------------
    def _wake(self, live: PairLive) -> None:
        live.snapshot.version += 1
        for ev in list(live.subscribers):
            ev.set()

    def _apply_checklist(self, live: PairLive, c: Checklist | None, c_error: str | None) -> None:
        """The checklist as the worker answered it (with the records of events after the
        history it answered for laid on it again: the page never goes back)."""
        snap = live.snapshot
        before, live.full = live.full, c
        answered = live.seen[1] if live.seen else 0
        live.ahead = [
            (e, r) for e, r in live.ahead if c and c.run_id == live.seen_run and e > answered
        ]
        if c is not None and live.ahead:
            c = c.model_copy(deep=True)
            for _, rec in live.ahead:
                take(c, rec)
        partial = bool(live.ahead)
        seen_c = c.model_dump_json() if c else (c_error or "")
        if seen_c == snap._seen[0] and partial == snap.partial:
            return
        ended = (
            before is not None
            and c is not None
            and before.run_id == c.run_id
            and before.state != c.state
            and c.state not in ("running", "awaiting-operator")
        )
        waiting_before = {
            s.id for s in (before.steps if before else []) if s.status == "awaiting-approval"
        }
        gate_now = c is not None and any(
            s.status == "awaiting-approval" and s.id not in waiting_before for s in c.steps
        )
        snap.checklist, snap.checklist_error, snap.partial = c, c_error, partial
        snap._seen = (seen_c, snap._seen[1], snap._seen[2])
        # A run that ended changed the devices, and a gate shows what it overwrites: read
        # them again, once the pages have the change (the gate takes no typed count until
        # that reading is in).
        if gate_now:
            snap.reading_counts = True
        self._wake(live)
        if ended or gate_now:
            self._read_fresh_soon(live)

    def _apply_records(
        self, live: PairLive, run_id: str, recs: list[tuple[int, StepRecord]]
    ) -> None:
        """The run's step records as they are written, on the checklist shown (of that
        run), ahead of the worker's answer."""
        snap = live.snapshot
        if snap.checklist is None or snap.checklist.run_id != run_id:
            return  # another run's page: its checklist comes by query
        c = snap.checklist.model_copy(deep=True)
        for _, rec in recs:
            take(c, rec)
        live.ahead.extend(recs)
        live.seen_run = run_id
        live.records += len(recs)
        seen_c = c.model_dump_json()
        if seen_c != snap._seen[0]:
            snap.checklist, snap.partial = c, True
            snap._seen = (seen_c, snap._seen[1], snap._seen[2])
            self._wake(live)

    def _apply_status(
        self, live: PairLive, st: PairStatus | None, when: str, s_error: str | None
    ) -> None:
        snap = live.snapshot
        if st is not None and snap.status is not None and st.read_at < snap.status.read_at:
            st, when = snap.status, snap.status_when  # ours is newer than this one
        seen_s = (st.model_dump_json() if st else "") + (s_error or "")
        if seen_s != snap._seen[1]:
            snap.status, snap.status_when, snap.status_error = st, when, s_error
            snap._seen = (snap._seen[0], seen_s, snap._seen[2])
            self._wake(live)

    def _read_fresh_soon(self, live: PairLive) -> None:
        """Read the devices now (a short workflow), beside the pages' update; one at a
        time, and once more after it when asked again meanwhile."""
        if live.fresh_task is not None and not live.fresh_task.done():
            live.fresh_again = True
            return

        async def read() -> None:
            try:
                while True:
                    live.fresh_again = False
                    self._apply_status(live, *(await self._status(live, fresh=True)))
                    if not live.fresh_again:
                        break
            finally:
                if live.snapshot.reading_counts:
                    live.snapshot.reading_counts = False
                    self._wake(live)

        live.fresh_task = asyncio.create_task(read(), name=f"console-fresh-{live.inv.pair}")

    # -- the live subscription ----------------------------------------------------------------
    def subscribe(self, pair: str) -> asyncio.Event:
        live = self.pairs[pair]
        ev = asyncio.Event()
        live.subscribers.add(ev)
        if not live.following:
            for t in live.tasks:
                t.cancel()
            jobs = (
                self._follow_run,
                self._ask_checklists,
                self._follow_watch,
                self._readiness,
                self._follow_approvals,
            )
            live.tasks = [
                asyncio.create_task(self._forever(live, job), name=f"console-{pair}")
                for job in jobs
            ]
        return ev

    def unsubscribe(self, pair: str, ev: asyncio.Event) -> None:
        live = self.pairs[pair]
        live.subscribers.discard(ev)
        if not live.subscribers:
            for t in live.tasks:
                t.cancel()
            live.tasks = []

    async def _forever(self, live: PairLive, job: Any) -> None:
        """Run `job` until cancelled; a read that failed is tried again (the page says
        what it saw)."""
        while True:
            try:
                await job(live)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("console: following pair %s failed", live.inv.pair)
            await asyncio.sleep(RETRY_EVERY)

    async def _follow_run(self, live: PairLive) -> None:
        """The pair's current run: its history followed while it is open (each completed
        workflow task marks the checklist to be asked again); with none open, a describe
        every IDLE_EVERY seconds (at once when this console acted) finds the next."""
        last: tuple[str, str] | None = None
        while True:
            live.poke.clear()
            live.reads += 1
            try:
                mark: RunMark | None = await run_mark(self.temporal, live.inv)
            except Refused:
                mark = None  # no run yet: the checklist read says so
            now = (mark.run_id, mark.status) if mark else None
            if now != last:  # a run found, another one, or one that ended: its checklist
                live.dirty.set()
                last = now
            if mark is None or not mark.open:
                with contextlib.suppress(TimeoutError):
                    await within(live.poke.wait(), IDLE_EVERY)
                continue
            async for recs, changed in follow_run(self.temporal, live.inv, mark.run_id):
                live.reads += 1
                if recs:
                    self._apply_records(live, mark.run_id, recs)
                if changed:
                    live.dirty.set()

    async def _ask_checklists(self, live: PairLive) -> None:
        """The checklist, asked whenever the run may have changed, at most every
        MIN_QUERY_GAP seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await live.dirty.wait()
            live.dirty.clear()
            started = loop.time()
            await self._read_checklist(live)
            await asyncio.sleep(max(0.0, MIN_QUERY_GAP - (loop.time() - started)))

    async def _follow_watch(self, live: PairLive) -> None:
        """The pair watch's readings, from its history: its view once by query (the
        exact words, with the error of a failed try), then each reading as the server
        writes it; after a failed reading, the view again for the watch's words. A
        subscription started again on the same watch run (a browser that left and came
        back, a page reloaded) asks nothing: it reads the readings after the last one
        shown from the history."""
        while True:
            live.reads += 1
            try:
                mark: RunMark | None = await watch_mark(self.temporal, live.inv)
            except Refused:
                mark = None
            if mark is None or not mark.open:
                # No watch yet (the worker starts it): the devices once, then look again.
                if live.snapshot.status is None:
                    self._apply_status(live, *(await self._status(live, fresh=False)))
                await asyncio.sleep(RETRY_EVERY)
                continue
            shown = live.watch_shown
            if live.snapshot.status is not None and shown and shown[0] == mark.run_id:
                known = shown[1]  # the snapshot holds every reading up to here
            else:
                live.seen_watch = None
                self._apply_status(live, *(await self._status(live, fresh=False)))
                known = mark.history_length  # the view holds every reading up to here
                live.watch_shown = (mark.run_id, known)
            async for readings in follow_watch(self.temporal, live.inv, mark.run_id):
                live.reads += 1
                for event_id, reading in readings:
                    if event_id <= known:
                        continue
                    if reading is None:
                        live.seen_watch = None
                        self._apply_status(live, *(await self._status(live, fresh=False)))
                    else:
                        st, read_at = reading
                        self._apply_status(live, st, watched_when(read_at), None)
                    known = event_id
                    live.watch_shown = (mark.run_id, known)

    async def _readiness(self, live: PairLive) -> None:
        while True:
            await self._read_readiness(live)
            await asyncio.sleep(READINESS_EVERY)

    async def _follow_approvals(self, live: PairLive) -> None:
        """A control's approvals run: described every APPROVALS_EVERY seconds (at once
        when this console acted), its checklist asked only when it changed."""
        while True:
            live.approvals_poke.clear()
            await self._read_approvals(live)
            with contextlib.suppress(TimeoutError):
                await within(live.approvals_poke.wait(), APPROVALS_EVERY)

    async def close(self) -> None:
        for live in self.pairs.values():
            for t in [*live.tasks, *([live.fresh_task] if live.fresh_task else [])]:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t


def take(c: Checklist, rec: StepRecord) -> None:
    """A step record on checklist C (a step it does not have is left: the query says)."""
    try:
        c.step(rec.step).take(rec)
    except KeyError:
        return
    c.settle_state()
