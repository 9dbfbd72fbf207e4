"""What every big workflow of a pair shares: the checklist, its signals and its query."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import PairRef, StepResult
    from inventory.models import Side, Timing
    from inventory.status import PairStatus
    from workflows.activity_options import BOOTSTRAP, device_op
    from workflows.checklist import StepRunner
    from workflows.client_switch import ClientSwitchWorkflow
    from workflows.models import (
        Checklist,
        ClientProgress,
        ClientSwitchInput,
        OperatorSignal,
        StepState,
    )


class PairWorkflow:
    """Signals `confirm` and `approve`, query `progress`; subclasses walk their steps."""

    runner: StepRunner | None = None
    timing: Timing
    pair: str

    @workflow.signal
    def confirm(self, sig: OperatorSignal) -> None:
        self._signal("confirm", sig)

    @workflow.signal
    def approve(self, sig: OperatorSignal) -> None:
        self._signal("approve", sig)

    def _signal(self, kind: str, sig: OperatorSignal) -> None:
        if self.runner is None:
            # A signal can arrive before run() has built the checklist; keep it for later.
            self._early.append((kind, sig))
            return
        self.runner.on_signal(kind, sig)

    @workflow.query
    def progress(self) -> Checklist | None:
        return self.runner.checklist if self.runner else None

    def _start_runner(self, runner: StepRunner) -> None:
        self.runner = runner
        for kind, sig in getattr(self, "_early", []):
            runner.on_signal(kind, sig)

    def __init__(self) -> None:
        self._early: list[tuple[str, OperatorSignal]] = []

    # -- activities every workflow uses ----------------------------------------------------
    async def bootstrap(self, pair: str) -> PairStatus:
        self.pair = pair
        self.timing = await workflow.execute_activity(
            "get_timing", PairRef(pair=pair), result_type=Timing, **BOOTSTRAP
        )
        return await self.probe()

    async def probe(self) -> PairStatus:
        return await workflow.execute_activity(
            "probe_pair", PairRef(pair=self.pair), result_type=PairStatus, **BOOTSTRAP
        )

    async def act(self, activity: str, arg: object) -> str:
        r = await workflow.execute_activity(
            activity, arg, result_type=StepResult, **device_op(self.timing)
        )
        return r.message

    async def switch_clients(self, step: StepState, hosts: list[str], to: Side) -> str:
        """Switch the clients in parallel, one child workflow each, at most N at a time."""
        assert self.runner is not None
        step.clients = [ClientProgress(host=h) for h in hosts]
        self.runner.publish()
        if not hosts:
            return "no clients to switch"
        limit = asyncio.Semaphore(self.timing.max_parallel_clients)
        info = workflow.info()

        async def one(cp: ClientProgress) -> None:
            async with limit:
                cp.status = "switching"
                assert self.runner is not None
                self.runner.publish()
                result = await workflow.execute_child_workflow(
                    ClientSwitchWorkflow.run,
                    ClientSwitchInput(pair=self.pair, host=cp.host, to=to, timing=self.timing),
                    # From the pair, not workflow_id, so a history replays under any id.
                    id=f"amsm-{self.pair}-{info.run_id[:8]}-{cp.host}",
                    # A client switch that has started is never cancelled half-way.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    cancellation_type=ChildWorkflowCancellationType.ABANDON,
                )
                cp.status = "done" if result.ok else "failed"
                cp.seconds = result.seconds
                if result.ok:
                    cp.message = result.message
                else:
                    cp.error = result.message
                self.runner.publish()

        await asyncio.gather(*(one(cp) for cp in step.clients))
        failed = [c for c in step.clients if c.status == "failed"]
        if failed:
            raise ApplicationError(
                f"{len(failed)} of {len(hosts)} client(s) failed: "
                + "; ".join(f"{c.host}: {c.error}" for c in failed),
                type="ClientSwitchFailed",
                non_retryable=True,
            )
        slowest = max((c.seconds or 0) for c in step.clients)
        return f"{len(hosts)} client(s) switched to {to} (slowest {slowest:.1f} s)"
