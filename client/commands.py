"""The commands behind `amsm`. Each Temporal command is an async function over a Client,
so tests drive exactly the CLI's code path."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from client.fence import fence_command, read_fence, render_fence
from client.history_args import HISTORY_COMMANDS
from client.render import render_checklist, render_status
from client.rules import control_overrides
from client.runs import (
    STATE_OF,
    cause,
    connect,
    connection,
    current_status,
    fetch_checklist,
    resolve_run,
)
from client.session import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    bad_arguments,
    default_operator,
    emit,
)
from client.watch import watch, watch_status
from inventory.load import InventoryError, load_inventory
from inventory.models import Inventory, other
from workflows import search
from workflows.kinds import KINDS
from workflows.models import (
    Checklist,
    Decision,
    OperatorSignal,
    RestoreInput,
    SplitInput,
    SplitSwitchInput,
    SwitchInput,
    UpdateResult,
)


async def run_temporal_command(args: argparse.Namespace, inv: Inventory) -> int:
    client = await connect(connection(args))
    return await run_command(client, args, inv)


READ_COMMANDS = ("status", "show", "runs", "watch")


async def run_command(client: Client, args: argparse.Namespace, inv: Inventory) -> int:
    try:
        return await _run_command(client, args, inv)
    except ValidationError as e:
        # An argument outside the limits every workflow enforces (README "Limits").
        raise CliError(bad_arguments(e), EXIT_USAGE) from None


async def _run_command(client: Client, args: argparse.Namespace, inv: Inventory) -> int:
    cmd = args.command
    if cmd in HISTORY_COMMANDS:
        from client.history_cli import run_history_command

        return await run_history_command(client, inv, args)
    if cmd in READ_COMMANDS:
        who = default_operator()
        if not inv.may_read(who):
            raise CliError(
                f"{who} is neither an operator nor a viewer of pair {inv.pair} "
                "(inventory `operators:` / `viewers:`; set AMSM_OPERATOR to act as another name)"
            )
    if cmd not in ("show", "watch") and not getattr(args, "json", False):
        await notice_waiting_run(client, inv, args)
    if cmd == "runs":
        return await runs(client, inv, args)
    if cmd == "watch":
        return await watch(client, inv, args)
    if cmd == "status":
        return await status(client, inv, args)
    if cmd == "start":
        return await start(client, inv, args)
    if cmd == "show":
        return await show(client, inv, args)
    if cmd in ("confirm", "approve"):
        return await signal(client, inv, args, cmd)
    if cmd in ("retry", "skip", "abort"):
        return await decide(client, inv, args, cmd)
    if cmd == "fence":
        return await fence_command(client, inv, args)
    if getattr(args, "control", None):
        return await control(client, inv, args)
    raise CliError(f"unknown command {cmd}", EXIT_USAGE)


async def notice_waiting_run(client: Client, inv: Inventory, args: argparse.Namespace) -> None:
    """One line on stderr when a run on the pair waits for the operator (as the 2008 tool
    said on relaunch which workflow was unfinished), unless this command acts on the very
    step that waits."""
    handle = client.get_workflow_handle(inv.workflow_id)
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return
        c = await asyncio.wait_for(handle.query("progress", result_type=Checklist), timeout=3)
    except Exception:
        return  # no run, or no worker to answer: the command itself will say what matters
    if c is None or not c.awaiting:
        return
    from workflows.view import next_action

    c.run_id = desc.run_id
    s = c.awaiting[0]
    if args.command in ("confirm", "approve", "retry", "skip") and getattr(args, "step", None) in (
        s.id,
        None,
    ):
        return
    if args.command == "abort":
        return
    print(
        f"note: the {c.workflow} run {desc.run_id} waits for you at {s.id}: {next_action(c)}",
        file=sys.stderr,
    )


# -- status ---------------------------------------------------------------------------------
async def status(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    if getattr(args, "watch", False):
        return await watch_status(client, inv, args)
    st, when = await current_status(client, inv, args)
    data, text = st.to_json(), render_status(st)
    if when:
        data["read"] = when
        text = f"{text}\n\n({when})"
    # A fence that still waits on a lost side is part of the pair's state (a side that
    # answers again goes to backup at once).

    try:
        view = await read_fence(client, inv.pair)
    except CliError:
        view = None
    waiting = view if view is not None and view.state.status == "waiting" else None
    data["fence"] = waiting.model_dump(mode="json") if waiting else None
    if waiting:
        text += "\n\n" + render_fence(waiting)
    emit(args, data, text)
    return EXIT_OK


# -- runs -----------------------------------------------------------------------------------
async def show(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    c = await fetch_checklist(await resolve_run(client, inv, args.run))
    data, text = c.model_dump(mode="json"), render_checklist(c)
    if c.fence is not None:
        view = await read_fence(client, inv.pair, c.fence)
        data["fence_state"] = view.model_dump(mode="json") if view else None
        text += "\n\n" + (render_fence(view) if view else f"fence {c.fence.workflow_id}: not found")
    emit(args, data, text)
    return EXIT_OK


# -- runs -----------------------------------------------------------------------------------
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")


async def runs(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Runs of the pair from Temporal's visibility (search attributes), newest first."""
    query = [f"{search.PAIR.name} = '{inv.pair}'"]
    if args.kind:
        query.append(f"{search.KIND.name} = '{args.kind}'")
    if args.state:
        query.append(f"{search.STATE.name} = '{args.state}'")
    if args.operator:
        if not SAFE_VALUE.fullmatch(args.operator):
            raise CliError(
                f"--operator {args.operator!r}: letters, digits, _ . @ - and space", EXIT_USAGE
            )
        query.append(f"{search.INITIATOR.name} = '{args.operator}'")
    rows = []
    async for w in client.list_workflows(" AND ".join(query), limit=args.limit):
        if w.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue  # one run in the rows: the newest of a chain that continued as new
        sa = w.typed_search_attributes
        state = sa.get(search.STATE) or "running"
        if w.status in STATE_OF and state in ("running", "awaiting-operator"):
            state = STATE_OF[w.status]
        end = w.close_time
        rows.append(
            {
                "run_id": w.run_id,
                "workflow_id": w.id,
                "kind": sa.get(search.KIND) or w.workflow_type,
                "state": state,
                "initiator": sa.get(search.INITIATOR),
                "start": w.start_time.isoformat(timespec="seconds") if w.start_time else None,
                "end": end.isoformat(timespec="seconds") if end else None,
                "duration_s": round((end - w.start_time).total_seconds(), 1)
                if end and w.start_time
                else None,
            }
        )
    if getattr(args, "json", False):
        print(json.dumps({"pair": inv.pair, "runs": rows}))
        return EXIT_OK
    if not rows:
        print(f"no runs of pair {inv.pair} match")
        return EXIT_OK
    print(f"{'run':36}  {'kind':12} {'state':17} {'initiator':12} {'start':25} duration")
    for r in rows:
        dur = f"{r['duration_s']:.0f} s" if r["duration_s"] is not None else "-"
        print(
            f"{r['run_id']:36}  {r['kind']:12} {r['state']:17} {r['initiator'] or '-':12} "
            f"{r['start'] or '-':25} {dur}"
        )
    return EXIT_OK


# -- start ----------------------------------------------------------------------------------
async def running_run(client: Client, inv: Inventory) -> str:
    """One line about the run that holds the pair, for a refusal."""
    try:
        desc = await client.get_workflow_handle(inv.workflow_id).describe()
    except RPCError:
        return f"workflow {inv.workflow_id}"
    return (
        f"run {desc.run_id} ({desc.workflow_type}, started {desc.start_time:%Y-%m-%d %H:%M:%S} UTC)"
    )


def index(inv: Inventory, kind: str, initiator: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(search.PAIR, inv.pair),
            SearchAttributePair(search.KIND, kind),
            SearchAttributePair(search.INITIATOR, initiator),
            SearchAttributePair(search.STATE, "running"),
        ]
    )


def workflow_input(inv: Inventory, args: argparse.Namespace) -> tuple[BaseModel, str]:
    """The workflow's input and a one-line description of what it will do."""
    who = args.operator
    if args.kind == "switch":
        reason = (args.reason or "").strip() or None
        if args.unplanned and reason is None:
            raise CliError(
                'an unplanned switch needs a reason: --unplanned --reason "X lost: ..."',
                EXIT_USAGE,
            )
        if reason and not args.unplanned:
            raise CliError("--reason goes with --unplanned (a planned switch has none)", EXIT_USAGE)
        how = "unplanned switch" if args.unplanned else "switch"
        return SwitchInput(
            pair=inv.pair, to=args.to, initiator=who, unplanned=args.unplanned, reason=reason
        ), f"{how} {other(args.to)} -> {args.to}"
    if args.kind == "split":
        return SplitInput(pair=inv.pair, main=args.main, initiator=who), (
            f"split, {args.main} stays main"
        )
    if args.kind == "split-switch":
        pilots = list(dict.fromkeys(args.pilot))
        return SplitSwitchInput(pair=inv.pair, to=args.to, pilots=pilots, initiator=who), (
            f"split-switch {other(args.to)} -> {args.to}, pilots {', '.join(pilots)}"
        )
    if args.kind == "restore":
        if args.tolerance < 0:
            raise CliError("--tolerance must be 0 or more", EXIT_USAGE)
        return RestoreInput(
            pair=inv.pair, main=args.main, initiator=who, asset_tolerance=args.tolerance
        ), f"restore with {args.main} main"
    raise CliError(
        f"unknown workflow {args.kind!r}; available: {', '.join(KINDS)}",
        EXIT_USAGE,
    )


async def start(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    inp, what = workflow_input(inv, args)
    # A run that would make main a side a fence still waits on is refused by the run
    # itself (workflows/base.py bootstrap), whoever starts it.
    try:
        handle = await client.start_workflow(
            args.kind,
            inp,
            id=inv.workflow_id,
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={"kind": args.kind, "what": what, "initiator": args.operator},
            search_attributes=index(inv, args.kind, args.operator),
            static_summary=f"{what} on pair {inv.pair}, by {args.operator}",
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"refused: only one workflow runs on pair {inv.pair} at a time, and "
            f"{await running_run(client, inv)} is running. See it with `amsm show current`."
        ) from None
    run_id = handle.result_run_id or ""
    if not args.no_wait:
        refused = await wait_for_precondition(client, inv, run_id)
        if refused:
            emit(args, {"run_id": run_id, "refused": refused}, f"amsm: {refused}")
            return EXIT_FAIL
    emit(
        args,
        {"run_id": run_id},
        f"started {what} on pair {inv.pair}\nrun: {run_id}\nfollow it: amsm show {run_id}",
    )
    return EXIT_OK


async def wait_for_precondition(
    client: Client, inv: Inventory, run_id: str, timeout: float = 60
) -> str | None:
    """Wait until the workflow has read the devices; return the refusal, if any."""
    handle = client.get_workflow_handle(inv.workflow_id, run_id=run_id)
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
            c = await handle.query("progress", result_type=Checklist)
        except Exception:
            c = None
        if c is not None and (c.state == "failed" or any(s.status != "pending" for s in c.steps)):
            return c.message if c.state == "failed" else None
        await asyncio.sleep(0.3)
    return None


# -- confirm / approve ----------------------------------------------------------------------
async def signal(client: Client, inv: Inventory, args: argparse.Namespace, verb: str) -> int:
    handle = await resolve_run(client, inv, args.run)
    before = await fetch_checklist(handle)
    want = "awaiting-approval" if verb == "approve" else "awaiting-confirmation"
    try:
        step = before.step(args.step)
    except KeyError:
        ids = ", ".join(s.id for s in before.steps)
        raise CliError(
            f"run {before.run_id} has no step {args.step!r}; steps: {ids}", EXIT_USAGE
        ) from None
    if before.state not in ("running", "awaiting-operator"):
        raise CliError(f"run {before.run_id} is {before.state}; nothing to {verb}")
    if step.status != want:
        hint = ""
        if step.kind == "gate" and verb == "confirm":
            hint = f" (it is a gate: amsm approve {before.run_id} {step.id})"
        elif step.kind == "manual" and verb == "approve":
            hint = f" (it is a manual step: amsm confirm {before.run_id} {step.id})"
        elif before.awaiting:
            hint = f"; the run waits for {before.awaiting[0].id}"
        raise CliError(f"step {step.id} is {step.status}, not {want}{hint}")
    sig = OperatorSignal(
        step=args.step,
        operator=args.operator,
        note=args.note,
        clients=getattr(args, "client", None),
    )
    await send_update(handle, f"{verb}-step", sig)
    # Wait until the workflow has taken it, so the operator sees the effect.
    after = before
    for _ in range(50):
        after = await fetch_checklist(handle)
        if after.step(args.step).status != want or len(after.rejected) > len(before.rejected):
            break
        await asyncio.sleep(0.1)
    if len(after.rejected) > len(before.rejected):
        raise CliError(f"the workflow rejected it: {after.rejected[-1].reason}")
    nxt = after.awaiting[0].id if after.awaiting else None
    past = {"confirm": "confirmed", "approve": "approved"}[verb]
    text = f"{past} {args.step} on run {after.run_id} as {args.operator}"
    if nxt:
        text += f"\nnow waiting for: {nxt}"
    emit(
        args,
        {"run_id": after.run_id, "step": args.step, "status": after.step(args.step).status},
        text,
    )
    return EXIT_OK


async def send_update(handle: WorkflowHandle[Any, Any], name: str, arg: BaseModel) -> None:
    """An Update: the workflow's validator answers at once when it refuses."""
    try:
        answer = await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=UpdateResult), timeout=30
        )
    except WorkflowUpdateFailedError as e:
        raise CliError(f"the workflow refused it: {cause(e)}") from None
    except TimeoutError:
        raise CliError(
            "no answer within 30 s: is a worker running for the pair? (the request may still "
            "be delivered when one starts)"
        ) from None
    if not answer.accepted:
        # Recorded in the run's checklist under "Rejected signals".
        raise CliError(f"the workflow refused it: {answer.reason}")


async def decide(client: Client, inv: Inventory, args: argparse.Namespace, action: str) -> int:
    """retry / skip a failed step or client, or abort the run: the `decide` signal."""
    handle = await resolve_run(client, inv, args.run)
    before = await fetch_checklist(handle)
    if before.state not in ("running", "awaiting-operator"):
        raise CliError(f"run {before.run_id} is {before.state}; nothing to {action}")
    step_id = getattr(args, "step", "") or ""
    client_host = getattr(args, "client", None)
    if action != "abort":
        try:
            step = before.step(step_id)
        except KeyError:
            ids = ", ".join(s.id for s in before.steps)
            raise CliError(
                f"run {before.run_id} has no step {step_id!r}; steps: {ids}", EXIT_USAGE
            ) from None
        failed = [c.host for c in step.failed_clients]
        if client_host and client_host.lower() not in {h.lower() for h in failed}:
            raise CliError(
                f"{client_host} is not a failed client of {step.id} "
                f"(failed: {', '.join(failed) or 'none'})"
            )
        can_skip_waiting = action == "skip" and step.status in (
            "awaiting-confirmation",
            "awaiting-approval",
        )
        if step.status != "failed" and not failed and not can_skip_waiting:
            raise CliError(
                f"step {step.id} is {step.status}; only a failed step "
                + ("or one awaiting the operator " if action == "skip" else "")
                + f"can be {'retried' if action == 'retry' else 'skipped'}"
            )
        if client_host:
            client_host = next(h for h in failed if h.lower() == client_host.lower())
    d = Decision(
        step=step_id,
        action=action,  # type: ignore[arg-type]
        operator=args.operator,
        reason=args.reason,
        client=client_host,
    )
    await send_update(handle, "decide-step", d)
    after = before
    for _ in range(50):
        after = await fetch_checklist(handle)
        if len(after.decisions) > len(before.decisions) or len(after.rejected) > len(
            before.rejected
        ):
            break
        await asyncio.sleep(0.1)
    if len(after.rejected) > len(before.rejected):
        raise CliError(f"the workflow rejected it: {after.rejected[-1].reason}")
    target = f"{step_id} {client_host}" if client_host else step_id
    text = {
        "retry": f"retrying {target} on run {after.run_id}",
        "skip": f"skipped {target} on run {after.run_id}: {args.reason}",
        "abort": f"aborting run {after.run_id}: in-flight client switches finish first; "
        f"see `amsm show {after.run_id}`",
    }[action]
    emit(
        args,
        {"run_id": after.run_id, "action": action, "step": step_id, "client": client_host},
        text,
    )
    return EXIT_OK


def check_hosts(inv: Inventory, args: argparse.Namespace) -> list[str]:
    """The HOSTs of a control, as the inventory spells them; unknown ones are a usage error."""
    if args.control == "clients-switch":
        pool = {c.host.lower(): c.host for c in inv.clients}
        what = "switchable clients"
    elif args.control.startswith("browse-"):
        pool = {b.host.host.lower(): b.host.host for b in inv.browse}
        what = "Browse hosts"
    else:
        pool = {h.host.lower(): h.host for _, h in inv.all_hosts()}
        what = "hosts"
    unknown = [h for h in args.hosts if h.lower() not in pool]
    if unknown:
        raise CliError(
            f"not among the {what} of pair {inv.pair}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(pool.values()))})",
            EXIT_USAGE,
        )
    return list(dict.fromkeys(pool[h.lower()] for h in args.hosts))


async def control(client: Client, inv: Inventory, args: argparse.Namespace) -> int:
    """Run one console control as a short workflow and wait for its sentence."""
    from workflows.control import ControlInput, ControlResult

    overrides = control_overrides(args)
    inp = ControlInput(
        pair=inv.pair,
        control=args.control,
        operator=args.operator,
        side=args.side,
        hosts=check_hosts(inv, args),
        overrides=overrides,
    )
    try:
        handle = await client.start_workflow(
            "control",
            inp,
            id=f"{inv.workflow_id}-control",
            task_queue=inv.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            result_type=ControlResult,
            search_attributes=index(inv, "control", args.operator),
            static_summary=f"{args.control} {args.side or ''} {' '.join(inp.hosts)} by {args.operator}"
            + "".join(f", overriding {o.rule}" for o in overrides),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"refused: another control is running on pair {inv.pair}; one at a time"
        ) from None
    try:
        result = await handle.result()
    except Exception as e:
        raise CliError(cause(e)) from None
    text = result.message + "".join(f"\n  {d}" for d in result.details)
    text += "".join(f"\n  {o.sentence()}" for o in result.overrides)
    emit(args, {"run_id": handle.result_run_id, **result.model_dump(mode="json")}, text)
    return EXIT_OK


# -- local commands (no Temporal) -------------------------------------------------------------------
def inventory_check(path: str) -> int:
    try:
        inv = load_inventory(path)
    except InventoryError as e:
        print(e.explain())
        return EXIT_FAIL
    n_hosts = len({h.host.lower() for _, h in inv.all_hosts()})
    for w in inv.warnings():
        print(f"warning: {w}")
    print(
        f"{path}: ok: pair {inv.pair}, {n_hosts} hosts, {len(inv.clients)} switchable clients, "
        f"{len(inv.browse)} Browse components"
    )
    return EXIT_OK


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
