"""restore: rejoin a split pair with M as main (manual chapter 7), protecting M's material.
Its row (workflows/kind.py) and step table are here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from activities.browse import BrowseActivities
    from activities.dsm import DsmActivities
    from activities.media import MediaActivities
    from activities.models import (
        BrowseSwitchInput,
        DsmModeInput,
        OrphanClip,
        OrphanInput,
        PurgeInput,
        SideInput,
        SyncInput,
    )
    from activities.smartbins import SmartBinsActivities
    from activities.sync_tools import SyncToolActivities
    from inventory.models import SIDES, Side
    from inventory.status import PairStatus
    from workflows import outcomes, overwrite, preconditions
    from workflows.activity_options import device_op
    from workflows.base import KindWorkflow
    from workflows.kind import Kind, StartError, StartOption
    from workflows.models import Checklist, RestoreInput, StepDef, StepState
    from workflows.view import TEXT_ITEMS


# Runs started before a fenced pair could be restored replay with the split-only check.
FENCED_PATCH = "restore-after-fence"


def listing(items: list[str]) -> str:
    shown = ", ".join(items[:TEXT_ITEMS])
    return shown + (f" (+{len(items) - TEXT_ITEMS} more)" if len(items) > TEXT_ITEMS else "")


# The gates that may be skipped, and what a skip passes over with them. Skipping
# approve-purge keeps the orphans (nothing is deleted); approve-overwrite has no such
# entry anywhere: only an approval passes it.
RESTORE_GATES: dict[str, tuple[str, ...]] = {"approve-purge": ("purge-orphans",)}


def restore_steps(m: Side, o: Side) -> list[StepDef]:
    """restore (rejoin with M main, O the other side), manual chapter 7."""
    lm, lo = m.lower(), o.lower()
    rows = [
        ("find-orphans", "auto", f"List master clips in {o}'s SmartBins folders that {m} lacks"),
        ("approve-purge", "gate", f"Approve deleting those orphan clips on {o} only"),
        ("purge-orphans", "auto", f"Delete the orphans on {o}'s volume (never on {m}'s)"),
        (f"smartbins-{lo}-backup", "auto", f"{o}'s SmartBins to backup"),
        ("switch-clients", "auto", f"Switch every client on {o} to {m}"),
        (f"dsm-{lo}-backup", "auto", f"{o}'s DSM to backup"),
        ("approve-overwrite", "gate", f"{o}'s database will be overwritten by {m}'s"),
        ("start-replication", "auto", f"Start replication on {m}'s DSM; wait for the asset counts"),
        (f"insync-{lm}-main", "auto", f"Set InSync direction {m} -> {o}"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {m}'s NAS head"),
        (f"browse-to-{lm}", "auto", f"Browse Active on {m} (stop, switch, start if it is not)"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]


def _start(pair: str, main: Side, who: str, opts: Mapping[str, Any]) -> tuple[RestoreInput, str]:
    tolerance = int(opts.get("tolerance") or 0)
    if tolerance < 0:
        raise StartError("--tolerance must be 0 or more")
    return RestoreInput(
        pair=pair, main=main, initiator=who, asset_tolerance=tolerance
    ), f"restore with {main} main"


def _serving(m: Side, o: Side) -> tuple[list[str], str]:
    return ["switch-clients"], (
        f"restore keeps {m}'s DSM main throughout (it has no dsm-{m.lower()}-main step): "
        f"until the clients had moved to {m} (switch-clients done)"
    )


KIND = Kind(
    name="restore",
    input=RestoreInput,
    side="main",
    table=restore_steps,
    help="restore mirroring after a split, --main as main",
    side_help="the side whose material wins",
    title=lambda a, b, inp: f"Restore mirroring with {a} main ({inp.pair})",
    direction=lambda a, b: f"{a} main (rejoin {b})",
    what=lambda side, unplanned: f"restore with {side} main",
    precondition=lambda status, main, asked: preconditions.restore(
        status, main, asked.fenced_allowed
    ),
    start=_start,
    offered=lambda mode, main, side: mode == "split" and side in SIDES,
    options=(
        StartOption(
            "tolerance", "asset counts may differ by this much (default 0)", "int", default=0
        ),
    ),
    serving=_serving,
    gates=RESTORE_GATES,
    reads_orphans=True,
)


@workflow.defn(name="restore")
class RestoreWorkflow(KindWorkflow):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        super().__init__()

    @workflow.run
    async def run(self, raw: RawValue) -> Checklist:
        return await self.run_kind(KIND, raw)

    def prepare(
        self, inp: RestoreInput, status: PairStatus, m: Side, o: Side
    ) -> Callable[[], Awaitable[str]]:
        self.require(
            self.kind.what(m, False),
            self.kind.refusal(status, m, fenced_allowed=lambda: workflow.patched(FENCED_PATCH)),
        )
        # What find-orphans found, and what each orphan held when found (the approval
        # covers exactly that); from the checklist and the input in a continued run.
        found_step = self.steps.checklist.step("find-orphans")
        found_before = found_step.status == "done"
        self.orphans: list[str] = list(found_step.items or []) if found_before else []
        self.records: list[OrphanClip] = list(inp.found) if found_before else []
        self.refused: list[str] = []
        self.continue_with = lambda: {"found": self.records}
        self.overwritten = status.dsm[o].host  # the DSM approve-overwrite gives up

        async def body() -> str:
            return await self._walk(inp, m, o)

        return body

    async def _walk(self, inp: RestoreInput, m: Side, o: Side) -> str:
        lm, lo = m.lower(), o.lower()
        pair = inp.pair
        run, auto = self.steps.run, self.auto
        await self._orphan_steps(pair, m, o)
        await run(
            f"smartbins-{lo}-backup",
            auto(SmartBinsActivities.smartbins_set_backup, SideInput(pair=pair, side=o)),
        )

        async def clients(step: StepState) -> str:
            now = await self.probe()
            return await self.switch_clients(
                step, self.clients_on(now, o), m
            ) + self.unknown_clients(now)

        await run("switch-clients", clients)
        await run(
            f"dsm-{lo}-backup",
            auto(DsmActivities.dsm_set_mode, DsmModeInput(pair=pair, side=o, mode="backup")),
        )
        # Two people (docs/operators/two-person.md): each approval is bound to the counts
        # it saw, which the gate reads again after each one.
        # New runs bind the gate to the count of the DSM it overwrites, on every pair.
        await overwrite.show_counts(
            self, self.overwritten if workflow.patched(overwrite.PATCH) else None
        )
        await run("approve-overwrite")

        async def replicate(step: StepState) -> str:
            started = await self.act(
                DsmActivities.dsm_start_replication, SideInput(pair=pair, side=m)
            )
            synced = await self.act(
                DsmActivities.dsm_wait_in_sync,
                SyncInput(pair=pair, side=m, tolerance=inp.asset_tolerance),
            )
            return f"{started}; {synced}"

        await run("start-replication", replicate)
        await run(
            f"insync-{lm}-main",
            auto(SyncToolActivities.insync_set_main, SideInput(pair=pair, side=m)),
        )
        await run("start-insync", **self.insync_step(True))
        await run("start-allsync", **self.allsync_step(m, True))
        await run(
            f"browse-to-{lm}",
            auto(BrowseActivities.browse_move, BrowseSwitchInput(pair=pair, to=m)),
        )
        return f"restore complete: mirrored, {m} main"

    def _purge_shown(self, gate: StepState, o: Side) -> str:
        """What the purge gate shows: the orphans (its items) and what deleting them is."""
        orphans, records, refused = self.orphans, self.records, self.refused
        gate.items = list(orphans)
        size = sum(r.size for r in records)
        return (
            f"{len(orphans)} clip(s) will be deleted on {o} only: {listing(orphans)}"
            + (f" ({size:,} bytes; each only if unchanged)" if records else "")
            + (f"; {len(refused)} refused, kept: {listing(refused)}" if refused else "")
        )

    async def _orphan_steps(self, pair: str, m: Side, o: Side) -> None:
        """find-orphans, then approve-purge and purge-orphans when it found any; else
        both passed over."""
        run = self.steps.run

        async def find(step: StepState) -> str:
            found = await workflow.execute_activity_method(
                MediaActivities.find_orphans,
                OrphanInput(pair=pair, main=m),
                **device_op(self.timing),
            )
            self.orphans[:] = found.clips
            self.records[:] = found.found
            self.refused[:] = [f"{r.clip} ({r.reason})" for r in found.refused]
            step.items = list(found.clips)
            refused = self.refused
            kept = f"; {len(refused)} refused, never deleted: {listing(refused)}" if refused else ""
            if not found.clips:
                return f"no orphan master clips on {o} to delete" + kept
            return (
                f"{len(found.clips)} orphan master clip(s) on {o} ({found.host}): "
                f"{listing(found.clips)}{kept}"
            )

        async def purge(step: StepState) -> str:
            step.items = list(self.orphans)
            return await self.act(
                MediaActivities.purge_orphans,
                PurgeInput(pair=pair, main=m, clips=self.orphans, found=self.records),
            )

        await run("find-orphans", find)
        if not self.orphans:
            for step_id, why in outcomes.NO_ORPHANS.items():
                self.steps.pass_over(step_id, why)
            return
        gate = self.steps.checklist.step("approve-purge")
        gate.message = self._purge_shown(gate, o)
        if self.steps.approval_rule("approve-purge") is not None:
            # Two people (docs/operators/two-person.md): the orphans are found again
            # after each approval; one given to another list lapses.
            async def again(step: StepState) -> str:
                found = await workflow.execute_activity_method(
                    MediaActivities.find_orphans,
                    OrphanInput(pair=pair, main=m),
                    **device_op(self.timing),
                )
                self.orphans[:] = found.clips
                self.records[:] = found.found
                self.refused[:] = [f"{r.clip} ({r.reason})" for r in found.refused]
                return self._purge_shown(step, o)

            self.steps.rereads["approve-purge"] = again
        await run("approve-purge")
        await run("purge-orphans", purge)
