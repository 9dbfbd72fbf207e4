"""A signed act that rides on a workflow's input (a start, a control, a fence's end;
docs/operators/signed-acts.md): its intent checked against the inventory's keys, bound to
the pair, the workflow id, what it is (`step`), the action, the person, and the whole
input as a digest. Pure: the workflow hands the time, the keys and the nonces taken."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel

from inventory import intent
from inventory.intent import SignedIntent
from workflows.rules import identity_refusal

# The memo field a run's proven start goes to ({operator, proof}): the report reads it.
STARTED_BY = "amsm-started-by"
# What a signed input leaves out of its digest: the intent itself, and a continuation's
# checklist.
UNSIGNED_FIELDS = {"intent", "resume"}


def input_digest(inp: BaseModel) -> str:
    """What the intent of a start or a control says it starts (intent.shown_input)."""
    return intent.shown_input(inp.model_dump(mode="json", exclude=UNSIGNED_FIELDS))


class Keys(BaseModel):
    """The inventory's keys as the worker hands them to a run (Capabilities)."""

    operator_keys: dict[str, str] = {}
    console_key: str | None = None
    require_signed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.operator_keys or self.console_key)


def iso(t: datetime) -> str:
    """A scheduled time as signed and as the run reads it: UTC, to the second (a time
    without an offset is taken as UTC, never as the host's zone)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="seconds")


def schedule_digest(run_input: BaseModel, at: str, window: float) -> str:
    """What a scheduled run's intent says it files: the run's input as `amsm start`
    would send it (without who scheduled it), when, and the window it may start in.
    The schedule computes it from what it was filed with, the run from its own input."""
    fields = run_input.model_dump(mode="json", exclude=UNSIGNED_FIELDS | {"scheduled"})
    return intent.shown_input({"run": fields, "at": at, "window": float(window)})


def prove_input(
    inp: BaseModel,
    signed: SignedIntent | None,
    bound: intent.Binding,
    keys: Keys,
    now: datetime,
    nonces: Collection[str] = (),
    shown: str | None = None,
) -> tuple[str | None, str | None]:
    """(its proof, None) or (None, why it is refused). `bound`: what the run expects, its
    `shown` left empty (the input's digest goes there, or `shown`). Without an intent and
    without require_signed: "unproven" where the pair has keys, else None, and never
    refused."""
    if signed is None and not keys.require_signed:
        return (intent.UNPROVEN if keys.any else None), None
    bound = bound.model_copy(update={"shown": shown or input_digest(inp)})
    verdict = (
        None
        if signed is None
        else intent.verify(signed, keys.operator_keys, now, nonces, bound, keys.console_key)
    )
    why = identity_refusal(
        verdict is not None,
        None if verdict is None else verdict.refusal_sentence,
        keys.require_signed,
    )
    if why is not None or verdict is None:
        return None, why or "unsigned"
    return verdict.proof, None


def keys_of(operator_keys: Mapping[str, str], console_key: str | None, require: bool) -> Keys:
    return Keys(operator_keys=dict(operator_keys), console_key=console_key, require_signed=require)
