"""pair-dry-run: `amsm start KIND ... --dry-run`. Reads what the run would read at its
start (timing, who may act, the fences that wait, the pair) and what its steps would
find (each client's reach of the portals, a restore's orphans), with read-only
activities only, then walks the kind's checklist over it (workflows/preview.py).

It runs under its own id (`amsm-<pair>-dry-run-<tag>`), never the pair's one-workflow
id: it takes no lock, and may run beside a real run. Nothing it calls changes a device."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.dry_run import DryRunActivities
    from activities.models import DryRunRead, PairRef
    from activities.pair import PairActivities
    from activities.probe import ProbeActivities
    from inventory.blackout import Window
    from inventory.rules import RULE_NO_SWITCH_IN_BLACKOUT
    from workflows import blackout
    from workflows.activity_options import BOOTSTRAP
    from workflows.kinds import KINDS
    from workflows.models import DryRunInput
    from workflows.preview import DryRunResult, dry_run

# A dry run's reads: one round trip per client (and a restore's listings of both volumes).
READS = 3


@workflow.defn(name="pair-dry-run")
class PairDryRunWorkflow:
    @workflow.run
    async def run(self, inp: DryRunInput) -> DryRunResult:
        ref = PairRef(pair=inp.pair)
        kind = KINDS.get(inp.kind)
        if kind is None:
            raise ApplicationError(
                f"unknown workflow {inp.kind!r}; available: {', '.join(KINDS)}",
                non_retryable=True,
            )
        try:
            args = kind.input.model_validate(inp.input)
        except ValidationError as e:
            raise ApplicationError(
                f"bad input for {inp.kind}: {e.error_count()} error(s): "
                + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()),
                non_retryable=True,
            ) from None
        side = getattr(args, kind.side)
        timing = await workflow.execute_activity_method(
            ProbeActivities.get_timing, ref, **BOOTSTRAP
        )
        caps = await workflow.execute_activity_method(
            ProbeActivities.get_capabilities, ref, **BOOTSTRAP
        )
        fences = await workflow.execute_activity_method(
            PairActivities.fences_waiting, ref, **BOOTSTRAP
        )
        read = DryRunRead(pair=inp.pair, orphans_for=side if kind.reads_orphans else None)
        # One after the other: the clients are read by both, one connection at a time.
        status = await workflow.execute_activity_method(
            ProbeActivities.probe_pair, ref, **BOOTSTRAP
        )
        facts = await workflow.execute_activity_method(
            DryRunActivities.dry_run_facts,
            read,
            start_to_close_timeout=timedelta(
                seconds=READS * timing.operation_timeout + timing.connect_timeout
            ),
            # Read once: a dry run says what it found now, or fails naming why.
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        info = workflow.info()
        result = dry_run(inp.kind, args, status, facts, caps, fences, info.run_id, info.workflow_id)
        return on_air(result, args, caps.blackout, workflow.now())


def on_air(result: DryRunResult, args: Any, windows: list[Window], now: datetime) -> DryRunResult:
    """The dry run says when the next blackout window begins, and that the run would be
    refused on air (as workflows/base.py blackout_check), unless the start overrides it."""
    result.next_blackout = blackout.next_sentence(windows, now)
    window = blackout.window_at(windows, now)
    forced = any(o.rule == RULE_NO_SWITCH_IN_BLACKOUT for o in getattr(args, "overrides", []))
    if window is not None and result.refused is None and not forced:
        result.refused = blackout.refusal(window)
    return result
