"""switch: A main -> B main, the 18 steps of manual chapter 4 (and, with `unplanned`,
the same steps when A is lost: workflows/unplanned.py). Its row (workflows/kind.py) and
step table are here."""

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
    from workflows.kind import (
        Asked,
        Kind,
        StartError,
        StartOption,
        serving_when_main_and_clients_moved,
    )
    from workflows.models import Checklist, StepDef, StepState, SwitchInput
    from workflows.unplanned import SwitchPlan, UnplannedSwitch

# Runs started before manual steps were verified replay without the checks.
VERIFY_PATCH = "verify-manual-steps"


def switch_steps(a: Side, b: Side) -> list[StepDef]:
    """switch (A main -> B main), manual chapter 4: 18 steps."""
    la, lb = a.lower(), b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM; both DSMs report stopped"),
        (f"dsm-{la}-backup", "auto", f"{a}'s DSM to backup"),
        ("stop-browse", "auto", "Stop all Browse components"),
        ("switch-browse", "auto", f"Switch all Browse components to {b} (do not start)"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"insync-{lb}-main", "auto", f"Set InSync direction {b} -> {a}"),
        (
            f"smartbins-{la}-backup",
            "auto",
            f"{a}'s SmartBins to backup (pseudo on the PseudoSmartBins host)",
        ),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        ("switch-clients", "auto", f"Switch every client on {a} to {b}, in parallel"),
        ("check-projects", "manual", f"Open a few Aurora projects on {b} and check them"),
        ("start-browse", "auto", f"Start all Browse components; Browse Active on {b}"),
        (f"verify-{lb}", "manual", f"Record on {b}, edit a project on {b}, verify Browse"),
        (
            "approve-overwrite",
            "gate",
            f"From here on {a}'s database and media are overwritten from {b}",
        ),
        ("start-replication", "auto", f"Start replication on {b}'s DSM; {b} master, {a} backup"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {b}'s NAS head"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def _precondition(status: PairStatus, to: Side, asked: Asked) -> str | None:
    if asked.unplanned:
        return preconditions.unplanned_switch(status, to, asked.reason)
    return preconditions.planned_switch(status, to)


def _start(pair: str, to: Side, who: str, opts: Mapping[str, Any]) -> tuple[SwitchInput, str]:
    unplanned = bool(opts.get("unplanned"))
    reason = (opts.get("reason") or "").strip() or None
    if unplanned and reason is None:
        raise StartError('an unplanned switch needs a reason: --unplanned --reason "X lost: ..."')
    if reason and not unplanned:
        raise StartError("--reason goes with --unplanned (a planned switch has none)")
    how = "unplanned switch" if unplanned else "switch"
    return SwitchInput(
        pair=pair, to=to, initiator=who, unplanned=unplanned, reason=reason
    ), f"{how} {other(to)} -> {to}"


KIND = Kind(
    name="switch",
    input=SwitchInput,
    side="to",
    table=switch_steps,
    help="switch the pair: the other side becomes main",
    side_help="new main side",
    title=lambda a, b, inp: f"Switch {a} -> {b} ({inp.pair})",
    direction=lambda a, b: f"{a} -> {b}",
    what=lambda side, unplanned: f"{'unplanned ' if unplanned else ''}switch to {side}",
    precondition=_precondition,
    start=_start,
    offered=lambda mode, main, side: mode == "mirrored" and main is not None and side != main,
    options=(
        StartOption(
            "unplanned",
            "the main side is lost (down or unreachable): switch without it (needs --reason)",
            "flag",
        ),
        StartOption("reason", "why the switch is unplanned (recorded)", "text"),
    ),
    serving=serving_when_main_and_clients_moved,
    unplanned=True,
)


@workflow.defn(name="switch")
class SwitchWorkflow(UnplannedSwitch):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await self.run_kind(KIND, raw)

    def prepare(
        self, inp: SwitchInput, status: PairStatus, a: Side, b: Side
    ) -> Callable[[], Awaitable[str]]:
        la, lb = a.lower(), b.lower()
        pair = inp.pair
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

        return body

    def planned(self, inp: SwitchInput, status: PairStatus) -> SwitchPlan:
        b = inp.to
        a = other(b)
        pair = inp.pair
        self.require(self.kind.what(b, False), self.kind.refusal(status, b))
        to_move = self.clients_on(status, a)
        unknown = self.unknown_clients(status)
        verified = workflow.patched(VERIFY_PATCH)
        run, auto = self.steps.run, self.auto

        async def clients(step: StepState) -> str:
            return await self.switch_clients(step, to_move, b) + unknown

        async def finish() -> str:
            await overwrite.before_the_gate(self, status.dsm[a].host)
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
