"""switch: A main -> B main, the 18 steps of manual chapter 4 (and, with `unplanned`,
the same steps when A is lost: workflows/unplanned.py)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from activities.browse import BrowseActivities
    from activities.dsm import DsmActivities
    from activities.models import BrowseInput, BrowseSwitchInput, DsmModeInput, SideInput
    from activities.smartbins import SmartBinsActivities
    from activities.sync_tools import SyncToolActivities
    from inventory.models import other
    from inventory.status import PairStatus
    from workflows import preconditions
    from workflows.checklist import StepRunner
    from workflows.inputs import read_input
    from workflows.kinds import KINDS
    from workflows.models import Checklist, StepState, SwitchInput
    from workflows.steps import switch_steps
    from workflows.unplanned import SwitchPlan, UnplannedSwitch

# Runs started before manual steps were verified replay without the checks.
VERIFY_PATCH = "verify-manual-steps"


@workflow.defn(name="switch")
class SwitchWorkflow(UnplannedSwitch):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        inp = read_input(SwitchInput, raw, "switch")
        b = inp.to
        a = other(b)
        la, lb = a.lower(), b.lower()
        pair = inp.pair
        self._start_runner(
            StepRunner(
                "switch",
                pair,
                KINDS["switch"].title(a, b, inp),
                inp.initiator,
                switch_steps(a, b),
                resume=inp.resume,
            ),
            inp,
        )
        status = await self.bootstrap(pair, preconditions.makes_main("switch", b))
        plan = self.unplanned_plan(inp, status) if inp.unplanned else self.planned(inp, status)
        run, auto = self.steps.run, self.auto

        async def body() -> str:
            await run("stop-replication", plan.stop_replication)
            await run(f"dsm-{la}-backup", plan.dsm_a_backup)
            await run("stop-browse", auto(BrowseActivities.browse_stop, BrowseInput(pair=pair)))
            await run(
                "switch-browse",
                auto(BrowseActivities.browse_switch, BrowseSwitchInput(pair=pair, to=b)),
            )
            await run("stop-insync", **plan.stop_insync)
            await run("stop-allsync", **plan.stop_allsync)
            await run(
                f"insync-{lb}-main",
                auto(SyncToolActivities.insync_set_main, SideInput(pair=pair, side=b)),
            )
            await run(f"smartbins-{la}-backup", plan.smartbins_a_backup)
            await run(
                f"dsm-{lb}-main",
                auto(DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=b, mode="main")),
            )
            await run(
                f"smartbins-{lb}-main",
                auto(SmartBinsActivities.smartbins_set_main, SideInput(pair=pair, side=b)),
            )
            await run("switch-clients", plan.clients)
            await run("check-projects")
            await run("start-browse", auto(BrowseActivities.browse_start, BrowseInput(pair=pair)))
            await run(f"verify-{lb}")
            return await plan.finish()

        return await self.walk(body)

    def planned(self, inp: SwitchInput, status: PairStatus) -> SwitchPlan:
        b = inp.to
        a = other(b)
        pair = inp.pair
        self.require(f"switch to {b}", preconditions.planned_switch(status, b))
        to_move = self.clients_on(status, a)
        unknown = self.unknown_clients(status)
        verified = workflow.patched(VERIFY_PATCH)
        run, auto = self.steps.run, self.auto

        async def clients(step: StepState) -> str:
            return await self.switch_clients(step, to_move, b) + unknown

        async def finish() -> str:
            await run("approve-overwrite")
            await run(
                "start-replication",
                auto(DsmActivities.dsm_start_replication, SideInput(pair=pair, side=b)),
            )
            await run("start-insync", **(self.insync_step(True) if verified else {}))
            await run("start-allsync", **(self.allsync_step(b, True) if verified else {}))
            return f"switch complete: mirrored, {b} main"

        return SwitchPlan(
            stop_replication=auto(DsmActivities.dsm_stop_replication, SideInput(pair=pair, side=a)),
            dsm_a_backup=auto(
                DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=a, mode="backup")
            ),
            stop_insync=self.insync_step(False) if verified else {},
            stop_allsync=self.allsync_step(a, False) if verified else {},
            smartbins_a_backup=auto(
                SmartBinsActivities.smartbins_set_backup, SideInput(pair=pair, side=a)
            ),
            clients=clients,
            finish=finish,
        )
