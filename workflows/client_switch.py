"""One client's switch to the other side: a child workflow that is never cancelled half-way.

stop Aurora and reconfigure -> restart 1/2 -> restart 2/2 -> verify V:.
Four activities; the reboot waits happen inside heartbeating activities, so the
child's history stays small whatever the reboot time.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.models import ClientInput, ClientRebootInput, StepResult
    from workflows.activity_options import device_op, reboot_op
    from workflows.checklist import describe_failure
    from workflows.models import ClientSwitchInput, ClientSwitchResult


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
        start = workflow.now()
        client = ClientInput(pair=inp.pair, host=inp.host, to=inp.to)
        try:
            self._set("reconfiguring", inp.host)
            await workflow.execute_activity(
                "client_prepare", client, result_type=StepResult, **device_op(inp.timing)
            )
            for n in (1, 2):
                self._set(f"rebooting {n}/2", inp.host)
                await workflow.execute_activity(
                    "client_reboot",
                    ClientRebootInput(pair=inp.pair, host=inp.host, round=n),
                    result_type=StepResult,
                    **reboot_op(inp.timing),
                )
            self._set("verifying", inp.host)
            await workflow.execute_activity(
                "client_verify", client, result_type=StepResult, **device_op(inp.timing)
            )
        except ActivityError as e:
            took = (workflow.now() - start).total_seconds()
            why, stage = describe_failure(e), self.stage
            self._set(f"failed: {why}", inp.host)
            return ClientSwitchResult(
                host=inp.host, ok=False, message=f"during {stage}: {why}", seconds=took
            )
        took = (workflow.now() - start).total_seconds()
        self._set("done", inp.host)
        return ClientSwitchResult(
            host=inp.host,
            ok=True,
            message=f"{inp.host} switched to {inp.to} in {took:.1f} s",
            seconds=took,
        )
