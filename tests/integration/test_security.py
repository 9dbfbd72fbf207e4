"""Encrypted payloads end to end, the codec server, connection options, no secrets in
histories."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import urllib.request
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from client.cli import build_parser
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.lab import Lab
from tests.support.secrets import (
    assert_no_secrets,
    assert_no_secrets_in_logs,
    assert_no_secrets_in_pair,
    lab_secrets,
    worker_logs,
)
from tests.support.worker import running_worker
from wire.codec import load_codec, new_key_line
from wire.options import connection
from workers.codec_server import serve
from workers.worker import Connection, connect
from workflows.models import StatusInput


async def test_encrypted_payloads_and_the_codec_server(
    temporal_env: WorkflowEnvironment,
    lab_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    lab: Lab = await lab_factory(editors=1, ingest=0)
    keys = tmp_path / "codec-keys"
    keys.write_text(new_key_line("k2026") + "\n")
    address = temporal_env.client.service_client.config.target_host
    secret_client = await connect(Connection(address=address, codec_key_file=str(keys)))
    async with running_worker(secret_client, lab):
        status = await cli_json(secret_client, lab, "status")
        assert status["mode"] == "mirrored"
        # A control that the interlock refuses: its failure text is encrypted too.
        rc, out = await cli(secret_client, lab, "replication", "start", "Y")
        assert rc == 1 and "replication-only-from-main" in out
    plain: Client = temporal_env.client  # no codec: what anyone reading Temporal sees
    control = plain.get_workflow_handle(f"{lab.inventory.workflow_id}-control")
    history = await control.fetch_history()
    text = history.to_json()
    assert "replication-only-from-main" not in text and "dsm-y" not in text
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in text  # base64 of binary/encrypted
    codec = load_codec(str(keys))
    assert codec is not None
    assert_no_secrets(lab, history, codec.decode_one)

    # The codec server turns them back for the Web UI, with CORS for the UI's origin only.
    server = serve(codec, "127.0.0.1", 0, ["http://localhost:8233"], token="t" * 32)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = next(
            e for e in history.events if e.HasField("workflow_execution_started_event_attributes")
        )
        payloads = started.workflow_execution_started_event_attributes.input
        from google.protobuf import json_format

        body = json_format.MessageToJson(payloads).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{server.server_port}/{'t' * 32}/decode", data=body, method="POST",
            headers={"Content-Type": "application/json", "Origin": "http://localhost:8233"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
            decoded = json.loads(resp.read())
        import base64

        plain_input = base64.b64decode(decoded["payloads"][0]["data"]).decode()
        assert '"control":"replication-start"' in plain_input.replace(" ", "")
    finally:
        server.shutdown()


async def test_no_secret_in_any_history_or_log_of_every_kind(
    temporal_env: WorkflowEnvironment,
    lab_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """With encryption on: status, a refused control, a switch with its client children;
    every history on the lab's queue and its description decoded and decrypted, and the
    worker's log, hold none of the lab's secrets (SSH key, WinRM and DSM passwords).
    Then a secret planted in a memo and in a log line is found: the scan can fail."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    secrets = lab_secrets(lab)
    dsm_password = (lab.dir / "secrets" / "dsm-password").read_text().strip()
    assert dsm_password in secrets
    keys = tmp_path / "codec-keys"
    keys.write_text(new_key_line("k2026") + "\n")
    codec = load_codec(str(keys))
    assert codec is not None
    address = temporal_env.client.service_client.config.target_host
    secret_client = await connect(Connection(address=address, codec_key_file=str(keys)))
    with worker_logs() as lines:
        async with running_worker(secret_client, lab):
            status = await cli_json(secret_client, lab, "status")
            assert status["dsm"]["X"]["mode"] == "main"  # the DSM took its password
            rc, out = await cli(secret_client, lab, "replication", "start", "Y")
            assert rc == 1 and "replication-only-from-main" in out
            run = (await cli_json(secret_client, lab, "start", "switch", "--to", "Y"))["run_id"]
            shown = await drive(secret_client, lab, run, "Y")
            assert shown["state"] == "completed", shown
            want = {"pair-status", "control", "switch", "client-batch"}
            for _ in range(50):  # the visibility store lists a closed run a little later
                kinds = await assert_no_secrets_in_pair(secret_client, lab, codec.decode_one)
                if want <= set(kinds):
                    break
                await asyncio.sleep(0.2)
            assert want <= set(kinds), kinds
            assert_no_secrets_in_logs(lab, lines)

            # Planted: an encrypted memo holding the DSM password, a log line with it.
            await secret_client.execute_workflow(
                "pair-status",
                StatusInput(pair=lab.inventory.pair),
                id=f"{lab.inventory.workflow_id}-planted",
                task_queue=lab.inventory.task_queue,
                memo={"note": f"pwd={dsm_password}"},
            )
            logging.getLogger("amsm.test").warning("connecting with %s", dsm_password)
    with pytest.raises(AssertionError, match=re.escape(dsm_password[:6] + "...")):
        for _ in range(50):
            await assert_no_secrets_in_pair(secret_client, lab, codec.decode_one)
            await asyncio.sleep(0.2)
    with pytest.raises(AssertionError, match="secrets in the worker's log"):
        assert_no_secrets_in_logs(lab, lines)


def test_connection_options_are_checked(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--tls-cert", str(tmp_path / "c.pem"), "status"])
    with pytest.raises(Exception, match="mutual TLS needs both --tls-cert and --tls-key"):
        connection(args).tls_config()
    args = build_parser().parse_args(["--tls-ca", str(tmp_path / "missing.pem"), "status"])
    with pytest.raises(Exception, match="TLS CA file .*missing.pem"):
        connection(args).tls_config()
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a CA")
    args = build_parser().parse_args(
        ["--tls-ca", str(ca), "--tls-server-name", "temporal", "status"]
    )
    cfg = connection(args).tls_config()
    assert cfg and getattr(cfg, "domain", None) == "temporal"


async def test_tls_against_a_plain_server_fails_clearly(
    temporal_env: WorkflowEnvironment,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab: Lab = await lab_factory(editors=1, ingest=0)
    from api.refusal import Refused
    from api.runs import connect as cli_connect

    args = build_parser().parse_args(
        ["--inventory", str(lab.inventory_path), "--address", lab.address, "--tls", "status"]
    )
    with pytest.raises(
        Refused, match=f"cannot reach Temporal at {lab.address}.*check the TLS options"
    ):
        await cli_connect(connection(args))
