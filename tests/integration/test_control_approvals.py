"""A control's break-glass override under `approvals: {break-glass: {required: 2,
not_initiator: true}}` (docs/operators/two-person.md, "A control's override"), on the
dev server with the lab, from the CLI: the control waits for two other operators before
it acts, its approvals are a run approved and aborted like any other, a second control is
told how to approve or give up the one that waits, and an approvals run started by hand
is refused; two operators approve it from their own console logins, in a real browser."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from temporalio.client import Client, WorkflowFailureError

from console.accounts import Role, write_accounts
from inventory.models import control_approval_workflow_id, control_workflow_id
from lab.init import CONSOLE_ACCOUNTS
from lab.state import LabState
from tests.support.blackout import on_air_now
from tests.support.cli import cli, cli_json
from tests.support.console import chromium, console_server, logged_in, password
from tests.support.lab import Lab
from tests.support.resets import child_completed, reset_after
from tests.support.secrets import assert_no_secrets, record_history
from tests.support.signing import key_file
from tests.support.waiting import wait_for
from tests.support.worker import running_worker
from workflows.control import ControlResult
from workflows.control_approval import WORKFLOW, ControlApprovalInput
from workflows.limits import CONTINUE_SIGNALS_EVERY
from workflows.overrides import Override

RULE = "no-switch-in-blackout"


async def _on_air_lab(
    lab_factory: Any, tmp_path: Path, **inventory: Any
) -> tuple[Lab, dict[str, str]]:
    """A lab whose pair is on air now (a window begun 5 s ago, for 10 minutes), takes
    only signed acts, and asks two operators other than the initiator for a break-glass
    override; ann's, bob's and cat's key files (and the console's). `inventory`: what
    else its inventory says (its operators, by default ann, bob and cat with keys)."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    files, lines = {}, {}
    for name in ("ann", "bob", "cat", "console"):
        files[name], lines[name] = key_file(tmp_path, name)
    on_air_now(lab)
    inventory.setdefault("operators", [{"name": n, "key": lines[n]} for n in ("ann", "bob", "cat")])
    if inventory.pop("console_key", False):
        inventory["console_key"] = lines["console"]
    lab.edit_inventory(
        **inventory,
        identity={"require_signed": True},
        approvals={"break-glass": {"required": 2, "not_initiator": True}},
    )
    return lab, files


def _restarts(lab: Lab) -> list[str]:
    return [h for _, h, cmd, _ in LabState(lab.dir).journal() if cmd == "Restart-Computer"]


async def _stormed_until_continued(temporal: Client, lab: Lab, run: str) -> None:
    """Junk signals to the approvals run RUN, as anyone who reaches Temporal could send,
    until it has continued as new (CONTINUE_SIGNALS_EVERY seconds old at least)."""
    approvals = temporal.get_workflow_handle(control_approval_workflow_id(lab.inventory.pair))
    for n in range(6):
        await approvals.signal("approve", {"step": "nope", "operator": f"storm{n}"})
    deadline = asyncio.get_running_loop().time() + CONTINUE_SIGNALS_EVERY + 20
    shown = await cli_json(temporal, lab, "show", run)
    while shown["continued"] < 1 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
        shown = await cli_json(temporal, lab, "show", run)
    assert shown["continued"] >= 1 and shown["state"] == "awaiting-operator", shown


async def _reboot(temporal: Client, lab: Lab, key: str) -> dict[str, Any]:
    return await cli_json(
        temporal, lab, "reboot", "ED-01", "--override", RULE, "--reason", "hung",
        "--key", key,
    )  # fmt: skip


async def test_a_controls_override_waits_for_two_other_operators_before_it_acts(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab, files = await _on_air_lab(lab_factory, tmp_path)
    pair = lab.inventory.pair
    async with running_worker(temporal, lab):
        done = await _reboot(temporal, lab, files["ann"])
        waiting = done["waiting"]
        run = waiting["run_id"]
        assert (waiting["step"], waiting["required"]) == ("break-glass", 2), done
        assert done["message"].startswith("reboot waits for 2 operators to approve"), done
        assert f"approve: amsm approve {run} break-glass" in done["details"], done
        shown = await cli_json(temporal, lab, "show", run)
        [gate] = shown["steps"]
        assert (gate["id"], gate["status"], gate["required"]) == (
            "break-glass", "awaiting-approval", 2,
        ), gate  # fmt: skip
        assert gate["items"] == ["control: reboot", "host: ED-01", f"{RULE}: hung (by ann)"], gate
        assert shown["initiator_proof"] == "proven by ann's key", shown

        # The pair's one control is held meanwhile: a second one is told why and how.
        rc, out = await cli(temporal, lab, "dsm", "set-main", "X", "--key", files["bob"])
        assert rc == 1 and "another control is running" in out, out
        assert f"waits for the approvals of its break-glass override: amsm approve {run}" in out
        # --end-squatter never ends the pair's own control.
        control = await temporal.get_workflow_handle(control_workflow_id(pair)).describe()
        rc, out = await cli(
            temporal, lab, "dsm", "set-main", "X", "--key", files["bob"],
            "--end-squatter", control.run_id,
        )  # fmt: skip
        assert rc == 1 and "ends only a workflow amsm did not start" in out, out

        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["ann"])
        assert rc == 1 and "ann started this run" in out, out
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["bob"])
        assert rc == 0 and "1 of 2 approvals: bob at " in out, out
        await asyncio.sleep(1)
        assert _restarts(lab) == [], "the control acted before its second approval"
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["cat"])
        assert rc == 0 and "2 of 2 approvals: bob at " in out, out

        control = temporal.get_workflow_handle(
            control_workflow_id(pair),
            run_id=done["run_id"],
            result_type=ControlResult,
        )
        result = await control.result()
        assert result.approved == (
            "approved by bob and cat (proven by bob's key; proven by cat's key)"
        ), result
        [rec] = result.overrides
        assert (rec.rule, rec.used, rec.operator) == (RULE, True, "ann"), rec
        assert _restarts(lab) == ["ED-01"]
        shown = await cli_json(temporal, lab, "show", run)
        assert shown["state"] == "completed", shown
        for handle, name in (
            (control, "control-break-glass-approved.json"),
            (temporal.get_workflow_handle(control_approval_workflow_id(pair), run_id=run),
             "control-approval.json"),
        ):  # fmt: skip
            history = await handle.fetch_history()
            assert_no_secrets(lab, history)
            record_history(history, name)


async def test_a_controls_override_given_up_or_started_by_hand_does_nothing(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab, files = await _on_air_lab(lab_factory, tmp_path)
    pair = lab.inventory.pair
    async with running_worker(temporal, lab):
        done = await _reboot(temporal, lab, files["ann"])
        run = done["waiting"]["run_id"]
        rc, out = await cli(
            temporal, lab, "abort", run, "--reason", "not tonight", "--key", files["bob"]
        )
        assert rc == 0, out
        control = temporal.get_workflow_handle(control_workflow_id(pair), run_id=done["run_id"])
        with pytest.raises(WorkflowFailureError) as e:
            await control.result()
        why = str(e.value.cause)
        assert "reboot refused: its break-glass override was not approved" in why, why
        assert f"its approvals run {run} was aborted); it did nothing" in why, why
        assert _restarts(lab) == []

        # A cancel of the control while it waits gives its override up (the approvals run
        # takes it as an abort), even once a storm of signals made the approvals run
        # continue as new; nobody's approval after that makes it act.
        done = await _reboot(temporal, lab, files["ann"])
        run = done["waiting"]["run_id"]
        await _stormed_until_continued(temporal, lab, run)
        control = temporal.get_workflow_handle(control_workflow_id(pair), run_id=done["run_id"])
        await control.cancel()
        with pytest.raises(WorkflowFailureError) as e:
            await control.result()
        why = str(e.value.cause)
        assert "(the control was cancelled while it waited); it did nothing" in why, why
        rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files["bob"])
        assert rc == 1 and "aborted" in out, out
        assert _restarts(lab) == []

        # Started by hand under the approvals id, with no control as its parent.
        inp = ControlApprovalInput(
            pair=pair,
            control="reboot",
            operator="ann",
            what="reboot ED-01",
            overrides=[Override(rule=RULE, reason="mine")],
            proof="proven by ann's key",
        )
        stranger = await temporal.start_workflow(
            "control-approval",
            inp,
            id=control_approval_workflow_id(pair),
            task_queue=lab.inventory.queue,
        )
        with pytest.raises(WorkflowFailureError) as e:
            await stranger.result()
        assert "only the pair's control" in str(e.value.cause) and "by hand" in str(
            e.value.cause
        ), e.value.cause
        assert _restarts(lab) == []


async def test_two_operators_approve_a_controls_override_from_their_console_logins(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The console's Force Reboot with the override answers that it waits; the pair's
    page shows the approvals run to every login, "1 of 2 approvals: bob at HH:MM" once bob
    approved from his, and no buttons to a viewer; cat approves from hers and the control
    acts, each approval proven by the console's key for its person. A viewer's page open
    all along shows the box come, count and go in its live part, never reloaded."""
    monkeypatch.setenv("AMSM_OPERATOR", "viewer")  # who reads (runs)
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab, files = await _on_air_lab(
        lab_factory, tmp_path, operators=["operator", "bob", "cat"], viewers=["viewer"],
        console_key=True,
    )  # fmt: skip
    accounts: dict[str, tuple[str, Role]] = {
        "operator": (password(lab, "operator"), "operator"),
        "viewer": (password(lab, "viewer"), "viewer"),
    }
    for name in ("bob", "cat"):
        (lab.dir / "secrets" / f"console-{name}").write_text(f"{name}-pass-{name}-long\n")
        accounts[name] = (password(lab, name), "operator")
    write_accounts(lab.dir / CONSOLE_ACCOUNTS, accounts)
    pair = lab.inventory.pair
    async with (
        running_worker(temporal, lab),
        console_server(lab, "--console-key-file", files["console"]) as server,
        chromium() as browser,
    ):
        viewer = await logged_in(browser, server, lab, "viewer")
        await viewer.goto(f"{server.url}/pairs/{pair}")
        await expect(viewer.locator("#device-ED-01")).to_be_visible()
        await viewer.evaluate("window.notReloaded = true")
        seen = viewer.locator("#control-approvals")
        assert await seen.count() == 0
        page = await logged_in(browser, server, lab, "operator")
        await page.goto(f"{server.url}/pairs/{pair}")
        await page.get_by_text("Break-glass override (rule, reason)").click()
        await page.get_by_label(RULE).check()
        await page.get_by_label("Override reason").fill("hung")
        await page.locator("#device-ED-01").get_by_role("button", name="Force Reboot").click()
        await expect(page.locator("p.flash").first).to_contain_text(
            "reboot waits for 2 operators to approve its break-glass override"
        )
        box = page.locator("#control-approvals")
        await expect(box).to_contain_text("Break-glass: reboot ED-01")
        await expect(box).to_contain_text(f"{RULE}: hung (by operator)")

        async def approve_as(account: str) -> None:
            page = await logged_in(browser, server, lab, account)
            await page.goto(f"{server.url}/pairs/{pair}")
            box = page.locator("#control-approvals")
            await box.get_by_label("approval note").fill(f"{account} agrees")
            await box.get_by_role("button", name="Approve").click()
            await expect(page.locator("p.flash").first).to_contain_text(
                f"as {account} (signed with the console's key)"
            )

        await expect(seen).to_contain_text("Break-glass: reboot ED-01")  # live, to the viewer
        await expect(seen.locator(".gate-approvals")).to_contain_text("0 of 2 approvals")
        await approve_as("bob")
        await expect(seen.locator(".gate-approvals")).to_contain_text("1 of 2 approvals: bob at ")
        assert await seen.get_by_role("button").count() == 0
        assert _restarts(lab) == []
        await approve_as("cat")
        await expect(seen).to_have_count(0)  # the approvals run ended: the box goes
        assert await viewer.evaluate("window.notReloaded") is True

        async def rebooted() -> bool:
            return _restarts(lab) == ["ED-01"]

        await wait_for(rebooted, "ED-01 restarted once both approved")
        [row] = [
            r for r in (await cli_json(temporal, lab, "runs", "--kind", "control"))["runs"]
            if r["initiator"] == "operator"
        ]  # fmt: skip
        control = temporal.get_workflow_handle(
            control_workflow_id(pair), run_id=row["run_id"], result_type=ControlResult
        )
        result = await control.result()
        by = "{}, through the console (proven by the console's key)"
        assert (
            result.approved == f"approved by bob and cat ({by.format('bob')}; {by.format('cat')})"
        )


async def test_a_reset_control_acts_on_nothing_and_a_continued_approvals_run_still_counts(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The approvals run continues as new after a storm of signals and still opens on two
    approvals (it keeps its parent); the control acts once. Reset to just after its
    approvals, as anyone who reaches Temporal could, the control acts on nothing: the
    worker refuses every act of a reset control run (workers/resets.py)."""
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab, files = await _on_air_lab(lab_factory, tmp_path)
    pair = lab.inventory.pair
    async with running_worker(temporal, lab):
        done = await _reboot(temporal, lab, files["ann"])
        run = done["waiting"]["run_id"]
        await _stormed_until_continued(temporal, lab, run)
        for who in ("bob", "cat"):
            rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files[who])
            assert rc == 0, out
        control = temporal.get_workflow_handle(
            control_workflow_id(pair), run_id=done["run_id"], result_type=ControlResult
        )
        assert (await control.result()).approved is not None
        assert _restarts(lab) == ["ED-01"]

        approved = await child_completed(temporal, control.id, done["run_id"], WORKFLOW)
        reset = await reset_after(
            temporal, control.id, done["run_id"], approved, "act again on the approvals given once"
        )
        again = temporal.get_workflow_handle(control.id, run_id=reset)
        with pytest.raises(WorkflowFailureError) as e:
            await again.result()
        why = str(e.value.cause)  # the reboot the worker refused, and why
        assert "reboot failed: refused: the amsm-" in why, why
        assert f"is a reset of run {done['run_id']}: it acts once" in why, why
        assert _restarts(lab) == ["ED-01"]


async def test_the_client_switches_a_reset_control_starts_act_on_nothing(
    temporal: Client, lab_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A clients-switch control approved and done, then reset to just after its
    approvals: the reset run starts a client switch of its own (a fresh run, not a
    reset), whose acts the worker refuses because the control that started it is a reset.
    ED-01 is restarted only by the first run's switch (twice)."""
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    monkeypatch.delenv("AMSM_KEY", raising=False)
    lab, files = await _on_air_lab(lab_factory, tmp_path)
    pair = lab.inventory.pair
    async with running_worker(temporal, lab):
        done = await cli_json(
            temporal, lab, "clients", "switch", "--to", "Y", "ED-01", "--override", RULE,
            "--reason", "hung", "--key", files["ann"],
        )  # fmt: skip
        run = done["waiting"]["run_id"]
        for who in ("bob", "cat"):
            rc, out = await cli(temporal, lab, "approve", run, "break-glass", "--key", files[who])
            assert rc == 0, out
        control = temporal.get_workflow_handle(control_workflow_id(pair), run_id=done["run_id"])
        await control.result()
        assert _restarts(lab) == ["ED-01", "ED-01"]
        approved = await child_completed(temporal, control.id, done["run_id"], WORKFLOW)
        reset = await reset_after(
            temporal, control.id, done["run_id"], approved,
            "switch the clients again on the approvals given once",
        )  # fmt: skip
        again = temporal.get_workflow_handle(control.id, run_id=reset)
        try:
            said = str(await again.result())
        except WorkflowFailureError as e:
            said = str(e.cause)
        assert f"is a reset of run {done['run_id']} (it started the " in said, said
        assert _restarts(lab) == ["ED-01", "ED-01"]
