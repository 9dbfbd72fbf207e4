"""The console signs for the person logged in (docs/operators/signed-acts.md#the-console):
`amsm console --console-key-file FILE` with the key the inventory names as console_key;
under identity.require_signed a start, a confirm and an abort posted by the operator's
login are taken and recorded "operator, through the console"; a console started with another key
is refused before it serves."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.cli import cli, cli_json
from tests.support.console import console_server, form_login, http, password
from tests.support.driving import drive, hands_for, step
from tests.support.lab import AMSM, Lab
from tests.support.signing import key_file
from tests.support.worker import running_worker


def post(url: str, cookie: str, path: str, form: dict[str, str]) -> tuple[int, str]:
    """A form posted as the logged-in operator, with the session's CSRF token."""
    status, _, page = http(url + "/", cookie)
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert status == 200 and m, (status, page[:300])
    status, _, body = http(url + path, cookie, {**form, "csrf": m.group(1)})
    return status, body


async def test_the_console_signs_for_the_operator_logged_in(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "tester")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    pair = lab.inventory.pair
    console_file, console_line = key_file(tmp_path, "console")
    other_file, _ = key_file(tmp_path, "other")
    lab.edit_inventory(
        operators=["operator", "tester"],
        console_key=console_line,
        identity={"require_signed": True},
    )
    # Another key than the inventory's console_key: refused before it serves.
    done = subprocess.run(
        [str(AMSM), "console", "--listen", "127.0.0.1:1", "--console-key-file", other_file],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert f"is not pair {pair}'s console_key ({console_line})" in done.stderr, done.stderr
    async with (
        running_worker(temporal, lab),
        console_server(lab, "--console-key-file", console_file) as server,
    ):
        # An unsigned start (the CLI without a key) is refused under require_signed.
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y")
        assert rc == 1 and "unsigned: this pair takes only signed acts" in out, out
        status, cookie, _ = await asyncio.to_thread(
            form_login, server.url, "operator", password(lab, "operator")
        )
        assert status == 303, status
        status, body = await asyncio.to_thread(
            post, server.url, cookie, f"/pairs/{pair}/start", {"kind": "switch", "side": "Y"}
        )
        assert status in (200, 303), (status, body)
        through = "operator, through the console (proven by the console's key)"
        shown = await cli_json(temporal, lab, "show", "current")
        run = shown["run_id"]
        assert (shown["initiator"], shown["initiator_proof"]) == ("operator", through), shown
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "stop-insync")["status"] == "awaiting-confirmation",
        )
        hands_for(lab, "stop-insync", "Y")
        status, body = await asyncio.to_thread(
            post, server.url, cookie, f"/pairs/{pair}/run/confirm", {"step": "stop-insync"}
        )
        assert status in (200, 303), (status, body)
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "stop-allsync")["status"] == "awaiting-confirmation",
        )
        assert step(shown, "stop-insync")["operator"] == "operator"
        assert step(shown, "stop-insync")["proof"] == through
        assert shown["rejected"] == []
        # The console's own run page says it too.
        status, _, page = await asyncio.to_thread(http, f"{server.url}/pairs/{pair}/run", cookie)
        assert status == 200, status
        said = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert f"started by operator ({through})" in said, said
        assert f"by operator ({through})" in said
        rc, text = await cli(temporal, lab, "show", run)
        assert f"by operator ({through})" in text, text
        status, body = await asyncio.to_thread(
            post,
            server.url,
            cookie,
            f"/pairs/{pair}/run/decide",
            {"action": "abort", "reason": "over"},
        )
        assert status in (200, 303), (status, body)
        shown = await cli_json(temporal, lab, "show", run)
        assert [d["proof"] for d in shown["decisions"]] == [through], shown["decisions"]


async def test_the_console_marks_an_unsigned_act_unproven(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A pair with keys that still takes unsigned acts (no require_signed): a start from
    the CLI without a key is taken, and the console's run page says it is unproven, as
    `amsm show` does."""
    monkeypatch.setenv("AMSM_OPERATOR", "tester")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    pair = lab.inventory.pair
    console_file, console_line = key_file(tmp_path, "console")
    lab.edit_inventory(operators=["operator", "tester"], console_key=console_line)
    async with (
        running_worker(temporal, lab),
        console_server(lab, "--console-key-file", console_file) as server,
    ):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown = await cli_json(temporal, lab, "show", run)
        assert (shown["initiator"], shown["initiator_proof"]) == ("tester", "unproven"), shown
        status, cookie, _ = await asyncio.to_thread(
            form_login, server.url, "operator", password(lab, "operator")
        )
        assert status == 303, status
        status, _, page = await asyncio.to_thread(http, f"{server.url}/pairs/{pair}/run", cookie)
        assert status == 200, status
        said = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "started by tester (unproven)" in said, said
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over")
        assert rc == 0, out
