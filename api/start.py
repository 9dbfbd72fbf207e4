"""Starting one of the pair's workflows (the table of kinds, workflows/kinds.py) and its
dry run: the input from the kind's row, the start (one workflow at a time per pair) and
the wait until the run has read the devices and said whether it goes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.act import followed_run, signed_input
from api.check import read_time_limit
from api.controls import control_overrides
from api.refusal import Refused
from api.runs import cause, index
from api.squatters import end_squatter, ended_said, said, squatter_in
from inventory import intent
from inventory.models import Inventory
from wire.fences import Squatter
from workflows.base import PairWorkflow
from workflows.dry_run import READS, PairDryRunWorkflow
from workflows.kind import StartError
from workflows.kinds import KINDS
from workflows.models import DryRunInput
from workflows.overrides import start_override_problem
from workflows.preview import DryRunResult


class Started(BaseModel):
    """A run that started, and its refusal when it read the devices and did not go."""

    run_id: str
    what: str
    refused: str | None = None
    # The squatter under the pair's run id it ended first (--end-squatter), if any.
    ended_squatter: Squatter | None = None


def start_input(
    inv: Inventory,
    kind: str,
    side: str,
    operator: str,
    options: Mapping[str, Any],
    overrides: list[str] | None = None,
    override_reason: str | None = None,
) -> tuple[BaseModel, str]:
    """The workflow's input from its row (its side and start options) and a one-line
    description of what it will do; a usage refusal when they make no input.
    `overrides`: break-glass rules the start forces (no-switch-in-blackout), with
    `override_reason`; the run checks and records them (workflows/base.py)."""
    row = KINDS.get(kind)
    if row is None:
        raise Refused(f"unknown workflow {kind!r}; available: {', '.join(KINDS)}", "usage")
    opts = {o.name: options.get(o.name, o.default) for o in row.options}
    try:
        inp, what = row.start(inv.pair, side, operator, opts)  # type: ignore[arg-type]
    except StartError as e:
        raise Refused(str(e), "usage") from None
    if not overrides and override_reason is None:
        return inp, what
    if "overrides" not in type(inp).model_fields:
        raise Refused(f"{kind} takes no --override", "usage")
    if not overrides:
        raise Refused("--override-reason goes with --override RULE", "usage")
    if not (override_reason or "").strip():
        raise Refused(
            f"--override {overrides[0]} needs --override-reason TEXT (not blank): it is "
            "recorded with your name in the run's checklist",
            "usage",
        )
    forced = control_overrides(overrides or [], override_reason)
    problem = start_override_problem(forced)
    if problem:
        raise Refused(problem, "usage")
    return inp.model_copy(update={"overrides": forced}), what


RUN_TYPES = tuple(KINDS)  # what amsm runs under the pair's run id


async def running_run(temporal: Client, inv: Inventory) -> str:
    """One line about the run that holds the pair, for a refusal (and what to do when it
    is a squatter: no worker of the pair runs it and it never ends by itself)."""
    try:
        desc = await temporal.get_workflow_handle(inv.workflow_id).describe()
    except RPCError:
        return f"workflow {inv.workflow_id} is running"
    line = (
        f"run {desc.run_id} ({desc.workflow_type}, started {desc.start_time:%Y-%m-%d %H:%M:%S} UTC)"
        " is running"
    )
    sq = squatter_in(desc, inv, f"the run of pair {inv.pair}", RUN_TYPES)
    if desc.status != WorkflowExecutionStatus.RUNNING or sq is None:
        return line
    return f"{line}, {said(sq)}"


async def start(
    temporal: Client,
    inv: Inventory,
    kind: str,
    inp: BaseModel,
    what: str,
    operator: str,
    wait: bool = True,
    via: str = "",
    hint: str = "",
    key: Ed25519PrivateKey | None = None,
    console: bool = False,
    squatter: str | None = None,
) -> Started:
    """Start KIND with its input (start_input's) as `operator`; with `wait`, until it has
    read the devices (`refused`: the run's refusal). Refused while another run holds the
    pair (`hint`: what the refusal adds, the command to see it). A run that would make
    main a side a fence still waits on is refused by the run itself (workflows/base.py),
    whoever starts it. `via`: said in the run's summary (the console). `key`: the
    operator's, or the console's (`console`), to sign the start with
    (docs/operators/signed-acts.md). `squatter`: the run of a squatter under the pair's
    run id to end first (api/squatters.py; refused when what runs there is amsm's or
    another run)."""
    if key is not None and "intent" in type(inp).model_fields:
        after = await followed_run(temporal, inv.pair, inv.workflow_id)
        inp = inp.model_copy(
            update={"intent": signed_start(key, inv, kind, inp, operator, after, console)}
        )
    ended = None
    if squatter is not None:
        ended = await end_squatter(
            temporal, inv, operator, key is not None, squatter, inv.workflow_id,
            f"the run of pair {inv.pair}", RUN_TYPES,
        )  # fmt: skip
    try:
        handle = await temporal.start_workflow(
            kind,
            inp,
            id=inv.workflow_id,
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={"kind": kind, "what": what, "initiator": operator},
            search_attributes=index(inv, kind, operator),
            static_summary=f"{what} on pair {inv.pair}, by {operator}"
            + (f" ({via})" if via else ""),
        )
    except WorkflowAlreadyStartedError:
        first = ended_said(ended)
        raise Refused(
            (f"{first}; then " if first else "")
            + f"refused: only one workflow runs on pair {inv.pair} at a time, and "
            f"{await running_run(temporal, inv)}{hint}"
        ) from None
    run_id = handle.result_run_id or ""
    refused = await wait_for_precondition(temporal, inv, run_id) if wait else None
    return Started(run_id=run_id, what=what, refused=refused, ended_squatter=ended)


def signed_start(
    key: Ed25519PrivateKey,
    inv: Inventory,
    kind: str,
    inp: BaseModel,
    operator: str,
    after: str,
    console: bool = False,
) -> intent.SignedIntent:
    """The start signed with `key`: bound to the pair's workflow id and the run it
    follows (`after`: api/act.py followed_run), the kind and the whole input (its side, options
    and overrides): it starts one run."""
    run = intent.start_binding(inv.workflow_id, after)
    return signed_input(key, inv.pair, run, kind, "start", inp, operator, console)


async def wait_for_precondition(
    temporal: Client, inv: Inventory, run_id: str, timeout: float = 60
) -> str | None:
    """Wait until the workflow has read the devices; return the refusal, if any."""
    handle = temporal.get_workflow_handle(inv.workflow_id, run_id=run_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except Exception as e:
                return cause(e)
        try:
            c = await handle.query(PairWorkflow.progress)
        except Exception:
            c = None
        if c is not None and (c.state == "failed" or any(s.status != "pending" for s in c.steps)):
            return c.message if c.state == "failed" else None
        await asyncio.sleep(0.3)
    return None


# -- the dry run ----------------------------------------------------------------------------
def dry_run_workflow_id(inv: Inventory) -> str:
    """Its own id: never the pair's one-workflow id, so it runs beside a switch."""
    return f"{inv.workflow_id}-dry-run-{uuid.uuid4().hex[:12]}"


def dry_run_time_limit(inv: Inventory) -> float:
    return read_time_limit(inv, READS, spare=180)


async def dry_run(
    temporal: Client, inv: Inventory, kind: str, inp: BaseModel, operator: str
) -> DryRunResult:
    """What the start would do now, changing nothing: the short pair-dry-run workflow of
    KIND with the start's input (its own id, beside any run, no lock), waited for. It
    reads every device of the pair: for those who may read it (as `amsm status`)."""
    if not inv.may_read(operator):
        raise Refused(
            f"{operator} is neither an operator nor a viewer of pair {inv.pair} "
            "(inventory `operators:` / `viewers:`; set AMSM_OPERATOR to act as another name)"
        )
    try:
        return await temporal.execute_workflow(
            PairDryRunWorkflow.run,
            DryRunInput(pair=inv.pair, kind=kind, input=inp.model_dump(mode="json")),
            id=dry_run_workflow_id(inv),
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=dry_run_time_limit(inv)),
        )
    except Exception as e:
        raise Refused(
            f"the dry run of {kind} on pair {inv.pair} did not finish: {cause(e)}; "
            "is the pair's worker running?"
        ) from None
