"""The typed operator API over Temporal: status, show, start (and its dry run), the
operator's acts on a run (confirm, approve, retry, skip, abort), the controls, the fence,
the readiness watch, the runs and their reports. Models in, models out, one refusal type
(api.refusal.Refused). The CLI (client/) renders what it returns as text and exit codes,
the console (console/) as pages and JSON; neither talks to Temporal by itself."""

from api.refusal import Refused

__all__ = ["Refused"]
