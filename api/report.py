"""A run's report and its history, from the workflow history alone: read from Temporal
(RUN as `show` takes it, a control's run included) or from a file `amsm history export`
wrote. What goes wrong reading it is one refusal: what, where."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.converter import PayloadCodec

from api.runs import fetch_history, one_line_errors
from inventory.models import Inventory
from records.history import load_history_file, parse_history, readable
from records.report import Report, build_report


async def report_of_file(path: str, codec: PayloadCodec | None = None) -> Report:
    """The report of an exported history file."""
    history = await readable(load_history_file(path), codec, path)
    return build_report(parse_history(history, Path(path).name))


async def report_of_run(
    temporal: Client, inv: Inventory, run: str, codec: PayloadCodec | None, command: str = "report"
) -> Report:
    """The report of RUN, its history read from Temporal (`command`: named in a refusal)."""
    with one_line_errors(command):
        history = await fetch_history(temporal, inv, run)
        where = f"run {history.run_id} of workflow {history.workflow_id}"
        history = await readable(history, codec, where)
        return build_report(
            parse_history(history, f"workflow {history.workflow_id}"),
            objective=inv.objectives.time_to_serve_seconds,
        )


async def history_of_run(
    temporal: Client, inv: Inventory, run: str, command: str = "history export"
) -> WorkflowHistory:
    """RUN's history as the server holds it (payloads as they are written)."""
    with one_line_errors(command):
        return await fetch_history(temporal, inv, run)
