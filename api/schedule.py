"""Scheduled runs (`amsm schedule`, the console's pair page; docs/operators/schedules.md):
filing one (its time read in the inventory's time zone, daylight saving's edges refused
unless the offset is given), listing the pair's, cancelling one. Each is its own
`pair-schedule` workflow (workflows/schedule.py), beside any run."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from api.act import signed_input
from api.refusal import Refused
from api.runs import cause
from api.start import start_input
from inventory import intent
from inventory.durations import duration_seconds
from inventory.intent import SignedIntent
from inventory.models import SCHEDULE_TYPE, Inventory
from workflows import search, signing
from workflows.kinds import KINDS
from workflows.schedule import (
    CancelRequest,
    ScheduleInput,
    ScheduleState,
    ScheduleWorkflow,
    schedule_workflow_id,
)

DOCS = "docs/operators/schedules.md"
SCHEDULE_ID_RE = re.compile(r"^[0-9a-f]{8}$")


def _instant(local: datetime, zone: ZoneInfo) -> str:
    """One reading of a local time, as an ISO 8601 time with its offset."""
    return local.replace(tzinfo=zone).isoformat(timespec="minutes")


def parse_at(text: str, zone: ZoneInfo) -> datetime:
    """TIME of `amsm schedule --at`: ISO 8601 with an offset (2027-03-28T01:30+01:00, or Z),
    or a local time in the inventory's time zone (2027-03-28 01:30). A local time that
    does not exist (the clocks go forward over it) or happens twice (they go back over
    it) is refused naming both instants it could be; with the offset it is taken. UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Refused(
            f"--at {text!r} is not a time: write ISO 8601, with an offset "
            "(2027-03-28T21:30+01:00) or in the inventory's time zone "
            f"{zone.key} (2027-03-28 21:30) (see {DOCS})",
            "usage",
        ) from None
    if when.tzinfo is not None:
        return when.astimezone(UTC)
    early, late = when.replace(fold=0, tzinfo=zone), when.replace(fold=1, tzinfo=zone)
    if early.utcoffset() != late.utcoffset():
        # zoneinfo (PEP 495): fold 0 reads the time with the offset before the change,
        # fold 1 with the one after; they differ only at a change.
        back = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        what = "happens twice" if back == when else "does not exist"
        first = when.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes")
        raise Refused(
            f"--at {text!r}: {first} {what} in {zone.key} (daylight saving); give the "
            f"offset: {_offset(early)} or {_offset(late)} (see {DOCS})",
            "usage",
        )
    return early.astimezone(UTC)


def _offset(t: datetime) -> str:
    """`t` written with its offset, and the same instant in UTC."""
    return (
        f"{t.isoformat(timespec='minutes')} "
        f"(= {t.astimezone(UTC).isoformat(timespec='minutes').replace('+00:00', 'Z')})"
    )


def check_when(at: datetime, inv: Inventory, now: datetime) -> None:
    """Refused: a time in the past, or further ahead than the inventory's horizon."""
    horizon = timedelta(seconds=inv.schedule.horizon)
    said = f"{at.astimezone(inv.zone).isoformat(timespec='minutes')}"
    if at <= now:
        raise Refused(
            f"--at {said} is in the past (now {now.astimezone(inv.zone):%Y-%m-%d %H:%M %Z}); "
            f"a scheduled run's time is ahead (see {DOCS})",
            "usage",
        )
    if at - now > horizon:
        raise Refused(
            f"--at {said} is more than {horizon.days} day(s) ahead "
            f"(inventory `schedule.horizon`); file it nearer the time (see {DOCS})",
            "usage",
        )


def window_seconds(inv: Inventory, window: str | None) -> float:
    """--window DURATION (default: the inventory's `schedule.window`), 1 min to 24 h."""
    if window is None:
        return inv.schedule.window
    try:
        seconds = duration_seconds(window)
    except ValueError as e:
        raise Refused(f"--window: {e}", "usage") from None
    if not 60 <= seconds <= 86400:
        raise Refused(f"--window {window}: from 1 minute to 24 hours (60s .. 24h)", "usage")
    return seconds


class Filed(BaseModel):
    schedule_id: str
    workflow_id: str
    state: ScheduleState


async def file(
    temporal: Client,
    inv: Inventory,
    kind: str,
    side: str,
    operator: str,
    options: Mapping[str, Any],
    at: str,
    window: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Filed:
    """File a scheduled run of KIND (its input from the row, as `amsm start` builds it)
    as `operator`, an operator of the pair; signed with `key` where given
    (docs/operators/signed-acts.md). The schedule checks who filed it first: a filing
    it refuses is refused here, saying why."""
    if not inv.may_act(operator):
        raise Refused(f"{operator} is not an operator of pair {inv.pair} (inventory `operators:`)")
    inp, what = start_input(inv, kind, side, operator, options)
    when = parse_at(at, inv.zone)
    filed = (now or datetime.now(UTC)).replace(microsecond=0)
    check_when(when, inv, filed)
    sid = uuid.uuid4().hex[:8]
    arg = ScheduleInput(
        pair=inv.pair,
        schedule_id=sid,
        kind=kind,
        input=inp.model_dump(mode="json", exclude_none=True),
        what=what,
        initiator=operator,
        filed=filed,
        at=when,
        window=window_seconds(inv, window),
        lead=inv.schedule.lead,
        reason=reason,
    )
    wid = schedule_workflow_id(inv.pair, sid)
    if key is not None:
        arg = arg.model_copy(update={"intent": signed_filing(key, arg)})
    try:
        handle = await temporal.start_workflow(
            ScheduleWorkflow.run,
            arg,
            id=wid,
            task_queue=inv.queue,
            memo={"kind": "schedule", "what": what, "initiator": operator},
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.PAIR, inv.pair),
                    SearchAttributePair(search.KIND, "schedule"),
                    SearchAttributePair(search.INITIATOR, operator),
                    SearchAttributePair(search.STATE, "waiting"),
                ]
            ),
            static_summary=f"{what} on pair {inv.pair} at {when:%Y-%m-%d %H:%M} UTC, "
            f"scheduled by {operator}",
        )
    except Exception as e:
        raise Refused(f"the scheduled run could not be filed: {cause(e)}") from None
    state = await checked(handle)
    if state is None:  # no worker answered yet: it checks when one does
        state = ScheduleState(
            schedule_id=sid,
            pair=inv.pair,
            kind=kind,
            what=what,
            initiator=operator,
            filed=filed,
            at=when,
            window_end=when + timedelta(seconds=arg.window),
            reason=reason,
        )
    elif not state.checked:
        raise Refused(f"the scheduled run was refused: {state.why}")
    return Filed(schedule_id=sid, workflow_id=handle.id, state=state)


def signed_filing(key: Ed25519PrivateKey, arg: ScheduleInput) -> SignedIntent:
    """The filing signed with `key`: bound to the schedule's id, the kind, and what it
    files (the run's input as the schedule will start it, the time, the window)."""
    run_input = KINDS[arg.kind].input.model_validate(arg.input)
    return intent.sign(
        intent.Intent(
            pair=arg.pair,
            run=schedule_workflow_id(arg.pair, arg.schedule_id),
            step=arg.kind,
            action="schedule",
            shown=signing.schedule_digest(run_input, signing.iso(arg.at), arg.window),
            operator=arg.initiator,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            nonce=secrets.token_hex(16),
        ),
        key,
    )


# How long filing waits for the schedule to check who filed it (a worker's first task).
CHECK_WAIT = 15.0


async def checked(handle: WorkflowHandle[Any, Any]) -> ScheduleState | None:
    """The schedule's state once it has checked who filed it (or refused them), or None
    where no worker has answered within CHECK_WAIT."""
    deadline = asyncio.get_running_loop().time() + CHECK_WAIT
    while True:
        try:
            st = await handle.query(
                ScheduleWorkflow.read_state, rpc_timeout=timedelta(seconds=CHECK_WAIT)
            )
            if st.checked or st.status != "waiting":
                return st
        except (RPCError, WorkflowQueryFailedError):
            await _not_failed(handle)
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.2)


async def scheduled(temporal: Client, inv: Inventory) -> list[ScheduleState]:
    """The pair's scheduled runs that still wait, soonest first."""
    query = (
        f"{search.PAIR.name} = '{inv.pair}' AND {search.KIND.name} = 'schedule' "
        "AND ExecutionStatus = 'Running'"
    )
    found: list[ScheduleState] = []
    try:
        async for w in temporal.list_workflows(query):
            if w.status != WorkflowExecutionStatus.RUNNING:
                continue
            if w.task_queue != inv.queue or w.workflow_type != SCHEDULE_TYPE:
                # Tagged as the pair's by hand, on a queue no worker of the pair serves: a
                # squatter (wire/fences.py), which would hold the whole list on its query.
                continue
            handle = temporal.get_workflow_handle(w.id, run_id=w.run_id)
            found.append(await handle.query(ScheduleWorkflow.read_state))
    except RPCError as e:
        raise Refused(f"the scheduled runs of pair {inv.pair} cannot be read: {cause(e)}") from None
    return sorted((s for s in found if s.status == "waiting"), key=lambda s: s.at)


async def cancel(
    temporal: Client,
    inv: Inventory,
    schedule_id: str,
    operator: str,
    reason: str,
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
) -> ScheduleState:
    """Cancel a scheduled run that still waits, as `operator` (an operator), with a reason;
    signed with `key` where given (the operator's, or the console's: `console`)."""
    if not SCHEDULE_ID_RE.fullmatch(schedule_id):
        raise Refused(
            f"{schedule_id!r} is not a scheduled run's id (8 hex digits, as "
            "`amsm schedule list` shows)",
            "usage",
        )
    if not reason.strip():
        raise Refused("a cancel needs a reason (--reason TEXT)", "usage")
    if not inv.may_act(operator):
        raise Refused(f"{operator} is not an operator of pair {inv.pair} (inventory `operators:`)")
    wid = schedule_workflow_id(inv.pair, schedule_id)
    handle = temporal.get_workflow_handle(wid)
    request = CancelRequest(operator=operator, reason=reason)
    if key is not None:
        signed = signed_input(key, inv.pair, wid, "schedule", "cancel", request, operator, console)
        request = request.model_copy(update={"intent": signed})
    try:
        return await handle.execute_update(ScheduleWorkflow.cancel, request)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise Refused(await _not_waiting(handle, inv, schedule_id), "not-found") from None
        raise Refused(f"the cancel was refused: {cause(e)}") from None
    except Exception as e:
        raise Refused(f"the cancel was refused: {cause(e)}") from None


async def _not_failed(handle: WorkflowHandle[Any, Any]) -> None:
    """Refused, saying why, where the schedule's workflow has failed (bad input)."""
    try:
        desc = await handle.describe()
    except RPCError:
        return
    if desc.status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED):
        try:
            await handle.result()
        except Exception as e:
            raise Refused(f"the scheduled run was refused: {cause(e)}") from None


async def _not_waiting(handle: WorkflowHandle[Any, Any], inv: Inventory, schedule_id: str) -> str:
    """Why a scheduled run cannot be cancelled: it ended (how), or there is none."""
    try:
        st = await handle.query(ScheduleWorkflow.read_state)
    except RPCError:
        return f"no scheduled run {schedule_id} on pair {inv.pair} (`amsm schedule list`)"
    return f"scheduled run {schedule_id} is {st.status} already" + (
        f" ({st.why})" if st.why else ""
    )
