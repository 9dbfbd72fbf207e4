"""switch: A main -> B main, the 18 steps of manual chapter 4."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import BrowseInput, BrowseSwitchInput, DsmModeInput, SideInput
    from inventory.models import other
    from workflows.base import PairWorkflow
    from workflows.checklist import StepRunner
    from workflows.models import Checklist, StepState, SwitchInput
    from workflows.steps import switch_steps


@workflow.defn(name="switch")
class SwitchWorkflow(PairWorkflow):
    @workflow.init
    def __init__(self, inp: SwitchInput) -> None:
        super().__init__()

    @workflow.run
    async def run(self, inp: SwitchInput) -> Checklist:
        b = inp.to
        a = other(b)
        la, lb = a.lower(), b.lower()
        pair = inp.pair
        runner = StepRunner(
            "switch", pair, f"Switch {a} -> {b} ({pair})", inp.initiator, switch_steps(a, b)
        )
        self._start_runner(runner)

        status = await self.bootstrap(pair)
        mode, main, reason = status.derived
        if mode != "mirrored" or main != a:
            if mode == "mirrored" and main == b:
                why = f"{b} is already main (mirrored, {b} main)"
            else:
                why = f"the pair must be mirrored with {a} main; found {mode}: {reason}"
            runner.fail(f"switch to {b} refused: {why}")
            raise ApplicationError(
                f"switch to {b} refused: {why}", type="PreconditionFailed", non_retryable=True
            )
        to_move = [c.host for c in status.clients if c.side == a]
        skipped = [f"{c.host} ({c.status})" for c in status.clients if c.side is None]

        async def do(activity: str, arg: object) -> str:
            return await self.act(activity, arg)

        def auto(activity: str, arg: object):  # type: ignore[no-untyped-def]
            async def action(_: StepState) -> str:
                return await do(activity, arg)

            return action

        async def clients(step: StepState) -> str:
            msg = await self.switch_clients(step, to_move, b)
            if skipped:
                msg += f"; not switched (side unknown): {', '.join(skipped)}"
            return msg

        await runner.run(
            "stop-replication", auto("dsm_stop_replication", SideInput(pair=pair, side=a))
        )
        await runner.run(
            f"dsm-{la}-backup", auto("dsm_set_mode", DsmModeInput(pair=pair, side=a, mode="backup"))
        )
        await runner.run("stop-browse", auto("browse_stop", BrowseInput(pair=pair)))
        await runner.run("switch-browse", auto("browse_switch", BrowseSwitchInput(pair=pair, to=b)))
        await runner.run("stop-insync")
        await runner.run("stop-allsync")
        await runner.run(f"insync-{lb}-main", auto("insync_set_main", SideInput(pair=pair, side=b)))
        await runner.run(
            f"smartbins-{la}-backup", auto("smartbins_set_backup", SideInput(pair=pair, side=a))
        )
        await runner.run(
            f"dsm-{lb}-main", auto("dsm_set_mode", DsmModeInput(pair=pair, side=b, mode="main"))
        )
        await runner.run(
            f"smartbins-{lb}-main", auto("smartbins_set_main", SideInput(pair=pair, side=b))
        )
        await runner.run("switch-clients", clients)
        await runner.run("check-projects")
        await runner.run("start-browse", auto("browse_start", BrowseInput(pair=pair)))
        await runner.run(f"verify-{lb}")
        await runner.run("approve-overwrite")
        await runner.run(
            "start-replication", auto("dsm_start_replication", SideInput(pair=pair, side=b))
        )
        await runner.run("start-insync")
        await runner.run("start-allsync")
        runner.complete(f"switch complete: mirrored, {b} main")
        return runner.checklist
