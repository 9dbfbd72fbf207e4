"""Two people for what cannot be undone (docs/operators/two-person.md) on the dev server
with the lab, from the CLI: a restore's approve-overwrite under `approvals:
{approve-overwrite: {required: 2, not_initiator: true}}` refuses the initiator, a viewer
and the same person twice; an approval lapses when the gate reads other asset counts;
two distinct operators with keys open it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from playwright.async_api import expect
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from console.accounts import write_accounts
from inventory import intent
from lab.init import CONSOLE_ACCOUNTS
from lab.media import ingest
from tests.support.blackout import on_air_now
from tests.support.cli import cli, cli_json
from tests.support.console import chromium, console_server, logged_in, password, typed_for
from tests.support.driving import drive, step
from tests.support.lab import Lab
from tests.support.notify import http_sink, write_config
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workers.worker import start_watch
from workflows.registry import WORKFLOWS

GATE = "approve-overwrite"
RULE = "no-switch-in-blackout"


def _new_asset(lab: Lab, side: str, name: str) -> None:
    """A new asset in the lab DSM of `side` ("x" or "y"): its count grows by one."""
    db = sqlite3.connect(lab.dir / f"dsm-{side}.db", isolation_level=None)
    try:
        db.execute("INSERT INTO assets (name, created) VALUES (?, '2025-01-01T00:00:00Z')", (name,))
    finally:
        db.close()


def _key_file(tmp_path: Path, name: str) -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / f"{name}.key"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return str(path), intent.public_line(key.public_key())


def _keys(tmp_path: Path, *names: str) -> tuple[dict[str, str], dict[str, str]]:
    """A key for each of `names`: their private key files and public key lines."""
    files, lines = {}, {}
    for name in names:
        files[name], lines[name] = _key_file(tmp_path, name)
    return files, lines


async def _signed_lab(
    lab_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    approvals: dict[str, dict[str, Any]],
    **inventory: Any,
) -> tuple[Lab, dict[str, str]]:
    """A lab of one editor that takes only signed acts, its operators ann, bob and cat
    with keys (ann reads and starts), under `approvals`; the lab and their key files."""
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    files, lines = _keys(tmp_path, "ann", "bob", "cat")
    lab.edit_inventory(
        operators=[{"name": n, "key": lines[n]} for n in ("ann", "bob", "cat")],
        identity={"require_signed": True},
        approvals=approvals,
        **inventory,
    )
    return lab, files


async def test_two_distinct_proven_operators_open_the_overwrite_gate(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab, files = await _signed_lab(
        lab_factory, tmp_path, monkeypatch, {GATE: {"required": 2, "not_initiator": True}},
        viewers=["vic"],
    )  # fmt: skip
    async with running_worker(temporal, lab):

        def signing(run: str):  # type: ignore[no-untyped-def]
            # drive() has done the lab's hands for the step; ann signs (the initiator).
            async def signal(verb: str, step_id: str) -> None:
                rc, out = await cli(temporal, lab, verb, run, step_id, "--key", files["ann"])
                assert rc == 0, out

            return signal

        run = (
            await cli_json(temporal, lab, "start", "split", "--main", "X", "--key", files["ann"])
        )["run_id"]
        final = await drive(temporal, lab, run, "X", signal=signing(run), stop_allsync_on="X")
        assert final["state"] == "completed", final

        run = (
            await cli_json(temporal, lab, "start", "restore", "--main", "X", "--key", files["ann"])
        )["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "X",
            signal=signing(run),
            until=lambda s: step(s, GATE)["status"] == "awaiting-approval",
        )
        assert step(shown, GATE)["required"] == 2

        async def approve(who: str) -> tuple[int, str]:
            return await cli(temporal, lab, "approve", run, GATE, "--key", files[who])

        rc, out = await approve("ann")  # the initiator
        assert rc == 1 and f"ann started this run: {GATE} needs 2 approvals from other" in out
        rc, out = await cli(temporal, lab, "approve", run, GATE, "--operator", "vic")
        assert rc == 1 and "vic is not an operator of this pair" in out, out
        rc, out = await approve("bob")
        assert rc == 0 and "\n1 of 2 approvals: bob at " in out, out
        rc, out = await approve("bob")  # the same person twice
        assert rc == 1 and f"bob has approved {GATE} already" in out, out
        shown = await cli_json(temporal, lab, "show", run)
        assert step(shown, GATE)["status"] == "awaiting-approval"
        assert [r["operator"] for r in shown["rejected"]] == ["ann", "vic", "bob"]
        rc, text = await cli(temporal, lab, "show", run)
        assert "1 of 2 approvals: bob at " in text, text

        # The DSM to be overwritten (Y) gains an asset: cat's approval meets other counts
        # when the gate reads them again, and bob's and cat's both lapse.
        y = sqlite3.connect(lab.dir / "dsm-y.db", isolation_level=None)
        try:
            y.execute("INSERT INTO assets (name, created) VALUES ('late', '2025-01-01T00:00:00Z')")
        finally:
            y.close()
        rc, out = await approve("cat")
        assert rc == 1 and "\n0 of 2 approvals" in out, out
        assert "bob's approval at " in out and "lapsed: the gate read the devices again" in out
        shown = await cli_json(temporal, lab, "show", run)
        gate = step(shown, GATE)
        assert gate["status"] == "awaiting-approval"
        assert [(a["operator"], a["lapsed"] is not None) for a in gate["approvals"]] == [
            ("bob", True),
            ("cat", True),
        ]

        # Both approve again what the gate shows now: it opens, and the run goes on.
        rc, out = await approve("bob")
        assert rc == 0 and "1 of 2 approvals: bob at " in out, out
        rc, out = await approve("cat")
        assert rc == 0 and "2 of 2 approvals: bob at " in out and ", cat at " in out, out
        final = await drive(temporal, lab, run, "X", signal=signing(run))
        assert final["state"] == "completed", final
        gate = step(final, GATE)
        assert gate["operator"] == "bob and cat"
        assert gate["proof"] == "proven by bob's key; proven by cat's key"
        history = await temporal.get_workflow_handle(
            lab.inventory.workflow_id, run_id=run
        ).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        assert_no_secrets(lab, history)
        record_history(history, "restore-two-person-overwritten.json")


async def test_a_switchs_overwrite_gate_shows_the_counts_its_approvals_are_bound_to(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A switch's approve-overwrite reads both DSMs' asset counts as it starts waiting
    (patch overwrite-gate-shows-counts): the count of X, which it overwrites, is its item,
    each signed approval is bound to it, and an approval made on another count lapses when
    the gate reads it again; new material on Y, the main, lapses nothing."""
    lab, files = await _signed_lab(
        lab_factory, tmp_path, monkeypatch, {GATE: {"required": 2, "not_initiator": True}}
    )
    async with running_worker(temporal, lab):
        run = (
            await cli_json(temporal, lab, "start", "switch", "--to", "Y", "--key", files["ann"])
        )["run_id"]

        async def signal(verb: str, step_id: str) -> None:
            rc, out = await cli(temporal, lab, verb, run, step_id, "--key", files["ann"])
            assert rc == 0, out

        shown = await drive(
            temporal, lab, run, "Y", signal=signal,
            until=lambda s: step(s, GATE)["status"] == "awaiting-approval",
        )  # fmt: skip
        gate = step(shown, GATE)
        x_host = lab.inventory.sides["X"].dsm.host
        assert [i.rsplit(" ", 1)[0] for i in gate["items"]] == [x_host], gate  # X's only
        assert gate["message"].startswith("asset counts now: "), gate
        assert lab.inventory.sides["Y"].dsm.host in gate["message"], gate

        async def approve(who: str) -> tuple[int, str]:
            return await cli(temporal, lab, "approve", run, GATE, "--key", files[who])

        rc, out = await approve("bob")
        assert rc == 0 and "\n1 of 2 approvals: bob at " in out, out
        # X's DSM, which the switch overwrites from Y, gains an asset: bob's approval
        # was of other counts and lapses when cat's makes the gate read them again.
        _new_asset(lab, "x", "late")
        rc, out = await approve("cat")
        assert rc == 1 and "\n0 of 2 approvals" in out, out
        assert "bob's approval at " in out and "lapsed: the gate read the devices again" in out
        rc, out = await approve("bob")
        assert rc == 0 and "1 of 2 approvals: bob at " in out, out
        # Y, the main now, takes new material: what the approvals give up (X's) is the
        # same, and bob's approval still counts with cat's.
        _new_asset(lab, "y", "ingest-on-y")
        rc, out = await approve("cat")
        assert rc == 0 and "2 of 2 approvals: bob at " in out, out
        gate = step(await cli_json(temporal, lab, "show", run), GATE)
        assert [(a["operator"], a["lapsed"] is not None) for a in gate["approvals"]] == [
            ("bob", True), ("cat", True), ("bob", False), ("cat", False),
        ]  # fmt: skip
        final = await drive(temporal, lab, run, "Y", signal=signal)
        assert final["state"] == "completed", final
        history = await temporal.get_workflow_handle(
            lab.inventory.workflow_id, run_id=run
        ).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )
        record_history(history, "switch-overwrite-counts.json")


async def test_a_break_glass_override_waits_for_two_operators(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        await _break_glass(temporal, lab_factory, tmp_path, monkeypatch, stack)


async def _break_glass(
    temporal: Client,
    lab_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack: ExitStack,
) -> None:  # type: ignore[no-untyped-def]
    """A switch started on air with the override of no-switch-in-blackout, under
    `approvals: {break-glass: {required: 2}}`: the run waits at the gate break-glass,
    before its first step, for two operators, and once one has approved the `waiting`
    audience is told one more is needed (a control's: test_control_approvals.py)."""
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    files, lines = _keys(tmp_path, "ann", "bob")
    on_air_now(lab)
    hook = stack.enter_context(http_sink())
    write_config(lab.dir / "secrets" / "notify.yaml", {hook.url("waiting"): "waiting"})
    lab.edit_inventory(
        notify={"config": "secrets/notify.yaml"},
        operators=[{"name": n, "key": lines[n]} for n in ("ann", "bob")],
        identity={"require_signed": True},
        approvals={"break-glass": {"required": 2}},
    )
    async with running_worker(temporal, lab):
        started = await cli_json(
            temporal, lab, "start", "switch", "--to", "Y", "--override", RULE,
            "--override-reason", "X's DSM is failing; the newsroom agreed", "--key", files["ann"],
        )  # fmt: skip
        run = started["run_id"]
        shown = await _waiting(temporal, lab, run, "break-glass")
        gate = shown["steps"][0]
        assert (gate["id"], gate["kind"], gate["required"]) == ("break-glass", "gate", 2)
        assert gate["items"] == [f"{RULE}: X's DSM is failing; the newsroom agreed (by ann)"]
        assert step(shown, "stop-replication")["status"] == "pending"  # nothing acted
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["ann"])
        assert rc == 0 and "1 of 2 approvals: ann at " in out, out
        told = f"amsm {lab.inventory.pair}: switch step break-glass: one more approval is needed"

        async def one_more() -> bool:
            return told in hook.titles("waiting")

        await wait_for(one_more, "the waiting audience told one more approval is needed")
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["ann"])
        assert rc == 1 and "ann has approved break-glass already" in out, out
        shown = await cli_json(temporal, lab, "show", run)
        assert step(shown, "stop-replication")["status"] == "pending"
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["bob"])
        assert rc == 0 and "2 of 2 approvals: ann at " in out, out
        shown = await _waiting(temporal, lab, run, "stop-insync", "awaiting-confirmation")
        assert step(shown, "break-glass")["operator"] == "ann and bob"
        assert step(shown, "stop-replication")["status"] == "done"
        rc, out = await cli(
            temporal, lab, "abort", run, "--reason", "test over", "--key", files["ann"]
        )
        assert rc == 0, out


async def _waiting(
    temporal: Client, lab: Lab, run: str, step_id: str, status: str = "awaiting-approval"
) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run)
        if any(s["id"] == step_id and s["status"] == status for s in shown["steps"]):
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"{step_id} never {status}: {shown}")


async def test_the_purge_gate_finds_the_orphans_again_after_each_approval(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """approve-purge under `approvals: {approve-purge: {required: 2}}`: each approval is
    bound to the orphan list; a clip recorded on X between two approvals makes the gate
    find three orphans instead of two, both approvals lapse, and the purge deletes exactly
    the list the two people approved at last."""
    lab, files = await _signed_lab(
        lab_factory, tmp_path, monkeypatch, {"approve-purge": {"required": 2}}
    )
    async with running_worker(temporal, lab):

        def signing(run: str):  # type: ignore[no-untyped-def]
            async def signal(verb: str, step_id: str) -> None:
                rc, out = await cli(temporal, lab, verb, run, step_id, "--key", files["ann"])
                assert rc == 0, out

            return signal

        run = (
            await cli_json(temporal, lab, "start", "split", "--main", "X", "--key", files["ann"])
        )["run_id"]
        final = await drive(temporal, lab, run, "X", signal=signing(run), stop_allsync_on="X")
        assert final["state"] == "completed", final
        for clip in ("late-one", "late-two"):  # recorded on X while split
            ingest(lab.dir, "X", clip, "News")

        run = (
            await cli_json(temporal, lab, "start", "restore", "--main", "Y", "--key", files["ann"])
        )["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            signal=signing(run),
            until=lambda s: step(s, "approve-purge")["status"] == "awaiting-approval",
        )
        assert len(step(shown, "approve-purge")["items"]) == 2

        async def approve(who: str) -> tuple[int, str]:
            return await cli(temporal, lab, "approve", run, "approve-purge", "--key", files[who])

        rc, out = await approve("bob")
        assert rc == 0 and "\n1 of 2 approvals: bob at " in out, out
        ingest(lab.dir, "X", "late-three", "News")
        rc, out = await approve("cat")
        assert rc == 1 and "\n0 of 2 approvals" in out and "3 clip(s) will be deleted" in out, out
        shown = await cli_json(temporal, lab, "show", run)
        gate = step(shown, "approve-purge")
        assert len(gate["items"]) == 3 and gate["status"] == "awaiting-approval"
        rc, out = await approve("cat")
        assert rc == 0 and "1 of 2 approvals: cat at " in out, out
        rc, out = await approve("bob")
        assert rc == 0 and "2 of 2 approvals: cat at " in out, out
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            signal=signing(run),
            until=lambda s: step(s, "purge-orphans")["status"] == "done",
        )
        purge = step(shown, "purge-orphans")
        assert purge["items"] == gate["items"], purge
        assert purge["message"].startswith("3 orphan clip(s) deleted"), purge["message"]
        rc, out = await cli(
            temporal, lab, "abort", run, "--reason", "test over", "--key", files["ann"]
        )
        assert rc == 0, out


async def test_two_operators_approve_the_purge_from_their_own_console_logins(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """In the real browser, bob approves approve-purge from his own login: the operator's
    and the viewer's run pages show "1 of 2 approvals: bob at HH:MM"; cat approves from
    hers and the gate opens, each approval proven by the console's key for its person."""
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab: Lab = await lab_factory(editors=1, ingest=0)
    files, lines = _keys(tmp_path, "ann", "console")
    # bob and cat: console accounts of their own (the lab makes operator and viewer).
    accounts = {n: (password(lab, n), n) for n in ("operator", "viewer")}
    for name in ("bob", "cat"):
        (lab.dir / "secrets" / f"console-{name}").write_text(f"{name}-pass-{name}-long\n")
        accounts[name] = (password(lab, name), "operator")
    write_accounts(lab.dir / CONSOLE_ACCOUNTS, accounts)
    lab.edit_inventory(
        operators=[{"name": "ann", "key": lines["ann"]}, "bob", "cat", "operator"],
        viewers=["viewer"],
        console_key=lines["console"],
        identity={"require_signed": True},
        approvals={"approve-purge": {"required": 2}},
    )
    async with (
        running_worker(temporal, lab),
        console_server(lab, "--console-key-file", files["console"]) as server,
        chromium() as browser,
    ):
        await start_watch(temporal, lab.inventory)

        async def signal(verb: str, step_id: str) -> None:
            rc, out = await cli(temporal, lab, verb, run, step_id, "--key", files["ann"])
            assert rc == 0, out

        run = (
            await cli_json(temporal, lab, "start", "split", "--main", "X", "--key", files["ann"])
        )["run_id"]
        final = await drive(temporal, lab, run, "X", signal=signal, stop_allsync_on="X")
        assert final["state"] == "completed", final
        ingest(lab.dir, "X", "late-one", "News")
        run = (
            await cli_json(temporal, lab, "start", "restore", "--main", "Y", "--key", files["ann"])
        )["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            signal=signal,
            until=lambda s: step(s, "approve-purge")["status"] == "awaiting-approval",
        )
        gate_row = "#step-approve-purge[data-status='awaiting-approval']"

        async def approve_as(account: str) -> None:
            page = await logged_in(browser, server, lab, account)
            await page.goto(f"{server.url}/pairs/{lab.inventory.pair}/run")
            row = page.locator(gate_row)
            box = row.get_by_label("Type to approve")
            await box.fill(typed_for(str(await box.get_attribute("placeholder"))))
            await row.get_by_role("button", name="Approve").click()
            await page.wait_for_load_state()

        await approve_as("bob")
        shown = await cli_json(temporal, lab, "show", run)
        counted = step(shown, "approve-purge")
        assert counted["status"] == "awaiting-approval", counted
        at = [a for a in counted["approvals"] if a["operator"] == "bob"]
        assert len(at) == 1, counted
        for account in ("operator", "viewer"):
            page = await logged_in(browser, server, lab, account)
            await page.goto(f"{server.url}/pairs/{lab.inventory.pair}/run")
            await expect(page.locator(gate_row).locator(".gate-approvals")).to_contain_text(
                "1 of 2 approvals: bob at ", timeout=30_000
            )
        await approve_as("cat")
        final = await drive(temporal, lab, run, "Y", signal=signal, timeout=150)
        assert final["state"] == "completed", final
        opened = step(final, "approve-purge")
        assert opened["status"] == "done", opened
        assert opened["operator"] == "bob and cat", opened
        for who in ("bob", "cat"):
            assert f"{who}, through the console (proven by the console's key)" in opened["proof"]
        assert [a["operator"] for a in opened["approvals"]] == ["bob", "cat"], opened
