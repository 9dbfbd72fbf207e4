"""Signed intents (docs/operators/signed-acts.md): what a person means to do to a run,
signed with their Ed25519 key, and its verification.

Pure and deterministic: no clock, no randomness, no I/O (the caller hands the time and
the nonce), so a workflow verifies an intent in its sandbox and a replay gives the same
verdict. Ed25519 (RFC 8032) signatures are deterministic and so is their verification;
`cryptography` does both. The key format `ed25519:<base64 of the 32 raw bytes>` is the
one line `amsm keys new` prints and the inventory lists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

KEY_PREFIX = "ed25519:"
# How long a signed intent is good for, from the time it says it was signed; and how far
# ahead of the run's clock it may be (two machines' clocks differ a little).
WINDOW = timedelta(minutes=10)
SKEW = timedelta(minutes=1)
DOCS = "docs/operators/signed-acts.md"

# An act on a run's step, or one that rides on a workflow's input: a start (its step: the
# kind), a control (its step: the control), a fence's end (its step: "fence"); bound to the workflow id and to the input
# (`shown_input`).
Action = Literal[
    "confirm",
    "approve",
    "retry",
    "skip",
    "abort",
    "start",
    "control",
    "end-fence",
    "schedule",
    "cancel",
]
Refusal = Literal["missing", "bad-signature", "unknown-key", "replayed", "expired", "misbound"]


def public_line(key: Ed25519PublicKey) -> str:
    """The public key as the inventory lists it: `ed25519:<base64>`."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def public_key(line: str) -> Ed25519PublicKey:
    """The key of an `ed25519:<base64>` line; ValueError saying what is allowed."""
    if not isinstance(line, str) or not line.startswith(KEY_PREFIX):
        raise ValueError(f"{str(line)[:60]!r} is not a public key: write `ed25519:<base64>`")
    try:
        raw = base64.b64decode(line[len(KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{line[:60]!r} is not a public key: its base64 is broken") from None
    if len(raw) != 32:
        raise ValueError(f"{line[:60]!r} is not a public key: an Ed25519 key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def shown(items: list[str] | None) -> str | None:
    """What a gate showed, as a digest of its list (the orphan clips a restore would
    purge): the intent is bound to it, so an approval of another list does not pass."""
    if items is None:
        return None
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def shown_input(fields: Mapping[str, object]) -> str:
    """What a start says it starts: a digest of its input (JSON, without its intent), so
    an intent signed for one start does not start another (another side, other options,
    other overrides)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def shown_for(action: str, items: list[str] | None, clients: list[str] | None) -> str | None:
    """What an act is bound to besides its step: an approval, to the list its gate showed;
    a confirmation that names clients (split's move-editors), to those clients."""
    if action == "approve":
        return shown(items)
    if action == "confirm" and clients is not None:
        return shown(clients)
    return None


# A start is bound to the run it follows under the pair's workflow id: its intent's `run`
# is "<workflow id> after <run id>" ("none" before the pair's first run), so a signed
# start starts one run, and sent again after that run it is refused as replayed.
AFTER = " after "
NO_RUN = "none"


def start_binding(workflow_id: str, after: str | None) -> str:
    """The `run` a start's intent is bound to: the workflow id and the run it follows."""
    return f"{workflow_id}{AFTER}{after or NO_RUN}"


def followed_run(run: str) -> str | None:
    """The run a start's intent says it follows (NO_RUN: none), or None where it does not
    say (signed by an amsm from before starts were bound to the run they follow)."""
    _, sep, after = run.partition(AFTER)
    return after if sep and after else None


class Intent(BaseModel):
    """What one person means to do to one run: bound to the pair, the run (its first run
    id, which a continuation keeps), the step, the action, the client and what the gate
    showed; who, when, a nonce of their own, and whether through the console."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair: str = Field(max_length=64)
    run: str = Field(max_length=128)
    step: str = Field(max_length=128)
    action: Action
    client: str | None = Field(None, max_length=128)
    shown: str | None = Field(None, max_length=80)
    operator: str = Field(max_length=128)
    at: str = Field(max_length=40)  # ISO 8601 with its offset
    nonce: str = Field(min_length=16, max_length=64)
    console: bool = False

    def canonical(self) -> bytes:
        """The bytes signed: JSON with sorted keys, no spaces, ASCII only."""
        fields = self.model_dump(mode="json")
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
            "ascii"
        )


class SignedIntent(BaseModel):
    """An intent, the public key that signed it and the signature (base64)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: Intent
    key: str = Field(max_length=80)
    signature: str = Field(max_length=100)


class Binding(BaseModel):
    """What the run expects an intent to say: its own pair, run, step, action, client,
    what its gate shows, and the operator the act names."""

    model_config = ConfigDict(frozen=True)

    pair: str
    run: str
    step: str
    action: str
    operator: str
    client: str | None = None
    shown: str | None = None


class Verdict(BaseModel):
    """Proven by whose key (`operator`, through the console or not), or refused (`refusal`
    and its sentence)."""

    model_config = ConfigDict(frozen=True)

    operator: str | None = None
    console: bool = False
    refusal: Refusal | None = None
    sentence: str = ""

    @property
    def proven(self) -> bool:
        return self.refusal is None

    @property
    def refusal_sentence(self) -> str | None:
        return None if self.refusal is None else self.sentence

    @property
    def proof(self) -> str:
        """The words a checklist shows for the act."""
        if self.refusal is not None:
            return "unproven"
        if self.console:
            return f"{self.operator}, through the console (proven by the console's key)"
        return f"proven by {self.operator}'s key"


UNPROVEN = "unproven"


def sign(intent: Intent, key: Ed25519PrivateKey) -> SignedIntent:
    signature = key.sign(intent.canonical())
    return SignedIntent(
        intent=intent,
        key=public_line(key.public_key()),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def _refused(kind: Refusal, why: str) -> Verdict:
    return Verdict(refusal=kind, sentence=f"intent refused ({kind}): {why} ({DOCS})")


def _misbound(i: Intent, b: Binding) -> str | None:
    for name in ("pair", "run", "step", "action", "client", "shown"):
        said, want = getattr(i, name), getattr(b, name)
        if said != want:
            return f"it was signed for {name} {said!r}, this act is for {want!r}"
    if i.operator.lower() != b.operator.lower():
        return f"it was signed by {i.operator}, this act names {b.operator}"
    return None


def signed_time(at: str) -> datetime | None:
    """An intent's time (ISO 8601 with its offset), or None where it is not one."""
    try:
        t = datetime.fromisoformat(at)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def fresh(at: str, now: datetime) -> bool:
    """An intent signed at `at` could still be taken at `now` (its nonce must be kept)."""
    t = signed_time(at)
    return t is not None and t >= now - WINDOW - SKEW


def verify(
    signed: SignedIntent | None,
    keys_by_operator: Mapping[str, str],
    now: datetime,
    seen_nonces: Collection[str],
    bound_to: Binding,
    console_key: str | None = None,
) -> Verdict:
    """Whose key proves the act, or why the intent is refused. `keys_by_operator`: the
    inventory's public key lines, by operator name in lower case; `now`: the run's time
    (workflow.now()); `seen_nonces`: the nonces the run has taken already."""
    if signed is None:
        return _refused("missing", "the act carries no signed intent")
    i = signed.intent
    if i.console:
        if console_key is None or signed.key != console_key:
            return _refused("unknown-key", "it is not signed with the inventory's console key")
    elif keys_by_operator.get(i.operator.lower()) != signed.key:
        return _refused("unknown-key", f"its key is not {i.operator}'s key in the inventory")
    try:
        public_key(signed.key).verify(
            base64.b64decode(signed.signature, validate=True), i.canonical()
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return _refused("bad-signature", "its signature does not match what it says")
    if (why := _misbound(i, bound_to)) is not None:
        return _refused("misbound", why)
    at = signed_time(i.at)
    if at is None:
        return _refused("expired", f"its time {i.at[:40]!r} is not an ISO time with an offset")
    if at < now - WINDOW or at > now + SKEW:
        return _refused(
            "expired",
            f"signed at {i.at}, the run's time is {now.isoformat(timespec='seconds')}; an "
            f"intent is good for {int(WINDOW.total_seconds() // 60)} minutes",
        )
    if i.nonce in seen_nonces:
        return _refused("replayed", f"its nonce {i.nonce[:16]}... was taken already")
    return Verdict(operator=i.operator, console=i.console)
