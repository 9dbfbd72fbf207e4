"""split: A stays main, B becomes independent (manual chapter 6). Browse stays on A."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from activities.dsm import DsmActivities
    from activities.models import DsmModeInput, SideInput
    from activities.smartbins import SmartBinsActivities
    from inventory.models import other
    from workflows import preconditions
    from workflows.base import CLIENTS_CONTINUE_PATCH, PairWorkflow
    from workflows.checklist import StepRunner
    from workflows.inputs import read_input
    from workflows.kinds import KINDS
    from workflows.models import Checklist, ClientProgress, SplitInput, StepState
    from workflows.steps import split_steps


@workflow.defn(name="split")
class SplitWorkflow(PairWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        inp = read_input(SplitInput, raw, "split")
        a = inp.main
        b = other(a)
        lb = b.lower()
        pair = inp.pair
        self._start_runner(
            StepRunner(
                "split",
                pair,
                KINDS["split"].title(a, b, inp),
                inp.initiator,
                split_steps(a, b),
                resume=inp.resume,
            ),
            inp,
        )
        status = await self.bootstrap(pair, preconditions.makes_main("split", a))
        self.require_mirrored(status, a, f"split with {a} main")
        run, auto = self.steps.run, self.auto
        known = {c.host.lower(): c for c in status.clients}

        async def move(step: StepState) -> str:
            sig = self.steps.last_signal.get(step.id)
            names = (sig.clients if sig else None) or []
            good = [n for n in names if n.lower() in known]
            bad = [n for n in names if n.lower() not in known]
            msg = await self._move(step, good, known) if good else "no clients moved"
            return msg + (f"; not moved, unknown client(s): {', '.join(bad)}" if bad else "")

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
            await run("move-editors", action=move)
            return f"split complete: {a} and {b} both main, each on its own"

        return await self.walk(body)

    async def _move(self, step: StepState, names: list[str], known: dict) -> str:  # type: ignore[type-arg]
        """Each named client goes to the side it is not on now (or, when the step was
        carried over from the run before this one, on from where it was)."""
        if step.clients is not None and workflow.patched(CLIENTS_CONTINUE_PATCH):
            self.steps.publish()
            return (
                await self.move_clients(step, step.clients) if step.clients else "no clients moved"
            )
        clients = []
        for n in names:
            c = known[n.lower()]
            if c.side is None:
                continue
            clients.append(ClientProgress(host=c.host, to=other(c.side)))
        step.clients = clients
        self.steps.publish()
        if not clients:
            return "no clients moved"
        return await self.move_clients(step, clients)
