"""Client switches: stop Aurora and reconfigure -> restart 1/2 -> restart 2/2 -> verify V:.

Two activities per client (since the `client-two-activities` patch; four before):
`client_prepare_restart` (reconfigure, restart 1/2) and `client_restart_verify`
(restart 2/2, verify V:). An activity task costs the server and the worker about
10 ms of CPU together (several device commands' worth), and hundreds of clients
switch at once on the same machines. The
reboot waits happen inside heartbeating activities, which resume a restart after a
worker crash, so a history stays small whatever the reboot time. Two child
workflows run them, and neither is ever cancelled half-way:

- `client-batch`: up to `timing.client_batch_size` clients, each on its own (one
  client's failure does not touch the others). The engine uses it since the
  `client-batches` patch: a child workflow costs the server far more than an
  activity, so one child per client made a 500-client switch wait on child starts.
- `client-switch`: one client; runs that started before the patch replay with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.clients import ClientActivities
    from activities.models import (
        ClientBatchResult,
        ClientInput,
        ClientRebootInput,
        ClientSwitchResult,
        ForcedRule,
    )
    from inventory.blackout import Window
    from inventory.models import Side, Timing, pair_workflow_id
    from workflows import blackout
    from workflows.activity_options import client_op, device_op, reboot_op
    from workflows.checklist import describe_failure
    from workflows.models import ClientBatchInput, ClientSwitchInput
    from workflows.shield import despite_cancel


TWO_ACTIVITIES_PATCH = "client-two-activities"
# Client switches started before they checked their parent replay without the check.
PARENT_PATCH = "client-switch-needs-parent"


def require_parent(pair: str, kind: str) -> None:
    """A client switch runs only as a child of the pair's run or of its control: started
    by anyone else it would move a client behind the pair's back (and around the
    operator check, the one-workflow rule and the run's checklist)."""
    parent = workflow.info().parent
    run_id = pair_workflow_id(pair)
    allowed = (run_id, f"{run_id}-control")
    if (parent is None or parent.workflow_id not in allowed) and workflow.patched(PARENT_PATCH):
        raise ApplicationError(
            f"{kind} refused: it runs only as a child of the pair's run ({run_id}) or of its "
            f"control ({run_id}-control); started "
            + (f"by {parent.workflow_id}" if parent else "on its own"),
            type="Refused",
            non_retryable=True,
        )


def cancel_ignored(hosts: str) -> None:
    # A client switch that has started is never cancelled half-way.
    workflow.logger.warning("cancellation requested for %s: the switch goes on to its end", hosts)


async def switch_one(
    pair: str,
    host: str,
    to: Side,
    timing: Timing,
    stage: Callable[[str], None],
    overrides: list[str] | None = None,
    windows: Sequence[Window] = (),
) -> ClientSwitchResult:
    """One client's switch; `stage` hears each stage as it starts. `overrides`: rules the
    operator overrode (a console control's break-glass), passed to the reconfiguration."""
    start = workflow.now()
    client = ClientInput(pair=pair, host=host, to=to, overrides=overrides or [])
    current = "reconfiguring"
    forced: list[ForcedRule] = []
    try:
        if workflow.patched(TWO_ACTIVITIES_PATCH):
            current = "reconfiguring, rebooting 1/2"
            await hold(windows, stage)
            stage(current)
            prepared = await workflow.execute_activity_method(
                ClientActivities.client_prepare_restart, client, **client_op(timing)
            )
            forced = prepared.forced
            current = "rebooting 2/2, verifying"
            await hold(windows, stage)
            stage(current)
            # The boot after restart 1/2 goes with 2/2: a boot later than it is restart
            # 2/2 done, also when its first heartbeat was lost with a worker.
            restart2 = client.model_copy(update={"booted": prepared.booted})
            await workflow.execute_activity_method(
                ClientActivities.client_restart_verify, restart2, **client_op(timing)
            )
        else:
            stage(current)
            prepared = await workflow.execute_activity_method(
                ClientActivities.client_prepare, client, **device_op(timing)
            )
            forced = prepared.forced
            for n in (1, 2):
                current = f"rebooting {n}/2"
                stage(current)
                await workflow.execute_activity_method(
                    ClientActivities.client_reboot,
                    ClientRebootInput(pair=pair, host=host, round=n),
                    **reboot_op(timing),
                )
            current = "verifying"
            stage(current)
            await workflow.execute_activity_method(
                ClientActivities.client_verify, client, **device_op(timing)
            )
    except ActivityError as e:
        took = (workflow.now() - start).total_seconds()
        why = describe_failure(e)
        stage(f"failed: {why}")
        return ClientSwitchResult(
            host=host, ok=False, message=f"during {current}: {why}", seconds=took, forced=forced
        )
    took = (workflow.now() - start).total_seconds()
    stage("done")
    return ClientSwitchResult(
        host=host,
        ok=True,
        message=f"{host} switched to {to} in {took:.1f} s",
        seconds=took,
        forced=forced,
    )


async def hold(windows: Sequence[Window], stage: Callable[[str], None]) -> None:
    """Rule no-switch-in-blackout: a restart due inside an on-air window waits for its end
    (the batch's stage says so). Only a batch given windows comes here."""
    now = workflow.now()
    on_air = blackout.window_at(windows, now) if windows else None
    if on_air is None or not workflow.patched(blackout.PATCH):
        return
    until = blackout.clear_at(windows, now)
    stage(blackout.held(on_air, until))
    await workflow.sleep(until - now)


@workflow.defn(name="client-switch")
class ClientSwitchWorkflow:
    def __init__(self) -> None:
        self.stage = "stop pending"

    @workflow.query
    def current_stage(self) -> str:
        return self.stage

    def _set(self, stage: str, host: str) -> None:
        self.stage = stage
        workflow.set_current_details(f"**{host}**: {stage}")

    @workflow.run
    async def run(self, inp: ClientSwitchInput) -> ClientSwitchResult:
        require_parent(inp.pair, "client-switch")
        return await despite_cancel(
            switch_one(
                inp.pair,
                inp.host,
                inp.to,
                inp.timing,
                lambda s: self._set(s, inp.host),
                inp.overrides,
            ),
            lambda: cancel_ignored(inp.host),
        )


@workflow.defn(name="client-batch")
class ClientBatchWorkflow:
    def __init__(self) -> None:
        self.stages: dict[str, str] = {}

    @workflow.query
    def client_stages(self) -> dict[str, str]:
        """Each client's stage: reconfiguring, rebooting 1/2, ..., done, failed: why."""
        return dict(self.stages)

    def _set(self, host: str, stage: str) -> None:
        self.stages[host] = stage
        workflow.set_current_details("\n".join(f"- **{h}**: {s}" for h, s in self.stages.items()))

    def _reporter(self, host: str) -> Callable[[str], None]:
        def report(stage: str) -> None:
            self._set(host, stage)

        return report

    @workflow.run
    async def run(self, inp: ClientBatchInput) -> ClientBatchResult:
        require_parent(inp.pair, "client-batch")
        for c in inp.clients:
            self.stages[c.host] = "pending"
        results = await despite_cancel(
            asyncio.gather(
                *(
                    switch_one(
                        inp.pair,
                        c.host,
                        c.to,
                        inp.timing,
                        self._reporter(c.host),
                        windows=inp.blackout,
                    )
                    for c in inp.clients
                )
            ),
            lambda: cancel_ignored(", ".join(c.host for c in inp.clients)),
        )
        return ClientBatchResult(results=list(results))
