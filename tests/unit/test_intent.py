"""Signed intents (docs/operators/signed-acts.md): sign and verify, each refusal, the
`amsm keys new` command and the inventory's keys."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amsm import main
from client.commands.keys import acting
from inventory import intent
from inventory.load import InventoryError, parse_inventory
from workflows import checklist, rules
from workflows.checklist import StepRunner
from workflows.models import Checklist, OperatorSignal, StepState

DATA = Path(__file__).parent / "data" / "inventory.yaml"
NOW = datetime(2030, 1, 1, 2, 13, tzinfo=UTC)
ANN, BOB, CONSOLE = (Ed25519PrivateKey.generate() for _ in range(3))
KEYS = {"ann": intent.public_line(ANN.public_key()), "bob": intent.public_line(BOB.public_key())}
CONSOLE_LINE = intent.public_line(CONSOLE.public_key())
BOUND = intent.Binding(
    pair="demo", run="run-1", step="confirm-recorders", action="confirm", operator="ann"
)


def _intent(**change: object) -> intent.Intent:
    fields: dict[str, object] = {
        "pair": "demo",
        "run": "run-1",
        "step": "confirm-recorders",
        "action": "confirm",
        "operator": "ann",
        "at": NOW.isoformat(),
        "nonce": "0123456789abcdef0123",
    }
    return intent.Intent.model_validate({**fields, **change})


def _verify(signed: intent.SignedIntent | None, **kw: object) -> intent.Verdict:
    args: dict[str, object] = {
        "keys_by_operator": KEYS,
        "now": NOW,
        "seen_nonces": (),
        "bound_to": BOUND,
        "console_key": CONSOLE_LINE,
    }
    return intent.verify(signed, **{**args, **kw})  # type: ignore[arg-type]


def test_a_signed_intent_is_proven_by_its_operators_key() -> None:
    v = _verify(intent.sign(_intent(), ANN))
    assert v.proven and v.operator == "ann" and v.proof == "proven by ann's key"


def test_the_canonical_bytes_are_deterministic_json() -> None:
    a, b = _intent(), _intent()
    assert a.canonical() == b.canonical()
    assert a.canonical().startswith(b'{"action":"confirm","at":"2030-01-01T02:13:00+00:00"')
    # Ed25519 signatures are deterministic: a replay signs nothing, but verifies the same.
    assert intent.sign(a, ANN).signature == intent.sign(b, ANN).signature


def test_the_console_signs_for_the_person_logged_in() -> None:
    v = _verify(intent.sign(_intent(console=True), CONSOLE))
    assert v.proven and v.proof.startswith("ann, through the console")
    # The console's key cannot sign as the person directly, nor a person as the console.
    assert _verify(intent.sign(_intent(), CONSOLE)).refusal == "unknown-key"
    assert _verify(intent.sign(_intent(console=True), ANN)).refusal == "unknown-key"
    assert _verify(intent.sign(_intent(console=True), CONSOLE), console_key=None).refusal == (
        "unknown-key"
    )


def test_missing() -> None:
    v = _verify(None)
    assert v.refusal == "missing" and v.proof == "unproven"
    assert rules.identity_refusal(False, None, require_signed=False) is None
    assert "identity.require_signed" in str(rules.identity_refusal(False, None, True))
    # A signed act is refused by its verdict whether or not the pair requires signing.
    assert rules.identity_refusal(True, "intent refused (x)", False) == "intent refused (x)"
    assert rules.identity_refusal(True, None, True) is None


def test_bad_signature_a_tampered_intent() -> None:
    good = intent.sign(_intent(), ANN)
    tampered = good.model_copy(update={"intent": _intent(step="approve-overwrite")})
    v = _verify(tampered, bound_to=BOUND.model_copy(update={"step": "approve-overwrite"}))
    assert v.refusal == "bad-signature"
    assert "does not match" in v.sentence and intent.DOCS in v.sentence
    garbage = good.model_copy(update={"signature": "not base64!"})
    assert _verify(garbage).refusal == "bad-signature"


def test_unknown_key_another_persons_or_none() -> None:
    assert _verify(intent.sign(_intent(), BOB)).refusal == "unknown-key"  # bob signs as ann
    stranger = Ed25519PrivateKey.generate()
    v = _verify(intent.sign(_intent(), stranger))
    assert v.refusal == "unknown-key" and "not ann's key" in v.sentence


def test_replayed_nonce() -> None:
    signed = intent.sign(_intent(), ANN)
    v = _verify(signed, seen_nonces={"0123456789abcdef0123"})
    assert v.refusal == "replayed" and "taken already" in v.sentence


@pytest.mark.parametrize(
    ("at", "kind"),
    [
        (NOW - intent.WINDOW - timedelta(seconds=1), "expired"),
        (NOW + intent.SKEW + timedelta(seconds=1), "expired"),
        (NOW - intent.WINDOW + timedelta(seconds=1), None),
        (NOW + intent.SKEW, None),
    ],
)
def test_expired_outside_its_window(at: datetime, kind: str | None) -> None:
    v = _verify(intent.sign(_intent(at=at.isoformat()), ANN))
    assert v.refusal == kind
    if kind:
        assert "good for 10 minutes" in v.sentence


def test_a_time_without_an_offset_is_refused() -> None:
    v = _verify(intent.sign(_intent(at="2030-01-01T02:13:00"), ANN))
    assert v.refusal == "expired" and "offset" in v.sentence


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pair", "other"),
        ("run", "run-2"),
        ("step", "approve-overwrite"),
        ("action", "skip"),
        ("client", "ED-03"),
        ("shown", "sha256:00"),
        ("operator", "bob"),
    ],
)
def test_misbound_to_another_run_step_action_or_pair(field: str, value: str) -> None:
    bound = BOUND.model_copy(update={field: value})
    v = _verify(intent.sign(_intent(), ANN), bound_to=bound)
    assert v.refusal == "misbound" and field in v.sentence


def test_an_approval_is_bound_to_what_the_gate_showed() -> None:
    a = intent.shown_for("approve", ["clip-1", "clip-2"], None)
    assert a == intent.shown(["clip-1", "clip-2"]) and a != intent.shown(["clip-1"])
    assert intent.shown_for("confirm", ["x"], None) is None
    assert intent.shown_for("confirm", None, ["ED-01"]) == intent.shown(["ED-01"])


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("ssh-ed25519 AAAA", "write `ed25519:<base64>`"),
        ("ed25519:!!!", "base64 is broken"),
        ("ed25519:AAAA", "32 bytes"),
    ],
)
def test_a_bad_public_key_line_says_what_is_allowed(line: str, why: str) -> None:
    with pytest.raises(ValueError, match="not a public key") as e:
        intent.public_key(line)
    assert why in str(e.value)


# -- amsm keys new ------------------------------------------------------------------------------
def test_keys_new_writes_0600_and_prints_the_public_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert main(["keys", "new", "--operator", "ann"]) == 0
    line = capsys.readouterr().out.strip()
    path = tmp_path / "cfg" / "amsm" / "ann.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert line.startswith("ed25519:") and intent.public_key(line)
    # The line is the public half of the key written.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert intent.public_line(key.public_key()) == line
    # Never overwritten.
    before = path.read_bytes()
    assert main(["keys", "new", "--operator", "ann"]) == 1
    assert "exists already" in capsys.readouterr().err and path.read_bytes() == before


def test_keys_new_json_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k" / "bob.key"
    assert main(["keys", "new", "--operator", "bob", "--out", str(out), "--json"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["operator"] == "bob" and data["file"] == str(out)
    assert data["public_key"].startswith("ed25519:")
    assert main(["keys", "new", "--operator", "b;ob", "--out", str(tmp_path / "x")]) == 2
    assert "not a valid user name" in capsys.readouterr().err
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert main(["keys", "new", "--operator", "ann", "--out", str(repo / "ann.key")]) == 2
    assert "inside a Git work tree" in capsys.readouterr().err
    assert not (repo / "ann.key").exists()
    assert main(["keys", "new", "--operator", "ann", "--out", str(repo / "a" / "ann.key")]) == 2
    assert not (repo / "a").exists()  # nothing left behind


# -- the inventory ----------------------------------------------------------------------------
def _inv(**change: object) -> dict:
    data = yaml.safe_load(DATA.read_text())
    data.update(change)
    return data


def _problems(data: dict) -> str:
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return "\n".join(e.value.problems)


def test_operators_with_keys_beside_plain_names() -> None:
    ops = [{"name": "Ann", "key": KEYS["ann"]}, "jo"]
    inv = parse_inventory(yaml.safe_dump(_inv(operators=ops)), "inv.yaml")
    assert inv.operators == ["Ann", "jo"] and inv.operator_keys == {"ann": KEYS["ann"]}
    assert inv.may_act("ann") and inv.may_act("jo")
    assert not inv.identity.require_signed and inv.console_key is None
    # Written back as it was read (a survey's inventory.json).
    assert inv.model_dump(mode="json")["operators"] == [{"name": "Ann", "key": KEYS["ann"]}, "jo"]
    again = parse_inventory(yaml.safe_dump(inv.model_dump(mode="json")), "inv.yaml")
    assert again.operator_keys == inv.operator_keys


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"operators": [{"name": "ann", "key": "ssh-rsa x"}]}, "operators[0]: key"),
        ({"operators": [{"name": "ann"}]}, "operators[0]: key: Field required"),
        ({"operators": [{"name": "ann", "key": KEYS["ann"], "role": "x"}]}, "role"),
        (
            {
                "operators": [
                    {"name": "ann", "key": KEYS["ann"]},
                    {"name": "bob", "key": KEYS["ann"]},
                ]
            },
            "another operator's key",
        ),
        ({"operator_keys": {"ann": KEYS["ann"]}}, "write each key beside its name"),
        ({"console_key": "ed25519:AAAA"}, "console_key: "),
        ({"identity": {"require_signed": True}}, "nobody could act"),
        ({"identity": {"require_signed": "yes please"}}, "identity.require_signed"),
        (
            {"operators": [{"name": "ann", "key": KEYS["ann"]}], "console_key": KEYS["ann"]},
            "the console has its own",
        ),
    ],
)
def test_bad_keys_are_refused_with_what_is_allowed(change: dict, why: str) -> None:
    assert why in _problems(_inv(**change))


def test_require_signed_with_keys_loads() -> None:
    data = _inv(
        operators=[{"name": "ann", "key": KEYS["ann"]}],
        console_key=CONSOLE_LINE,
        identity={"require_signed": True},
    )
    inv = parse_inventory(yaml.safe_dump(data), "inv.yaml")
    assert inv.identity.require_signed and inv.console_key == CONSOLE_LINE


# -- the CLI acts as the key's operator -------------------------------------------------------
def _key_file(tmp_path: Path, key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    p = tmp_path / "op.key"
    p.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    p.chmod(0o600)
    return str(p)


def test_the_cli_acts_as_the_keys_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argparse import Namespace

    from client.session import CliError

    monkeypatch.delenv("AMSM_KEY", raising=False)
    inv = parse_inventory(
        yaml.safe_dump(_inv(operators=[{"name": "Ann", "key": KEYS["ann"]}, "jo"])), "inv.yaml"
    )
    path = _key_file(tmp_path, ANN)
    who, key = acting(Namespace(key=path, operator=None), inv)
    assert who == "Ann" and key is not None
    monkeypatch.setenv("AMSM_KEY", path)
    assert acting(Namespace(key=None, operator="ann"), inv)[0] == "Ann"
    with pytest.raises(CliError, match="--operator jo but the key .* is Ann's"):
        acting(Namespace(key=None, operator="jo"), inv)
    monkeypatch.delenv("AMSM_KEY")
    assert acting(Namespace(key=None, operator="jo"), inv) == ("jo", None)
    stranger = _key_file(tmp_path / "..", Ed25519PrivateKey.generate())
    with pytest.raises(CliError, match="no operator's key"):
        acting(Namespace(key=stranger, operator=None), inv)
    os.chmod(path, 0o644)
    with pytest.raises(CliError, match="can be read by others"):
        acting(Namespace(key=path, operator=None), inv)


# -- the engine's hooks (workflows/checklist.py), without a server -------------------------------
def _runner(require_signed: bool) -> StepRunner:
    """A StepRunner holding a switch's checklist at stop-insync, as the property test
    (tests/unit/test_signal_rules.py) builds one: only its checks are called."""
    r = object.__new__(StepRunner)
    r.checklist = Checklist(
        workflow="switch",
        pair="demo",
        title="t",
        run_id="run-1",
        workflow_id="amsm-demo",
        initiator="ann",
        steps=[
            StepState(id="stop-insync", kind="manual", title="t", status="awaiting-confirmation"),
            StepState(id="approve-overwrite", kind="gate", title="t", status="awaiting-approval"),
        ],
    )
    r.checklist.steps[1].items = ["clip-1", "clip-2"]
    r.operators, r.gates, r._signals, r._decisions = {"ann", "bob"}, {}, {}, {}
    r.abort = None
    r.operator_keys, r.console_key, r.require_signed = KEYS, CONSOLE_LINE, require_signed
    r.rejected: list[str] = []  # type: ignore[misc]
    r.reject = lambda *a: r.rejected.append(a[3])  # type: ignore[method-assign,attr-defined]
    return r


def _say(r: StepRunner, kind: str, sig: OperatorSignal) -> str | None:
    with (
        mock.patch.object(checklist.workflow, "logger", logging.getLogger(__name__)),
        mock.patch.object(checklist.workflow, "patched", lambda _: True),
        mock.patch.object(checklist.workflow, "now", lambda: NOW),
    ):
        return r.on_signal(kind, sig)


def _signed(step: str, action: str = "confirm", **change: object) -> intent.SignedIntent:
    return intent.sign(_intent(step=step, action=action, **change), ANN)


def test_the_engine_proves_refuses_and_remembers_the_nonce() -> None:
    r = _runner(require_signed=True)
    unsigned = OperatorSignal(step="stop-insync", operator="ann")
    assert "this pair takes only signed acts" in str(_say(r, "confirm", unsigned))
    sig = unsigned.model_copy(update={"intent": _signed("stop-insync")})
    assert _say(r, "confirm", sig) is None
    assert r.checklist.step("stop-insync").proof == "proven by ann's key"
    assert list(r.checklist.nonces) == ["0123456789abcdef0123"]
    # The same nonce on the gate, properly bound and signed: a replay.
    shown = intent.shown(["clip-1", "clip-2"])
    again = OperatorSignal(
        step="approve-overwrite",
        operator="ann",
        intent=_signed("approve-overwrite", "approve", shown=shown),
    )
    assert str(_say(r, "approve", again)).startswith("intent refused (replayed)")
    # A fresh nonce, but the gate's list as it was before it changed: misbound.
    stale = OperatorSignal(
        step="approve-overwrite",
        operator="ann",
        intent=_signed(
            "approve-overwrite", "approve", nonce="f" * 20, shown=intent.shown(["clip-1"])
        ),
    )
    assert str(_say(r, "approve", stale)).startswith(
        "intent refused (misbound): it was signed for shown"
    )
    good = stale.model_copy(
        update={"intent": _signed("approve-overwrite", "approve", nonce="f" * 20, shown=shown)}
    )
    assert _say(r, "approve", good) is None
    assert len(r.rejected) == 3  # type: ignore[attr-defined]


def test_without_require_signed_an_unsigned_act_is_unproven_where_the_pair_has_keys() -> None:
    r = _runner(require_signed=False)
    assert _say(r, "confirm", OperatorSignal(step="stop-insync", operator="bob")) is None
    assert r.checklist.step("stop-insync").proof == "unproven"
    r = _runner(require_signed=False)
    r.operator_keys, r.console_key = {}, None
    assert _say(r, "confirm", OperatorSignal(step="stop-insync", operator="bob")) is None
    assert r.checklist.step("stop-insync").proof is None  # no keys: nothing to say


def test_a_start_is_bound_to_the_run_it_follows() -> None:
    run = intent.start_binding("amsm-lab", "5b0e")
    assert run == "amsm-lab after 5b0e"
    assert intent.followed_run(run) == "5b0e"
    assert intent.start_binding("amsm-lab", None) == "amsm-lab after none"
    assert intent.followed_run(intent.start_binding("amsm-lab", "")) == intent.NO_RUN
    # An intent from before the binding names no run it follows.
    assert intent.followed_run("amsm-lab") is None
    assert intent.followed_run("amsm-lab after ") is None
