"""split-switch: A main -> B main in stages, pilot clients first (manual chapter 5).
Its row (workflows/kind.py) and step table are here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from activities.browse import BrowseActivities
    from activities.dsm import DsmActivities
    from activities.models import BrowseInput, BrowseSwitchInput, DsmModeInput, SideInput
    from activities.smartbins import SmartBinsActivities
    from activities.sync_tools import SyncToolActivities
    from inventory.models import Side, other
    from inventory.status import PairStatus
    from workflows import overwrite, preconditions
    from workflows.base import KindWorkflow
    from workflows.kind import Kind, StartOption, serving_when_main_and_clients_moved
    from workflows.models import Checklist, SplitSwitchInput, StepDef, StepState


def split_switch_steps(a: Side, b: Side) -> list[StepDef]:
    """split-switch (A main -> B main in stages, pilots first), manual chapter 5."""
    la, lb = a.lower(), b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main: both DSMs main, the pair is split"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        ("switch-pilots", "auto", f"Switch the pilot client(s) to {b}"),
        ("verify-pilots", "manual", f"Record and edit on {b} with the pilots (may take days)"),
        ("stop-browse", "auto", "Stop all Browse components"),
        ("switch-browse", "auto", f"Switch all Browse components to {b} (do not start)"),
        (f"dsm-{la}-backup", "auto", f"{a}'s DSM to backup"),
        (f"smartbins-{la}-backup", "auto", f"{a}'s SmartBins to backup"),
        ("switch-clients", "auto", f"Switch the remaining clients on {a} to {b}"),
        (
            "approve-overwrite",
            "gate",
            f"From here on {a}'s database and media are overwritten from {b}",
        ),
        ("start-replication", "auto", f"Start replication on {b}'s DSM; {b} master, {a} backup"),
        (f"insync-{lb}-main", "auto", f"Set InSync direction {b} -> {a}"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {b}'s NAS head"),
        ("start-browse", "auto", f"Start all Browse components; Browse Active on {b}"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def _start(pair: str, to: Side, who: str, opts: Mapping[str, Any]) -> tuple[SplitSwitchInput, str]:
    pilots = list(dict.fromkeys(opts.get("pilot") or []))
    return SplitSwitchInput(pair=pair, to=to, pilots=pilots, initiator=who), (
        f"split-switch {other(to)} -> {to}, pilots {', '.join(pilots)}"
    )


KIND = Kind(
    name="split-switch",
    input=SplitSwitchInput,
    side="to",
    table=split_switch_steps,
    help="switch in stages, pilot clients first",
    side_help="new main side",
    title=lambda a, b, inp: (
        f"Split and switch {a} -> {b}, pilots {', '.join(inp.pilots)} ({inp.pair})"
    ),
    direction=lambda a, b: f"{a} -> {b}",
    what=lambda side, unplanned: f"split-switch to {side}",
    precondition=lambda status, to, asked: preconditions.split_switch(status, to, asked.pilots),
    start=_start,
    offered=lambda mode, main, side: mode == "mirrored" and main is not None and side != main,
    options=(
        StartOption(
            "pilot",
            "a pilot client (repeat)",
            "hosts",
            required=True,
            form="pilots",
            missing="a split-switch needs at least one pilot client",
            legend="Pilot clients (they move first)",
        ),
    ),
    serving=serving_when_main_and_clients_moved,
    form=True,
)


@workflow.defn(name="split-switch")
class SplitSwitchWorkflow(KindWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await self.run_kind(KIND, raw)

    def prepare(
        self, inp: SplitSwitchInput, status: PairStatus, a: Side, b: Side
    ) -> Callable[[], Awaitable[str]]:
        la, lb = a.lower(), b.lower()
        pair = inp.pair
        self.require(self.kind.what(b, False), self.kind.refusal(status, b, pilots=inp.pilots))
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
            await overwrite.before_the_gate(self, status.dsm[a].host)
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

        return body
