"""Acts that ride on a workflow's input (workflows/signing.py): a start, a control, a
fence's end, checked against the inventory's keys without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inventory import intent
from workflows.models import FenceEnd, SwitchInput
from workflows.signing import Keys, input_digest, prove_input

ANN, CONSOLE = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
KEYS = Keys(
    operator_keys={"ann": intent.public_line(ANN.public_key())},
    console_key=intent.public_line(CONSOLE.public_key()),
)
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
BOUND = intent.Binding(pair="a", run="amsm-a", step="switch", action="start", operator="ann")


def signed(inp: SwitchInput, key: Ed25519PrivateKey = ANN, **over: object) -> intent.SignedIntent:
    fields: dict[str, object] = {
        "pair": "a",
        "run": "amsm-a",
        "step": "switch",
        "action": "start",
        "shown": input_digest(inp),
        "operator": "ann",
        "at": NOW.isoformat(),
        "nonce": "n" * 16,
        **over,
    }
    return intent.sign(intent.Intent.model_validate(fields), key)


def test_a_start_signed_by_ann_is_proven_and_bound_to_its_whole_input() -> None:
    to_y = SwitchInput(pair="a", to="Y", initiator="ann")
    assert prove_input(to_y, signed(to_y), BOUND, KEYS, NOW) == ("proven by ann's key", None)
    # The intent of a switch to Y on the input of a switch to X, or with an override added.
    to_x = SwitchInput(pair="a", to="X", initiator="ann")
    proof, why = prove_input(to_x, signed(to_y), BOUND, KEYS, NOW)
    assert (
        proof is None
        and why
        and why.startswith("intent refused (misbound): it was signed for shown")
    )
    # Its own intent does not count in the digest (nor a continuation's checklist).
    assert input_digest(to_y.model_copy(update={"intent": signed(to_y)})) == input_digest(to_y)


def test_the_console_signs_for_the_person_logged_in_with_its_own_key_only() -> None:
    inp = SwitchInput(pair="a", to="Y", initiator="ann")
    through = signed(inp, CONSOLE, console=True)
    assert prove_input(inp, through, BOUND, KEYS, NOW) == (
        "ann, through the console (proven by the console's key)",
        None,
    )
    _, why = prove_input(inp, signed(inp, ANN, console=True), BOUND, KEYS, NOW)
    assert why and why.startswith("intent refused (unknown-key)")
    _, why = prove_input(inp, signed(inp, CONSOLE), BOUND, KEYS, NOW)
    assert why and why.startswith("intent refused (unknown-key)")


def test_unsigned_is_unproven_where_the_pair_has_keys_and_refused_under_require_signed() -> None:
    inp = SwitchInput(pair="a", to="Y", initiator="ann")
    assert prove_input(inp, None, BOUND, Keys(), NOW) == (None, None)
    assert prove_input(inp, None, BOUND, KEYS, NOW) == ("unproven", None)
    strict = KEYS.model_copy(update={"require_signed": True})
    proof, why = prove_input(inp, None, BOUND, strict, NOW)
    assert proof is None and why and why.startswith("unsigned: this pair takes only signed acts")
    late = NOW + timedelta(minutes=11)
    _, why = prove_input(inp, signed(inp), BOUND, strict, late)
    assert why and why.startswith("intent refused (expired)")


def test_a_fence_end_is_bound_to_its_reason() -> None:
    end = FenceEnd(operator="ann", reason="X is back, fenced by hand")
    bound = intent.Binding(
        pair="a", run="amsm-a-fence", step="fence", action="end-fence", operator="ann"
    )
    good = intent.sign(
        intent.Intent(
            pair="a",
            run="amsm-a-fence",
            step="fence",
            action="end-fence",
            shown=input_digest(end),
            operator="ann",
            at=NOW.isoformat(),
            nonce="f" * 16,
        ),
        ANN,
    )
    assert prove_input(end, good, bound, KEYS, NOW) == ("proven by ann's key", None)
    other = end.model_copy(update={"reason": "another reason"})
    _, why = prove_input(other, good, bound, KEYS, NOW)
    assert why and "misbound" in why
