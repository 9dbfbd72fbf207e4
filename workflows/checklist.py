"""The checklist engine shared by every big workflow.

A workflow walks its step table in order. An auto step runs an action; a manual
step waits for `confirm`; a gate waits for `approve`. Every signal is recorded
with the operator and note, and a signal that does not fit (unknown step, a step
not awaiting it, the wrong kind) is rejected and shown in the checklist rather
than crashing the workflow. After each change the markdown checklist goes to
`workflow.set_current_details`, which the Web UI shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.models import Checklist, OperatorSignal, RejectedSignal, StepDef, StepState

STATUS_MARK = {
    "pending": "[ ]",
    "running": "[~]",
    "awaiting-confirmation": "[?]",
    "awaiting-approval": "[!]",
    "done": "[x]",
    "failed": "[F]",
    "skipped": "[-]",
}


def render_markdown(c: Checklist) -> str:
    """The checklist as markdown for the Web UI's current details."""
    lines = [f"## {c.title}", "", f"**State:** {c.state}  ", f"**Initiator:** {c.initiator}"]
    if c.message:
        lines += ["", c.message]
    waiting = c.awaiting
    if waiting:
        s = waiting[0]
        verb = "approve" if s.kind == "gate" else "confirm"
        lines += [
            "",
            f"**Waiting for the operator:** `{s.id}`: {s.title}. "
            f'Send signal `{verb}` with input `{{"step": "{s.id}", "operator": "NAME"}}` '
            f"or run `amsm {verb} {c.run_id or 'RUN'} {s.id}`.",
        ]
    lines += ["", "| | # | step | kind | status | by | note |", "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(c.steps, 1):
        status: str = s.status
        if s.clients:
            done = sum(1 for x in s.clients if x.status == "done")
            failed = sum(1 for x in s.clients if x.status == "failed")
            status += f" ({done}/{len(s.clients)} done, {s.pending_clients} pending"
            status += f", {failed} failed)" if failed else ")"
        note = s.note or s.error or s.message or ""
        lines.append(
            f"| {STATUS_MARK[s.status]} | {i} | `{s.id}` | {s.kind} | {status} | "
            f"{s.operator or ''} | {note.replace('|', '/')} |"
        )
    if c.rejected:
        lines += ["", "**Rejected signals:**"]
        lines += [f"- {r.at} {r.signal} `{r.step}` by {r.operator}: {r.reason}" for r in c.rejected]
    return "\n".join(lines)


def describe_failure(e: BaseException) -> str:
    """The device's own error text, without Temporal's wrapping."""
    cause: BaseException | None = e
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


class StepRunner:
    """Holds a run's checklist and walks it."""

    def __init__(
        self, workflow_name: str, pair: str, title: str, initiator: str, steps: list[StepDef]
    ) -> None:
        info = workflow.info()
        self.checklist = Checklist(
            workflow=workflow_name,
            pair=pair,
            title=title,
            run_id=info.run_id,
            workflow_id=info.workflow_id,
            initiator=initiator,
            started_at=self.now(),
            steps=[StepState(id=s.id, kind=s.kind, title=s.title) for s in steps],
        )
        self._signals: dict[str, OperatorSignal] = {}
        self.publish()

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def now() -> str:
        return workflow.now().isoformat(timespec="seconds")

    def publish(self) -> None:
        c = self.checklist
        if c.state in ("running", "awaiting-operator"):
            c.state = "awaiting-operator" if c.awaiting else "running"
        workflow.set_current_details(render_markdown(c))

    # -- signals ------------------------------------------------------------------------------
    def on_signal(self, kind: str, sig: OperatorSignal) -> None:
        """Accept a confirm/approve for the step that awaits it; reject anything else visibly."""
        want = {"confirm": "awaiting-confirmation", "approve": "awaiting-approval"}[kind]
        reason: str | None = None
        try:
            step = self.checklist.step(sig.step)
        except KeyError:
            step = None
            reason = f"no step {sig.step!r} in this workflow"
        if step is not None:
            if step.status == want:
                self._signals[step.id] = sig
                workflow.logger.info("%s %s by %s", kind, step.id, sig.operator)
                return
            if step.kind == "auto":
                reason = f"{step.id} is automatic; it cannot be {kind}ed"
            elif kind == "confirm" and step.kind == "gate":
                reason = f"{step.id} is a gate: use approve"
            elif kind == "approve" and step.kind == "manual":
                reason = f"{step.id} is a manual step: use confirm"
            else:
                reason = f"{step.id} is {step.status}, not {want}"
        self.checklist.rejected.append(
            RejectedSignal(
                at=self.now(),
                signal=kind,
                step=sig.step,
                operator=sig.operator,
                reason=reason or "",
            )
        )
        workflow.logger.warning("rejected %s %s by %s: %s", kind, sig.step, sig.operator, reason)
        self.publish()

    # -- steps -----------------------------------------------------------------------------------
    async def run(
        self, step_id: str, action: Callable[[StepState], Awaitable[str]] | None = None
    ) -> None:
        step = self.checklist.step(step_id)
        step.started_at = self.now()
        if step.kind == "auto":
            assert action is not None, f"auto step {step_id} needs an action"
            step.status = "running"
            self.publish()
            try:
                step.message = await action(step)
            except (ActivityError, ChildWorkflowError, ApplicationError) as e:
                step.status = "failed"
                step.error = describe_failure(e)
                step.ended_at = self.now()
                self.fail(f"step {step.id} failed: {step.error}")
                raise ApplicationError(
                    f"step {step.id} failed: {step.error}", type="StepFailed", non_retryable=True
                ) from None
        else:
            step.status = "awaiting-approval" if step.kind == "gate" else "awaiting-confirmation"
            self.publish()
            await workflow.wait_condition(lambda: step_id in self._signals)
            sig = self._signals[step_id]
            step.operator, step.note = sig.operator, sig.note
            if action is not None:
                step.message = await action(step)
        step.status = "done"
        step.ended_at = self.now()
        self.publish()

    def fail(self, message: str) -> None:
        self.checklist.state = "failed"
        self.checklist.message = message
        self.checklist.ended_at = self.now()
        self.publish()

    def complete(self, message: str) -> None:
        self.checklist.state = "completed"
        self.checklist.message = message
        self.checklist.ended_at = self.now()
        self.publish()
