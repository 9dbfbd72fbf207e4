"""Bounds on everything that reaches a workflow from outside: workflow inputs, signals,
updates and control inputs (docs/reference/limits.md states them).

Anyone who can reach the Temporal frontend can send any payload, so no field is
unbounded: a name is short and on one line, a note or reason is a paragraph on one
line, a list has a ceiling. A payload over `MAX_PAYLOAD_BYTES` is refused before it is
decoded, and no rejected payload is ever stored whole (the checklist keeps a count of
rejected signals and the last few, each truncated).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from temporalio import workflow
from temporalio.converter import PayloadConverter

from workflows import server

# A name: operator, step id, rule, host. DNS allows 253 characters for a host name.
MAX_NAME = 253
# A note, a reason.
MAX_TEXT = 1000
# Clients in one list (a split's move-editors, a control's hosts); pilots of a split-switch.
MAX_CLIENTS = 1000
MAX_PILOTS = 100
# Break-glass overrides on one control (there are 8 rules; each may appear once).
MAX_OVERRIDES = 8
# A signal's, an update's or a workflow input's encoded payload.
MAX_PAYLOAD_BYTES = 64 * 1024
# The input of a run's own continuation (it carries the checklist on): the server's own
# limit on a payload (workflows/server.py).
MAX_CONTINUED_BYTES = server.BLOB_SIZE_ERROR
# What the payload codec adds to a payload (AES-GCM's nonce and tag, the key id: under
# 100 bytes), with room to spare: a continuation must fit once encrypted too.
CODEC_MARGIN = 1024
# A run that waits (a manual step, the fence) continues as new past these, or when the
# server suggests it: far below the server's limits of 51,200 events and 50 MB.
CONTINUE_AFTER_EVENTS = 10_000
CONTINUE_AFTER_BYTES = 10 * 1024 * 1024
# ... and once it has received this many signals: half of what the server accepts in
# one run, so the count starts again before the server refuses the operator's.
CONTINUE_AFTER_SIGNALS = server.MAX_SIGNALS // 2
# ... but, for its signal count, no sooner than this after the run started (patch
# `continue-after-signals-paced`): a storm of signals from elsewhere fills a run's 8 in a
# moment, and a run that continued at once each time was closing or starting most of the
# time, refusing the operator's updates. Paced, a storm costs one restart of the run
# (about a second or two) every CONTINUE_SIGNALS_EVERY seconds, and the run is open to
# the operator in between; the signals the server refuses meanwhile cost the run nothing
# (docs/reference/limits.md, "Storms while the operator acts").
CONTINUE_SIGNALS_EVERY = 10.0
# What an operator's act (confirm, approve, decide, abort) waits for at most during such
# a storm: one restart of the run (its continuation read the pair again and reached the
# step) with room for a loaded machine. Measured by `python -m bench.storm`
# (bench/results/) and asserted by tests/integration/test_hardening.py.
STORM_ACT_BOUND_SECONDS = 10.0
# Rejected signals kept whole in the checklist (the total is counted), and the length
# each kept text is cut to.
REJECTED_KEPT = 20
REJECTED_TEXT = 200

# No control character (newline, carriage return, escape, ...): a name or a note cannot
# forge a log line or a row of the Web UI's checklist.
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=_ONE_LINE)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=_ONE_LINE)]


class Bounded(BaseModel):
    """A message from outside: unknown fields are refused (an older worker must not
    silently drop a field it does not know, such as `overrides`)."""

    model_config = ConfigDict(extra="forbid")


def cut(text: str, limit: int = REJECTED_TEXT) -> str:
    """`text` on one line and at most `limit` characters: for what is kept of a payload
    that was refused."""
    flat = "".join(c if c.isprintable() else " " for c in str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def unique_hosts(hosts: list[str]) -> list[str]:
    """Host names without repeats, compared without regard to case (ED-01 is ed-01),
    in their first spelling and order."""
    seen: set[str] = set()
    out = []
    for h in hosts:
        if h.lower() not in seen:
            seen.add(h.lower())
            out.append(h)
    return out


def history_is_long(events: int) -> bool:
    """In a workflow: its history has passed `events` (timing.continue_after_events) or
    CONTINUE_AFTER_BYTES, or the server suggests continuing as new."""
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() > events
        or info.get_current_history_size() > CONTINUE_AFTER_BYTES
    )


def encoded_size(value: Any, converter: PayloadConverter) -> int:
    """The bytes `value` takes as a payload (before the codec): what the server measures
    against its blob limit, less the codec's few bytes."""
    return converter.to_payloads([value])[0].ByteSize()
