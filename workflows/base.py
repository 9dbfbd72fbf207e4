"""What every big workflow of a pair shares: the checklist, its signals, its query, and the
steps that several workflows use (client switches, verified manual steps, abort)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        AllSyncState,
        Capabilities,
        InSyncState,
        PairRef,
        RunInput,
        SideInput,
        SideRunInput,
        StepResult,
    )
    from inventory.models import Side, Timing, other
    from inventory.status import PairStatus
    from workflows.activity_options import BOOTSTRAP, device_op
    from workflows.checklist import Aborted, StepRunner
    from workflows.client_switch import ClientBatchWorkflow, ClientSwitchWorkflow
    from workflows.models import (
        Checklist,
        ClientBatchInput,
        ClientProgress,
        ClientSwitchInput,
        ClientSwitchResult,
        ClientTarget,
        Decision,
        OperatorSignal,
        StepState,
    )
    from workflows.payloads import is_undecodable
    from workflows.routing import on_site


# Runs started before InSync/AllSync steps could be automated replay without the check.
AUTOMATE_PATCH = "automate-sync-steps"
# Runs started before child ids took the random end of the run id replay with its start.
CHILD_ID_PATCH = "child-id-random-tag"
# Runs started before clients were switched in batches replay with one child per client.
BATCH_PATCH = "client-batches"


def run_tag(run_id: str) -> str:
    return run_id.replace("-", "")[-12:]


class PairWorkflow:
    """Signals `confirm`, `approve`, `decide`; query `progress`; subclasses walk their steps."""

    runner: StepRunner | None = None
    timing: Timing
    pair: str
    caps: Capabilities = Capabilities()

    def __init__(self) -> None:
        self._early: list[tuple[str, OperatorSignal | Decision]] = []

    # Signals take raw payloads so that a malformed one (from the Web UI, say) is rejected
    # visibly in the checklist instead of being dropped by the data converter.
    @workflow.signal(name="confirm")
    def confirm(self, raw: RawValue) -> None:
        self._raw("confirm", raw)

    @workflow.signal(name="approve")
    def approve(self, raw: RawValue) -> None:
        self._raw("approve", raw)

    @workflow.signal(name="decide")
    def decide(self, raw: RawValue) -> None:
        self._raw("decide", raw)

    def _raw(self, kind: str, raw: RawValue) -> None:
        try:
            data = workflow.payload_converter().from_payload(raw.payload, dict)
            model = Decision if kind == "decide" else OperatorSignal
            payload = model.model_validate(data)
        except Exception as e:
            self._malformed(kind, raw, e)
            return
        self._signal(kind, payload)

    def _malformed(self, kind: str, raw: RawValue, e: Exception) -> None:
        what = str(e).splitlines()[0][:200]
        if isinstance(e, ValidationError):
            what = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
                for err in e.errors()
            )[:300]
        if is_undecodable(e):  # the codec's marker (workflows/payloads.py): a fixed text
            what = e.message
        if self.runner is None:
            workflow.logger.warning("malformed %s payload before start: %s", kind, what)
            return
        self.runner.reject(
            kind, "?", "?", what if is_undecodable(e) else f"malformed payload: {what}"
        )

    def _signal(self, kind: str, payload: OperatorSignal | Decision) -> str | None:
        """Hand a signal to the checklist; returns the reason when it is rejected."""
        if self.runner is None:
            # A signal can arrive before run() has built the checklist; keep it for later.
            self._early.append((kind, payload))
            return None
        if isinstance(payload, Decision):
            return self.runner.on_decision(payload)
        return self.runner.on_signal(kind, payload)

    # Updates back the CLI: the same effect as the signals, but a refusal comes back at
    # once (the validator runs before anything is written to the history).
    @workflow.update(name="confirm-step")
    def confirm_step(self, sig: OperatorSignal) -> str:
        reason = self._signal("confirm", sig)
        return f"refused: {reason}" if reason else "accepted"

    @confirm_step.validator
    def _check_confirm(self, sig: OperatorSignal) -> None:
        self._validate(lambda r: r.check_signal("confirm", sig))

    @workflow.update(name="approve-step")
    def approve_step(self, sig: OperatorSignal) -> str:
        reason = self._signal("approve", sig)
        return f"refused: {reason}" if reason else "accepted"

    @approve_step.validator
    def _check_approve(self, sig: OperatorSignal) -> None:
        self._validate(lambda r: r.check_signal("approve", sig))

    @workflow.update(name="decide-step")
    def decide_step(self, d: Decision) -> str:
        reason = self._signal("decide", d)
        return f"refused: {reason}" if reason else "accepted"

    @decide_step.validator
    def _check_decide(self, d: Decision) -> None:
        self._validate(lambda r: r.check_decision(d))

    def _validate(self, check: Callable[[StepRunner], str | None]) -> None:
        if self.runner is None:
            raise ValueError("the run is still starting; try again in a moment")
        reason = check(self.runner)
        if reason is not None:
            raise ValueError(reason)

    @workflow.query
    def progress(self) -> Checklist | None:
        return self.runner.checklist if self.runner else None

    def _start_runner(self, runner: StepRunner) -> None:
        self.runner = runner
        for kind, payload in self._early:
            self._signal(kind, payload)

    @property
    def steps(self) -> StepRunner:
        assert self.runner is not None
        return self.runner

    # -- the frame every workflow runs in ----------------------------------------------------
    async def walk(self, body: Callable[[], Awaitable[str]]) -> Checklist:
        """Run the steps; on abort, let in-flight work finish and report where devices are."""
        try:
            message = await body()
        except Aborted:
            self.steps.aborted(await self.where_devices_are())
            return self.steps.checklist
        self.steps.complete(message)
        return self.steps.checklist

    async def where_devices_are(self) -> list[str]:
        try:
            st = await self.probe()
        except Exception as e:  # the devices may be what failed; say so instead
            return [f"the devices could not be read: {e}"]
        mode, main, reason = st.derived
        out = [f"pair: {mode}" + (f", {main} main" if main else "") + f" ({reason})"]
        for side in ("X", "Y"):
            d = st.dsm[side]  # type: ignore[index]
            out.append(
                f"DSM {d.host}: {d.mode or 'not responding'}, replication {d.replication_text}"
            )
        out.append(
            "Browse: "
            + (
                f"Active on {st.browse_active_on}"
                if st.browse_active_on
                else "not active on one side"
            )
        )  # noqa: E501
        for s in ("X", "Y"):
            hosts = [c.host for c in st.clients if c.side == s]
            out.append(f"clients on {s}: {', '.join(hosts) or 'none'}")
        lost = [f"{c.host} ({c.status})" for c in st.clients if c.side is None]
        if lost:
            out.append(f"clients with no side: {', '.join(lost)}")
        out.append(
            f"InSync: {'running' if st.insync.running else 'stopped'}, main {st.insync.main}; "
            f"AllSync on: {', '.join(st.allsync.running_on) or 'nowhere'}"
        )
        return out

    # -- activities every workflow uses ----------------------------------------------------
    async def bootstrap(self, pair: str) -> PairStatus:
        self.pair = pair
        self.timing = await workflow.execute_activity(
            "get_timing", PairRef(pair=pair), result_type=Timing, **BOOTSTRAP
        )
        if workflow.patched(AUTOMATE_PATCH):
            self.caps = await workflow.execute_activity(
                "get_capabilities", PairRef(pair=pair), result_type=Capabilities, **BOOTSTRAP
            )
            if self.runner is not None:
                self.runner.operators = set(self.caps.operators)
                # Who started the run must be an operator; the refusal stays in the history.
                who = self.runner.checklist.initiator
                if self.runner.not_operator(who):
                    self.refuse(
                        self.runner.checklist.workflow, f"{who} is not an operator of pair {pair}"
                    )
        return await self.probe()

    async def probe(self) -> PairStatus:
        return await workflow.execute_activity(
            "probe_pair", PairRef(pair=self.pair), result_type=PairStatus, **BOOTSTRAP
        )

    async def act(self, activity: str, arg: object) -> str:
        r = await workflow.execute_activity(
            activity, arg, result_type=StepResult, **device_op(self.timing), **on_site(arg)
        )
        return r.message

    def auto(self, activity: str, arg: object) -> Callable[[StepState], Awaitable[str]]:
        async def action(_: StepState) -> str:
            return await self.act(activity, arg)

        return action

    def refuse(self, what: str, why: str) -> None:
        self.steps.fail(f"{what} refused: {why}")
        raise ApplicationError(
            f"{what} refused: {why}", type="PreconditionFailed", non_retryable=True
        )

    def require_mirrored(self, status: PairStatus, main: Side, what: str) -> None:
        mode, current, reason = status.derived
        if mode == "mirrored" and current == main:
            return
        if mode == "mirrored":
            self.refuse(what, f"{current} is main, not {main} (mirrored, {current} main)")
        self.refuse(what, f"the pair must be mirrored with {main} main; found {mode}: {reason}")

    # -- InSync / AllSync steps: automatic where the inventory names the service, else
    # manual and verified --------------------------------------------------------------------
    def insync_step(self, running: bool) -> dict[str, Any]:
        if self.caps.insync_service:
            return {"automatic": self.auto("insync_run", RunInput(pair=self.pair, running=running))}
        return {"verify": self.verify_insync(running)}

    def allsync_step(self, side: Side, running: bool) -> dict[str, Any]:
        if self.caps.allsync_service:
            arg = SideRunInput(pair=self.pair, side=side, running=running)
            return {"automatic": self.auto("allsync_run", arg)}
        return {"verify": self.verify_allsync(side, running)}

    # -- verified manual steps ---------------------------------------------------------------
    def verify_insync(self, running: bool) -> Callable[[StepState], Awaitable[str | None]]:
        async def check(_: StepState) -> str | None:
            st = await workflow.execute_activity(
                "insync_state",
                PairRef(pair=self.pair),
                result_type=InSyncState,
                **device_op(self.timing),
            )
            if st.running == running:
                return None
            return f"InSync is {'stopped' if not st.running else 'still running'} on {st.host}"

        return check

    def verify_allsync(
        self, side: Side, running: bool
    ) -> Callable[[StepState], Awaitable[str | None]]:
        async def check(_: StepState) -> str | None:
            where = SideInput(pair=self.pair, side=side)
            st = await workflow.execute_activity(
                "allsync_state", where, result_type=AllSyncState,
                **device_op(self.timing), **on_site(where),
            )  # fmt: skip
            if st.running == running:
                return None
            return f"AllSync is {'still running' if st.running else 'not running'} on {st.host}"

        return check

    # -- client switches -------------------------------------------------------------------------
    async def switch_clients(self, step: StepState, hosts: list[str], to: Side) -> str:
        """Switch clients in parallel, one child workflow each, at most N at a time.

        A client that fails waits for its own decision (retry or skip) while the
        others go on; after an abort no new client starts, and those in flight finish.
        """
        runner = self.steps
        step.clients = [ClientProgress(host=h, to=to) for h in hosts]
        runner.publish()
        if not hosts:
            return "no clients to switch"
        return await self.move_clients(step, step.clients)

    async def move_clients(self, step: StepState, clients: list[ClientProgress]) -> str:
        info = workflow.info()
        # Run ids are uuid7: their first characters are a timestamp shared by runs started
        # within a minute; the last ones are random. Older runs replay with the prefix.
        tag = run_tag(info.run_id) if workflow.patched(CHILD_ID_PATCH) else info.run_id[:8]
        if workflow.patched(BATCH_PATCH):
            await self._move_in_batches(step, clients, tag)
        else:
            await self._move_one_by_one(step, clients, tag)
        self.steps.check_abort()
        done = [c for c in clients if c.status == "done"]
        skipped = [c for c in clients if c.status == "skipped"]
        slowest = max((c.seconds or 0) for c in done) if done else 0
        msg = f"{len(done)} client(s) switched (slowest {slowest:.1f} s)"
        if skipped:
            msg += f"; left behind on purpose: {', '.join(c.host for c in skipped)}"
        return msg

    async def _move_in_batches(
        self, step: StepState, clients: list[ClientProgress], tag: str
    ) -> None:
        """One `client-batch` child per `client_batch_size` clients, at most
        `max_parallel_clients` clients switching at once. A failed client waits for its
        own decision; a retry switches it alone, in a batch of one."""
        runner = self.steps
        size = min(self.timing.client_batch_size, self.timing.max_parallel_clients)
        limit = asyncio.Semaphore(max(1, self.timing.max_parallel_clients // size))

        async def batch(group: list[ClientProgress], wid: str) -> None:
            async with limit:
                if runner.abort is not None:
                    return
                for cp in group:
                    cp.status, cp.error = "switching", None
                    cp.attempts += 1
                    cp.workflow_id = wid
                runner.publish()
                result = await workflow.execute_child_workflow(
                    ClientBatchWorkflow.run,
                    ClientBatchInput(
                        pair=self.pair,
                        clients=[ClientTarget(host=cp.host, to=cp.to) for cp in group if cp.to],
                        timing=self.timing,
                    ),
                    id=wid,
                    # A client switch that has started is never cancelled half-way.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    cancellation_type=ChildWorkflowCancellationType.ABANDON,
                )
            by_host = {r.host: r for r in result.results}
            await asyncio.gather(*(settle(cp, by_host.get(cp.host)) for cp in group))

        async def settle(cp: ClientProgress, r: ClientSwitchResult | None) -> None:
            if r is None:  # cannot happen: every client of a batch has a result
                r = ClientSwitchResult(host=cp.host, ok=False, message="no result", seconds=0)
            if await self._retry_wanted(step, cp, r):
                await batch([cp], f"amsm-{self.pair}-{tag}-{cp.host}-{cp.attempts + 1}")

        groups = [clients[i : i + size] for i in range(0, len(clients), size)]
        await asyncio.gather(
            *(batch(g, f"amsm-{self.pair}-{tag}-{step.id}-{n}") for n, g in enumerate(groups, 1))
        )

    async def _move_one_by_one(
        self, step: StepState, clients: list[ClientProgress], tag: str
    ) -> None:
        """Before the `client-batches` patch: one `client-switch` child per client."""
        runner = self.steps
        limit = asyncio.Semaphore(self.timing.max_parallel_clients)

        async def one(cp: ClientProgress) -> None:
            while True:
                async with limit:
                    if runner.abort is not None:
                        return
                    cp.status, cp.error = "switching", None
                    cp.attempts += 1
                    runner.publish()
                    suffix = f"-{cp.attempts}" if cp.attempts > 1 else ""
                    assert cp.to is not None
                    # From the pair, not workflow_id, so a history replays under any id.
                    cp.workflow_id = f"amsm-{self.pair}-{tag}-{cp.host}{suffix}"
                    result = await workflow.execute_child_workflow(
                        ClientSwitchWorkflow.run,
                        ClientSwitchInput(
                            pair=self.pair, host=cp.host, to=cp.to, timing=self.timing
                        ),
                        id=cp.workflow_id,
                        # A client switch that has started is never cancelled half-way.
                        parent_close_policy=ParentClosePolicy.ABANDON,
                        cancellation_type=ChildWorkflowCancellationType.ABANDON,
                    )
                if not await self._retry_wanted(step, cp, result):
                    return

        await asyncio.gather(*(one(cp) for cp in clients))

    async def _retry_wanted(
        self, step: StepState, cp: ClientProgress, r: ClientSwitchResult
    ) -> bool:
        """Record a client's result; a failed one waits for its own decision. True when
        the operator asked for it to be switched again."""
        runner = self.steps
        cp.seconds = r.seconds
        if r.ok:
            cp.status, cp.message = "done", r.message
            runner.publish()
            return False
        cp.status, cp.error = "failed", r.message
        try:
            d = await runner.decision_for(f"{step.id}/{cp.host}")
        except Aborted:
            return False
        if d.action == "skip":
            cp.status, cp.message = "skipped", f"skipped by {d.operator}: {d.reason}"
            runner.publish()
            return False
        return True

    def clients_on(
        self, status: PairStatus, side: Side, exclude: list[str] | None = None
    ) -> list[str]:
        skip = {h.lower() for h in exclude or []}
        return [c.host for c in status.clients if c.side == side and c.host.lower() not in skip]

    def unknown_clients(self, status: PairStatus) -> str:
        lost = [f"{c.host} ({c.status})" for c in status.clients if c.side is None]
        return f"; not switched (side unknown): {', '.join(lost)}" if lost else ""

    @staticmethod
    def other(side: Side) -> Side:
        return other(side)
