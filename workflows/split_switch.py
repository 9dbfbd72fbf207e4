"""split-switch: A main -> B main in stages, pilot clients first (manual chapter 5)."""

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
    from workflows import preconditions
    from workflows.base import PairWorkflow
    from workflows.checklist import StepRunner
    from workflows.inputs import read_input
    from workflows.kinds import KINDS
    from workflows.models import Checklist, SplitSwitchInput, StepState
    from workflows.steps import split_switch_steps


@workflow.defn(name="split-switch")
class SplitSwitchWorkflow(PairWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        inp = read_input(SplitSwitchInput, raw, "split-switch")
        b = inp.to
        a = other(b)
        la, lb = a.lower(), b.lower()
        pair = inp.pair
        title = KINDS["split-switch"].title(a, b, inp)
        self._start_runner(
            StepRunner(
                "split-switch",
                pair,
                title,
                inp.initiator,
                split_switch_steps(a, b),
                resume=inp.resume,
            ),
            inp,
        )
        status = await self.bootstrap(pair, preconditions.makes_main("split-switch", b))
        self.require(f"split-switch to {b}", preconditions.split_switch(status, b, inp.pilots))
        by_name = {c.host.lower(): c for c in status.clients}
        pilots = [by_name[p.lower()].host for p in inp.pilots]
        run, auto = self.steps.run, self.auto

        async def switch_pilots(step: StepState) -> str:
            return await self.switch_clients(step, pilots, b)

        async def switch_rest(step: StepState) -> str:
            now = await self.probe()
            return await self.switch_clients(
                step, self.clients_on(now, a), b
            ) + self.unknown_clients(now)

        async def body() -> str:
            await run(
                "stop-replication",
                auto(DsmActivities.dsm_stop_replication, SideInput(pair=pair, side=a)),
            )
            await run("stop-insync", **self.insync_step(False))
            await run("stop-allsync", **self.allsync_step(a, False))
            await run(
                f"dsm-{lb}-main",
                auto(DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=b, mode="main")),
            )
            await run(
                f"smartbins-{lb}-main",
                auto(SmartBinsActivities.smartbins_set_main, SideInput(pair=pair, side=b)),
            )
            await run("switch-pilots", switch_pilots)
            # May wait for days; the current details keep saying for how long.
            await run("verify-pilots", remind=inp.reminder_interval)
            await run("stop-browse", auto(BrowseActivities.browse_stop, BrowseInput(pair=pair)))
            await run(
                "switch-browse",
                auto(BrowseActivities.browse_switch, BrowseSwitchInput(pair=pair, to=b)),
            )
            await run(
                f"dsm-{la}-backup",
                auto(DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=a, mode="backup")),
            )
            await run(
                f"smartbins-{la}-backup",
                auto(SmartBinsActivities.smartbins_set_backup, SideInput(pair=pair, side=a)),
            )
            await run("switch-clients", switch_rest)
            await run("approve-overwrite")
            await run(
                "start-replication",
                auto(DsmActivities.dsm_start_replication, SideInput(pair=pair, side=b)),
            )
            await run(
                f"insync-{lb}-main",
                auto(SyncToolActivities.insync_set_main, SideInput(pair=pair, side=b)),
            )
            await run("start-insync", **self.insync_step(True))
            await run("start-allsync", **self.allsync_step(b, True))
            await run("start-browse", auto(BrowseActivities.browse_start, BrowseInput(pair=pair)))
            return f"split-switch complete: mirrored, {b} main"

        return await self.walk(body)
