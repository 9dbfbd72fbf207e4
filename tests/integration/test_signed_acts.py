"""Signed acts (docs/operators/signed-acts.md) on the dev server with the lab: a confirm
signed with ann's key is recorded as proven by her key; an intent whose nonce was taken
already is refused and recorded; under identity.require_signed an unsigned confirm is
refused, recorded, and the run still waits."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api.act import tick
from api.refusal import Refused
from api.runs import fetch_checklist, resolve_run
from inventory import intent
from tests.support import secret_scan as scan
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, hands_for, step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.worker import running_worker
from workflows.models import OperatorSignal
from workflows.registry import WORKFLOWS


async def _ended(temporal: Client, lab: Lab, run: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run)
        if shown["state"] not in ("running", "awaiting-operator"):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run} did not end: {shown['state']}")


def _key_file(tmp_path: Path, name: str) -> tuple[Ed25519PrivateKey, str, str]:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / f"{name}.key"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return key, str(path), intent.public_line(key.public_key())


async def _waiting_at(temporal: Client, lab: Lab, run: str, step_id: str) -> dict:
    return await drive(
        temporal,
        lab,
        run,
        "Y",
        until=lambda s: step(s, step_id)["status"] == "awaiting-confirmation",
    )


async def test_a_signed_confirm_is_proven_and_a_replayed_nonce_refused(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "tester")  # who reads (show) and acts unsigned
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    ann, ann_file, ann_line = _key_file(tmp_path, "ann")
    lab.edit_inventory(operators=[{"name": "ann", "key": ann_line}, "tester"])
    async with running_worker(temporal, lab):
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--operator", "ann")
        hands_for(lab, "stop-insync", "Y")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--key", ann_file)
        assert rc == 0 and "as ann (signed with their key)" in out, out
        shown = await _waiting_at(temporal, lab, run, "stop-allsync")
        assert step(shown, "stop-insync")["proof"] == "proven by ann's key"
        assert step(shown, "stop-insync")["operator"] == "ann"
        [nonce] = shown["nonces"]  # the CLI's, kept while it could still be taken

        # The same nonce again, on the next step, properly signed by ann: a replay.
        handle = await resolve_run(temporal, lab.inventory, run)
        c = await fetch_checklist(handle)
        replay = intent.sign(
            intent.Intent(
                pair=c.pair,
                run=c.first_run_id or c.run_id,
                step="stop-allsync",
                action="confirm",
                operator="ann",
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                nonce=nonce,
            ),
            ann,
        )
        sig = OperatorSignal(step="stop-allsync", operator="ann", intent=replay)
        with pytest.raises(Refused, match=r"intent refused \(replayed\): its nonce"):
            await tick(temporal, lab.inventory, run, "confirm", sig)
        shown = await cli_json(temporal, lab, "show", run)
        [rejected] = shown["rejected"]
        assert rejected["operator"] == "ann" and rejected["step"] == "stop-allsync"
        assert rejected["reason"].startswith("intent refused (replayed)"), rejected
        assert step(shown, "stop-allsync")["status"] == "awaiting-confirmation"

        # An unsigned act where the pair has keys is taken, and marked unproven.
        hands_for(lab, "stop-allsync", "Y")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-allsync", "--operator", "tester")
        assert rc == 0, out
        shown = await cli_json(temporal, lab, "show", run)
        assert step(shown, "stop-allsync")["proof"] == "unproven"
        rc, text = await cli(temporal, lab, "show", run)
        assert "by ann (proven by ann's key)" in text and "by tester (unproven)" in text, text
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over", "--key", ann_file)
        assert rc == 0, out
        shown = await cli_json(temporal, lab, "show", run)
        assert [d["proof"] for d in shown["decisions"]] == ["proven by ann's key"]
        await _ended(temporal, lab, run)
        history = await temporal.get_workflow_handle(
            lab.inventory.workflow_id, run_id=run
        ).fetch_history()
        # Verified in the sandbox, and again the same on replay (Ed25519 is deterministic).
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        texts = "\n".join(t for e in history.events for t in scan.texts(e))
        assert ann_line in texts  # the public key travels with each signed act ...
        private = ann.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        pem = ann.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        assert base64.b64encode(private).decode() not in texts  # ... never the private one
        assert pem.splitlines()[1] not in texts
        assert_no_secrets(lab, history)
        record_history(history, "switch-signed-acts.json")


async def test_require_signed_refuses_an_unsigned_confirm_and_the_run_waits(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "tester")  # who reads (show) and acts unsigned
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    _, ann_file, ann_line = _key_file(tmp_path, "ann")
    _, bob_file, _ = _key_file(tmp_path, "bob")  # a key the inventory does not list
    lab.edit_inventory(
        operators=[{"name": "ann", "key": ann_line}, "tester"], identity={"require_signed": True}
    )
    async with running_worker(temporal, lab):
        # Under require_signed the start is signed too (docs/operators/signed-acts.md).
        run, _ = await switch_waiting_at_stop_insync(temporal, lab, "Y", "--key", ann_file)
        hands_for(lab, "stop-insync", "Y")
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--operator", "ann")
        assert rc == 1 and "unsigned: this pair takes only signed acts" in out, out
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--key", bob_file)
        assert rc == 2 and "no operator's key" in out, out
        # A raw signal from anyone who reaches Temporal, claiming ann's name.
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        await handle.signal("confirm", {"step": "stop-insync", "operator": "ann"})
        # And the same as updates (confirm, abort), answered refused, recorded the same.
        for update, arg in (
            ("confirm-step", {"step": "stop-insync", "operator": "ann"}),
            ("decide-step", {"step": "", "action": "abort", "operator": "ann", "reason": "x"}),
        ):
            answer = await handle.execute_update(update, arg)
            assert answer["accepted"] is False, answer
            assert answer["reason"].startswith("unsigned: this pair takes only signed"), answer
        deadline = time.monotonic() + 10
        shown = await cli_json(temporal, lab, "show", run)
        while time.monotonic() < deadline and len(shown["rejected"]) < 4:
            shown = await cli_json(temporal, lab, "show", run)
        assert [(r["operator"], r["reason"][:44]) for r in shown["rejected"]] == [
            ("ann", "unsigned: this pair takes only signed acts (")
        ] * 4
        assert shown["decisions"] == []
        assert step(shown, "stop-insync")["status"] == "awaiting-confirmation"
        assert shown["state"] == "awaiting-operator"
        rc, out = await cli(temporal, lab, "confirm", run, "stop-insync", "--key", ann_file)
        assert rc == 0, out
        shown = await _waiting_at(temporal, lab, run, "stop-allsync")
        assert step(shown, "stop-insync")["proof"] == "proven by ann's key"
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test", "--operator", "ann")
        assert rc == 1 and "unsigned" in out
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over", "--key", ann_file)
        assert rc == 0, out
