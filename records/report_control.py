"""What a console control's run report adds: its operator, its answer, and the
break-glass overrides (rule, operator, reason, used or not needed).

A control's history holds the overrides twice: asked for in its input, recorded in its
result. A control that did not complete has no result, so its overrides are listed from
the input with the outcome unknown.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from records.history import RunHistory
from workflows.overrides import Override, OverrideRecord


class OverrideRow(BaseModel):
    rule: str
    operator: str
    reason: str
    used: bool | None = None  # None: the control did not complete, so not known
    overrode: list[str] = []
    outcome: str = ""


OVERRIDE_HEAD = ["rule", "by", "reason", "used", "outcome"]


def is_control(run: RunHistory) -> bool:
    return run.workflow_type == "control"


def _models(values: Any, model: type[BaseModel]) -> list[Any]:
    out = []
    for v in values if isinstance(values, list) else []:
        try:
            out.append(model.model_validate(v))
        except ValidationError:
            continue
    return out


def override_rows(run: RunHistory) -> list[OverrideRow]:
    inp = run.input if isinstance(run.input, dict) else {}
    result = run.result if isinstance(run.result, dict) else {}
    if run.status == "completed" and "overrides" in result:
        recs: list[OverrideRecord] = _models(result["overrides"], OverrideRecord)
        return [OverrideRow(**r.model_dump()) for r in recs]
    asked: list[Override] = _models(inp.get("overrides"), Override)
    how = f"unknown: the control {run.status}" + (
        f" ({run.close_message})" if run.close_message else ""
    )
    return [
        OverrideRow(
            rule=o.rule, operator=str(inp.get("operator", "unknown")), reason=o.reason, outcome=how
        )
        for o in asked
    ]


def control_result(run: RunHistory) -> str | None:
    """The control's own sentence when it completed."""
    result = run.result if isinstance(run.result, dict) else {}
    if is_control(run) and run.status == "completed" and result.get("message"):
        return f"completed: {result['message']}"
    return None


def used_text(row: OverrideRow) -> str:
    return "unknown" if row.used is None else ("yes" if row.used else "no")
