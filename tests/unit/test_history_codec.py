"""Histories whose payloads are encrypted (wire/codec.py): read with the key, a clear
one-line error without it."""

from __future__ import annotations

import argparse
import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from records.history import (
    HistoryError,
    decode_history,
    encryption_keys,
    history_from_json,
    load_history_file,
    parse_history,
    readable,
)
from records.replay import replay_paths
from records.report import build_report
from records.report_render import render_markdown
from tests.support.histories import HISTORIES, failed_replication
from tests.support.history_cli import amsm
from wire.codec import AesGcmCodec

KEY = os.urandom(32)


def codec(kid: str = "k1") -> AesGcmCodec:
    return AesGcmCodec({kid: KEY}, kid)


async def encrypt(history: WorkflowHistory, c: AesGcmCodec) -> WorkflowHistory:
    """As the worker writes them with --codec-key-file: every payload but the search
    attributes (the server reads those), failure messages in encoded attributes."""

    async def visit(msg: Message) -> None:
        name = msg.DESCRIPTOR.full_name
        if name == "temporal.api.common.v1.SearchAttributes":
            return
        if name == "temporal.api.common.v1.Payloads":
            enc = await c.encode(list(msg.payloads))  # type: ignore[attr-defined]
            del msg.payloads[:]  # type: ignore[attr-defined]
            msg.payloads.extend(enc)  # type: ignore[attr-defined]
            return
        if name == "temporal.api.failure.v1.Failure" and msg.message:  # type: ignore[attr-defined]
            attrs = {"message": msg.message, "stack_trace": ""}  # type: ignore[attr-defined]
            [plain] = pydantic_data_converter.payload_converter.to_payloads([attrs])
            msg.encoded_attributes.CopyFrom((await c.encode([plain]))[0])  # type: ignore[attr-defined]
            msg.message = "Encoded failure"  # type: ignore[attr-defined]
        for field, value in msg.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                for k in list(value.keys()):
                    if isinstance(value[k], Payload):
                        value[k].CopyFrom((await c.encode([value[k]]))[0])
            elif field.is_repeated:
                for v in value:
                    await visit(v)
            else:
                await visit(value)

    events = list(history.events)
    for e in events:
        await visit(e)
    return WorkflowHistory(history.workflow_id, events)


async def test_an_encrypted_history_reads_the_same_with_the_key(tmp_path: Path) -> None:
    plain = load_history_file(HISTORIES / "switch-with-client-decisions.json")
    secret = await encrypt(
        load_history_file(HISTORIES / "switch-with-client-decisions.json"), codec()
    )
    assert encryption_keys(secret) == {"k1"} and encryption_keys(plain) == set()
    assert b"broken PSU" not in secret.to_json().encode()
    back = await decode_history(secret, codec())
    want = build_report(parse_history(plain, "x")).model_dump(mode="json")
    got = build_report(parse_history(back, "x")).model_dump(mode="json")
    assert got == want

    path = tmp_path / "secret.json"
    path.write_text(secret.to_json())
    with pytest.raises(HistoryError) as e:
        await readable(load_history_file(path), None, str(path))
    assert str(e.value) == (
        f"{path}: the payloads are encrypted (key id k1); pass --codec-key-file FILE or set "
        "AMSM_CODEC_KEY_FILE"
    )
    with pytest.raises(HistoryError) as e:
        await readable(load_history_file(path), codec("k2"), str(path))
    assert "cannot decrypt the payloads (payload encrypted with key id 'k1'" in str(e.value)

    # The CLI: the key from --codec-key-file (as the worker has it).
    keys = tmp_path / "keys"
    keys.write_text(f"k1:{base64.b64encode(KEY).decode()}\n")
    rc, out = await amsm("report", str(path))
    assert rc == 2 and out.startswith(f"amsm: {path}: the payloads are encrypted (key id k1)")
    rc, out = await amsm("--codec-key-file", str(keys), "report", str(path), "--json")
    assert rc == 0 and json.loads(out)["decisions"][0]["reason"] == "broken PSU"
    # replay decodes with the worker's data converter (pydantic + the codec)
    rc, out = await amsm("--codec-key-file", str(keys), "replay", str(path))
    assert (rc, out.strip()) == (0, f"{path}: ok (switch, 169 events)")
    rc, out = await amsm("replay", str(path))
    assert rc == 1 and out.startswith(f"{path}: the payloads are encrypted (key id k1)")
    rc, out = await amsm("--codec-key-file", str(tmp_path / "nokeys"), "replay", str(path))
    assert rc == 2 and out.startswith(f"amsm: {tmp_path / 'nokeys'}: cannot read the key file")


async def test_encrypted_failure_messages_are_restored() -> None:
    events: list[dict[str, Any]] = failed_replication()
    history = history_from_json({"events": events}, "failed")
    secret = await encrypt(history, codec())
    assert "replication failed" not in secret.to_json()
    run = parse_history(await decode_history(secret, codec()), "failed")
    call = next(a for a in run.activities if a.type == "dsm_start_replication")
    assert call.error == "dsm-y: replication failed; last counts {'dsm-y': 120, 'dsm-x': 0}"
    assert "dsm-y: replication failed" in render_markdown(build_report(run))


async def test_replay_paths_with_the_codec(tmp_path: Path) -> None:
    secret = await encrypt(load_history_file(HISTORIES / "split-main-x.json"), codec())
    path = tmp_path / "split.json"
    path.write_text(secret.to_json())
    [o] = await replay_paths([path], codec=codec())
    assert o.ok, o.line


def test_parser_has_the_codec_option() -> None:
    from tests.support.history_cli import parser

    args = parser().parse_args(["--codec-key-file", "k", "replay", "x.json"])
    assert isinstance(args, argparse.Namespace) and args.codec_key_file == "k"
