"""The console's Status and Control buttons (`amsm dsm`, `replication`, `smartbins`,
`browse`, `clients`, `insync`, `allsync` and `reboot`), each a short durable workflow
(workflows/control.py) whose sentence is the answer. Break-glass overrides are checked
here before anything starts (the control workflow checks again, for starts that do not
come through the API)."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.act import followed_run, signed_input
from api.control_approvals import Waiting, approvals_note, wait_for_approvals
from api.refusal import Refused
from api.runs import cause, index
from api.squatters import end_squatter, ended_said, said_squatter
from inventory import intent
from inventory.models import Inventory, control_workflow_id
from inventory.rules import BY_NAME, OVERRIDABLE
from wire.fences import Squatter
from workflows.control import ControlInput, ControlResult
from workflows.limits import MAX_OVERRIDES
from workflows.overrides import Override


class ControlRequest(BaseModel):
    """One control as asked: its name (`dsm-set-main`, ...), its side, its hosts (as the
    operator spelt them), the rules it forces and why."""

    control: str
    side: str | None = None
    hosts: list[str] = []
    overrides: list[str] = []
    reason: str | None = None


CONTROL_TYPES = ("control",)  # what amsm runs under the control's id


class ControlDone(BaseModel):
    """A control's run and its result; `result` None when it still runs after the wait,
    or waits for its override's approvals (`waiting`)."""

    run_id: str | None
    result: ControlResult | None = None
    waiting: Waiting | None = None
    # The squatter under the control's id it ended first (--end-squatter), if any.
    ended_squatter: Squatter | None = None


def control_overrides(rules: list[str], reason: str | None) -> list[Override]:
    """The overrides asked for (`--override RULE --reason TEXT`); usage errors and
    absolute rules refused. What was sent is counted before repeats are folded: twelve
    copies of one rule are twelve overrides, over the limit, not one."""
    sent = rules or []
    if len(sent) > MAX_OVERRIDES:
        raise Refused(
            f"{len(sent)} overrides sent; at most {MAX_OVERRIDES} (one per rule, see `amsm rules`)",
            "usage",
        )
    rules = list(dict.fromkeys(sent))
    why = (reason or "").strip()
    if not rules:
        if reason is not None:
            raise Refused(
                "--reason goes with --override RULE (the reason for forcing the rule)", "usage"
            )
        return []
    unknown = [r for r in rules if r not in BY_NAME]
    if unknown:
        raise Refused(
            f"--override {unknown[0]}: no such rule; rules that can be overridden: "
            f"{', '.join(OVERRIDABLE)} (see `amsm rules`)",
            "usage",
        )
    if not why:
        raise Refused(
            f"--override {rules[0]} needs --reason TEXT (not blank): it is recorded with your "
            "name in the run's history and report",
            "usage",
        )
    for r in rules:
        rule = BY_NAME[r]
        if not rule.overridable:
            raise Refused(
                f"refused: rule '{r}' cannot be overridden; it protects absolutely: {rule.protects}"
            )
    return [Override(rule=r, reason=why) for r in rules]


def check_hosts(inv: Inventory, control: str, hosts: list[str]) -> list[str]:
    """The HOSTs of a control, as the inventory spells them; unknown ones are a usage
    refusal."""
    if control == "clients-switch":
        pool = {c.host.lower(): c.host for c in inv.clients}
        what = "switchable clients"
    elif control.startswith("browse-"):
        pool = {b.host.host.lower(): b.host.host for b in inv.browse}
        what = "Browse hosts"
    else:
        pool = {h.host.lower(): h.host for _, h in inv.all_hosts()}
        what = "hosts"
    unknown = [h for h in hosts if h.lower() not in pool]
    if unknown:
        raise Refused(
            f"not among the {what} of pair {inv.pair}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(pool.values()))})",
            "usage",
        )
    return list(dict.fromkeys(pool[h.lower()] for h in hosts))


async def start_control(
    temporal: Client,
    inv: Inventory,
    req: ControlRequest,
    operator: str,
    via: str = "",
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
    squatter: str | None = None,
) -> tuple[WorkflowHandle[Any, ControlResult], Squatter | None]:
    """Start one control as a short workflow for `operator`, its hosts and overrides
    checked (`via`: said in the run's summary). One control at a time per pair. `key`:
    the operator's, or the console's (`console`), to sign it with
    (docs/operators/signed-acts.md). `squatter`: the run of a squatter under the
    control's id to end first, once the control's input is checked (api/squatters.py);
    the squatter it ended, if any."""
    overrides = control_overrides(req.overrides, req.reason)
    inp = ControlInput(
        pair=inv.pair,
        control=req.control,
        operator=operator,
        side=req.side,
        hosts=check_hosts(inv, req.control, req.hosts),
        overrides=overrides,
    )
    if key is not None:
        # Bound to the control run it follows, so it runs one control (as a start).
        control_id = control_workflow_id(inv.pair)
        after = await followed_run(temporal, inv.pair, control_id)
        signed = signed_input(
            key,
            inv.pair,
            intent.start_binding(control_id, after),
            req.control,
            "control",
            inp,
            operator,
            console,
        )
        inp = inp.model_copy(update={"intent": signed})
    ended = None
    if squatter is not None:
        ended = await end_squatter(
            temporal, inv, operator, key is not None, squatter, control_workflow_id(inv.pair),
            f"a control of pair {inv.pair}", CONTROL_TYPES,
        )  # fmt: skip
    try:
        handle = await temporal.start_workflow(
            "control",
            inp,
            id=control_workflow_id(inv.pair),
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            result_type=ControlResult,
            search_attributes=index(inv, "control", operator),
            static_summary=f"{req.control} {req.side or ''} {' '.join(inp.hosts)} by {operator}"
            + (f" ({via})" if via else "")
            + "".join(f", overriding {o.rule}" for o in overrides),
        )
    except WorkflowAlreadyStartedError:
        first = ended_said(ended)
        raise Refused(
            (f"{first}; then " if first else "")
            + f"refused: another control is running on pair {inv.pair}; one at a time"
            + await control_squatter(temporal, inv)
            + await approvals_note(temporal, inv)
        ) from None
    return handle, ended


async def control_squatter(temporal: Client, inv: Inventory) -> str:
    """What the refusal adds when what holds the control's id is a squatter (not on the
    pair's task queue, or not a control: api/squatters.py), which no worker of the pair
    runs and which will never end by itself, named with how to end it."""
    said = await said_squatter(
        temporal, inv, control_workflow_id(inv.pair), f"a control of pair {inv.pair}",
        CONTROL_TYPES,
    )  # fmt: skip
    return f"; but {control_workflow_id(inv.pair)} is {said}" if said else ""


async def run_control(
    temporal: Client,
    inv: Inventory,
    req: ControlRequest,
    operator: str,
    via: str = "",
    wait: float | None = None,
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
    squatter: str | None = None,
) -> ControlDone:
    """Run one control and wait for its sentence (`wait`: at most so many seconds, then
    `result` is None: it still runs). A control that fails is refused with its cause.
    `squatter`: the run of a squatter under the control's id to end first
    (api/squatters.py)."""
    handle, ended = await start_control(temporal, inv, req, operator, via, key, console, squatter)
    first = ended_said(ended)
    outcome = asyncio.ensure_future(handle.result())
    # Its failure is read below, or not at all once it waits: never "never retrieved".
    outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
    loop = asyncio.get_running_loop()
    deadline = None if wait is None else loop.time() + wait
    run_id = handle.result_run_id
    try:
        if req.overrides:
            # Whatever this inventory says: the worker's decides whether it waits.
            waiting = await wait_for_approvals(temporal, inv, run_id, outcome, deadline)
            if waiting is not None:
                return ControlDone(run_id=run_id, waiting=waiting, ended_squatter=ended)
        left = None if deadline is None else max(0.0, deadline - loop.time())
        result = await asyncio.wait_for(asyncio.shield(outcome), left)
    except TimeoutError:
        return ControlDone(run_id=run_id, ended_squatter=ended)
    except Exception as e:
        raise Refused((f"{first}; then " if first else "") + cause(e)) from None
    finally:
        outcome.cancel()
    return ControlDone(run_id=run_id, result=result, ended_squatter=ended)
