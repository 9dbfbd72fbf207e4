"""A pair's walk with no device (a manual step, a gate, a step that fails once), for the
notices' timers under Temporal's time-skipping test server (tests/integration/
test_notify_timers.py): the engine's own StepRunner, signals and Notices, no lab."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import Capabilities, NotifyPlan
    from workflows.base import PairWorkflow
    from workflows.checklist import StepRunner
    from workflows.models import Checklist, StepDef, StepState

STEPS = [
    StepDef(id="stop-insync", kind="manual", title="Stop InSync on the Control Point PC"),
    StepDef(id="approve-overwrite", kind="gate", title="Y's database will be overwritten by X's"),
    StepDef(id="start-browse", kind="auto", title="Start Browse on Y"),
]


class WalkInput(BaseModel):
    pair: str
    plan: NotifyPlan
    initiator: str = "tester"
    # A short history continues as new while a step waits (timing.continue_after_events).
    continue_after: int = 10_000
    resume: Checklist | None = None


@workflow.defn(name="notify-walk")
class NotifyWalk(PairWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    @workflow.run
    async def run(self, inp: WalkInput) -> Checklist:
        self.pair = inp.pair
        runner = StepRunner(
            "switch", inp.pair, "Switch to Y", inp.initiator, STEPS, resume=inp.resume
        )
        self._start_runner(runner, inp)
        runner.continue_after_events = inp.continue_after
        self.caps = Capabilities(notify=inp.plan)
        self._open_signals()
        self.tell_people()

        async def fails_once(_: StepState) -> str:
            self.tries += 1
            if self.tries == 1:
                raise ApplicationError("Browse did not answer", non_retryable=True)
            return "Browse started"

        async def body() -> str:
            await self.steps.run("stop-insync")
            await self.steps.run("approve-overwrite")
            await self.steps.run("start-browse", fails_once)
            return "switched to Y"

        return await self.walk(body)
