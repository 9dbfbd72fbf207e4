"""split: A stays main, B becomes independent (manual chapter 6). Browse stays on A.
Its row (workflows/kind.py) and step table are here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from activities.dsm import DsmActivities
    from activities.models import DsmModeInput, SideInput
    from activities.smartbins import SmartBinsActivities
    from inventory.models import Side, other
    from inventory.status import PairStatus
    from workflows import preconditions
    from workflows.base import CLIENTS_CONTINUE_PATCH, KindWorkflow
    from workflows.kind import Kind
    from workflows.models import Checklist, ClientProgress, SplitInput, StepDef, StepState


def split_steps(a: Side, b: Side) -> list[StepDef]:
    """split (A stays main, B becomes independent), manual chapter 6."""
    lb = b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main: both DSMs main, the pair is split"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        (
            "move-editors",
            "manual",
            "Name the clients to move to the other side (or none); the service moves them",
        ),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def _start(pair: str, main: Side, who: str, opts: Mapping[str, Any]) -> tuple[SplitInput, str]:
    return SplitInput(pair=pair, main=main, initiator=who), f"split, {main} stays main"


def _serving(a: Side, b: Side) -> tuple[list[str], str]:
    lb = b.lower()
    return [f"dsm-{lb}-main", "move-editors"], (
        f"split has no switch-clients step: until {b}'s DSM was main (dsm-{lb}-main "
        "done) and the named editors had moved (move-editors done)"
    )


KIND = Kind(
    name="split",
    input=SplitInput,
    side="main",
    table=split_steps,
    help="split the pair: --main stays main, the other runs alone",
    side_help="the side that stays main",
    title=lambda a, b, inp: f"Split: {a} stays main, {b} independent ({inp.pair})",
    direction=lambda a, b: f"{a} stays main, {b} independent",
    what=lambda side, unplanned: f"split with {side} main",
    precondition=lambda status, main, asked: preconditions.not_mirrored(status, main),
    start=_start,
    offered=lambda mode, main, side: mode == "mirrored" and side == main,
    # Both DSMs end main.
    makes_main_sides=("X", "Y"),
    serving=_serving,
)


@workflow.defn(name="split")
class SplitWorkflow(KindWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await self.run_kind(KIND, raw)

    def prepare(
        self, inp: SplitInput, status: PairStatus, a: Side, b: Side
    ) -> Callable[[], Awaitable[str]]:
        lb = b.lower()
        pair = inp.pair
        self.require(self.kind.what(a, False), self.kind.refusal(status, a))
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

        return body

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
