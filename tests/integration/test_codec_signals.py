"""With payload encryption on, what cannot be decrypted is refused visibly and the run
goes on (issue 14, item 7): on the real dev server, the real codec, a lab pair."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.support.cli import cli, cli_json
from tests.support.driving import hands_for, step, switch_waiting_at_stop_insync
from tests.support.lab import Lab
from tests.support.worker import running_worker
from wire.codec import AesGcmCodec, new_key_line
from workers.worker import Connection, connect
from workflows.models import OperatorSignal

NOT_ENCRYPTED = (
    "payload could not be decrypted: it is not encrypted, and this worker takes only "
    "encrypted payloads"
)
BAD_CIPHERTEXT = (
    "payload could not be decrypted: wrong key, or the ciphertext is damaged or truncated"
)
UNKNOWN_KEY = (
    "payload could not be decrypted: it was encrypted with a key id that is not in the key file"
)


async def test_undecryptable_signals_are_rejected_and_the_run_goes_on(
    temporal_env: WorkflowEnvironment,
    lab_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    lab: Lab = await lab_factory(editors=1, ingest=0)
    address = temporal_env.client.service_client.config.target_host
    keys = tmp_path / "keys"
    keys.write_text(new_key_line("k2026") + "\n")
    secret = await connect(Connection(address=address, codec_key_file=str(keys)))
    # Same key id, another key: what a client with a stale or wrong key file sends.
    wrong_keys = tmp_path / "wrong-keys"
    wrong_keys.write_text(new_key_line("k2026") + "\n")
    wrong = await connect(Connection(address=address, codec_key_file=str(wrong_keys)))
    other_keys = tmp_path / "other-keys"
    other_keys.write_text(new_key_line("k1999") + "\n")
    other = await connect(Connection(address=address, codec_key_file=str(other_keys)))
    plain: Client = temporal_env.client  # no codec: anyone who reaches the frontend

    async with running_worker(secret, lab):
        run, _ = await switch_waiting_at_stop_insync(secret, lab, "Y")
        wid = lab.inventory.workflow_id
        confirm = OperatorSignal(step="stop-insync", operator="tester", note="forged")
        # Each to the pair's current run: the run continues as new after 4 signals.

        await wrong.get_workflow_handle(wid).signal("confirm", confirm)
        await other.get_workflow_handle(wid).signal("confirm", confirm)
        # A real ciphertext, cut short.
        key_line = keys.read_text().strip()
        codec = AesGcmCodec({"k2026": base64.b64decode(key_line.split(":", 1)[1])}, "k2026")
        [whole] = await codec.encode(secret.data_converter.payload_converter.to_payloads([confirm]))
        truncated = Payload(metadata=dict(whole.metadata), data=whole.data[: len(whole.data) // 2])
        garbage = Payload(metadata=dict(whole.metadata), data=os.urandom(300))
        handle = plain.get_workflow_handle(wid)
        await handle.signal("confirm", RawValue(truncated))
        await handle.signal("approve", RawValue(garbage))
        # Plaintext, as a Web UI without the codec server (or a script) would send it.
        await handle.signal("confirm", confirm)

        shown: dict = {}
        for _ in range(100):
            shown = await cli_json(secret, lab, "show", run)
            if len(shown["rejected"]) >= 5:
                break
            await asyncio.sleep(0.1)
        reasons = [r["reason"] for r in shown["rejected"]]
        assert reasons == [
            BAD_CIPHERTEXT,
            UNKNOWN_KEY,
            BAD_CIPHERTEXT,
            BAD_CIPHERTEXT,
            NOT_ENCRYPTED,
        ]
        assert step(shown, "stop-insync")["status"] == "awaiting-confirmation"
        assert shown["state"] == "awaiting-operator"

        # An update the worker cannot read is refused at once, and leaves nothing behind.
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await handle.execute_update("confirm-step", confirm)
        # (its text is encrypted like every failure: a client without the key reads
        # only the type)
        assert isinstance(e.value.cause, ApplicationError)
        assert e.value.cause.type == "UndecodablePayload"
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await wrong.get_workflow_handle(wid).execute_update("confirm-step", confirm)
        assert isinstance(e.value.cause, ApplicationError)
        assert e.value.cause.type == "UndecodablePayload"

        # The run is still confirmable, by an operator with the key.
        hands_for(lab, "stop-insync", "Y")
        rc, out = await cli(
            secret, lab, "confirm", run, "stop-insync", "--operator", "tester", "--note", "ok"
        )
        assert rc == 0, out
        for _ in range(100):
            shown = await cli_json(secret, lab, "show", run)
            # confirmed, then checked at the device (running) before it is done
            if step(shown, "stop-insync")["status"] not in ("awaiting-confirmation", "running"):
                break
            await asyncio.sleep(0.1)
        assert step(shown, "stop-insync")["status"] == "done", shown
        assert step(shown, "stop-insync")["note"] == "ok"
        assert len(shown["rejected"]) == 5


async def test_an_undecryptable_input_fails_the_run_at_once(
    temporal_env: WorkflowEnvironment,
    lab_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Not a workflow task retried for ever: the run fails, with the reason, before any
    step; a run started properly beside it works."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    address = temporal_env.client.service_client.config.target_host
    keys = tmp_path / "keys"
    keys.write_text(new_key_line("k2026") + "\n")
    secret = await connect(Connection(address=address, codec_key_file=str(keys)))
    plain: Client = temporal_env.client
    async with running_worker(secret, lab):
        handle = await plain.start_workflow(
            "pair-status",
            {"pair": lab.inventory.pair},
            id=f"codec-input-{uuid.uuid4().hex[:8]}",
            task_queue=lab.inventory.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as e:
            await asyncio.wait_for(secret.get_workflow_handle(handle.id).result(), timeout=30)
        cause = e.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "UndecodablePayload"
        assert cause.message == NOT_ENCRYPTED and cause.non_retryable
        history = await handle.fetch_history()
        kinds = [ev.event_type for ev in history.events]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds  # nothing was done
        status = await cli_json(secret, lab, "status")
        assert status["mode"] == "mirrored"
