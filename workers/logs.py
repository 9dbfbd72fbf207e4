"""The worker's logs: plain text for a terminal, or one JSON object per line.

`amsm worker --log-format json` (env AMSM_LOG_FORMAT=json) writes every line with
the run it belongs to (workflow id, run id, workflow type), the step and the host
when the line is about one, so a log pipeline can follow a run or a device:

    {"ts": "2026-11-25T12:00:00.123Z", "level": "WARNING", "logger": "temporalio.activity",
     "msg": "client_reboot failed: ED-02: ...", "workflow_id": "amsm-lab-...-ED-02",
     "run_id": "01a2...", "workflow_type": "client-switch", "activity": "client_reboot",
     "attempt": 1, "step": "client-switch: restart 1/2", "host": "ED-02"}

Activities learn their step and host from `workers.interceptors`; workflow lines name
their step where the workflow logs one (`extra={"step": ...}`).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

LOG_FORMATS = ("text", "json")

# Set by the activity interceptor for the activity running in this task.
CURRENT_STEP: ContextVar[str | None] = ContextVar("amsm_step", default=None)
CURRENT_HOST: ContextVar[str | None] = ContextVar("amsm_host", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        wf = getattr(record, "temporal_workflow", None)
        act = getattr(record, "temporal_activity", None)
        if isinstance(wf, dict):
            out["workflow_id"] = wf.get("workflow_id")
            out["run_id"] = wf.get("run_id")
            out["workflow_type"] = wf.get("workflow_type")
        if isinstance(act, dict):
            out["workflow_id"] = act.get("workflow_id")
            out["run_id"] = act.get("workflow_run_id")
            out["workflow_type"] = act.get("workflow_type")
            out["activity"] = act.get("activity_type")
            out["attempt"] = act.get("attempt")
        step = getattr(record, "step", None) or CURRENT_STEP.get()
        host = getattr(record, "host", None) or CURRENT_HOST.get()
        if step:
            out["step"] = step
        if host:
            out["host"] = host
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(fmt: str = "text") -> None:
    """Configure the root logger for the worker; `fmt` is one of LOG_FORMATS."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format is one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        # The run's details go in their own fields, not appended to each message.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per connection otherwise
