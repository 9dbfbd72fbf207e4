"""The readiness watch on the lab: `amsm readiness on` runs the site check at once on its
schedule and `amsm status` shows its verdict; a fault and the next check turn it to not
ready (and `since` moves); a worker restart keeps it; `off` clears it; the worker's
metrics carry `amsm_readiness_problems`."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, ScheduleHandle, WorkflowFailureError

from inventory.models import readiness_schedule_id
from lab.faults import set_fault
from tests.support import secret_scan as scan
from tests.support.cli import cli, cli_json
from tests.support.lab import AMSM, Lab, free_port
from tests.support.secrets import assert_no_secrets_in_pair, lab_secrets, record_history
from workflows.readiness import ReadinessInput
from workflows.server import MAX_SIGNALS


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def start_worker(lab: Lab, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(AMSM), "worker", "--metrics", f"127.0.0.1:{port}"],
            env=lab.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


async def status_until(
    temporal: Client, lab: Lab, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """`amsm status --json` once `done` holds for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rc, out = await cli(temporal, lab, "status", "--json")
        data = json.loads(out.splitlines()[0]) if rc == 0 else {}
        if rc == 0 and done(data):
            return data
        assert loop.time() < deadline, (rc, out[-2000:])
        await asyncio.sleep(0.5)


CHECKED_GAUGE = "amsm_readiness_checked_timestamp_seconds"


def gauge(text: str, pair: str, name: str = "amsm_readiness_problems") -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and f'pair="{pair}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def gauge_until(port: int, pair: str, value: float, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        text = await asyncio.to_thread(scrape, port)
        if gauge(text, pair) == value:
            return
        assert loop.time() < deadline, [x for x in text.splitlines() if "readiness" in x]
        await asyncio.sleep(0.3)


async def test_readiness_watch_in_status_and_metrics(
    temporal: Client, lab_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    pair = lab.inventory.pair
    port, log = free_port(), tmp_path / "worker.log"
    worker = start_worker(lab, port, log)
    try:
        r = await _on_checks_at_once(temporal, lab, port)
        await _on_again_makes_the_schedule_anew(temporal, lab, r)
        schedule = temporal.get_schedule_handle(readiness_schedule_id(pair))

        b = await _a_fault_makes_it_not_ready(temporal, lab, port, schedule, r)
        await _no_secret_and_no_stranger(temporal, lab, schedule)

        # The verdict lives in the schedule, not in the worker: a new worker goes on
        # from it (still not ready: since stays at the check that turned it).
        stop_worker(worker)
        worker = start_worker(lab, port, log)
        await schedule.trigger()
        kept = await status_until(
            temporal, lab, lambda d: d["readiness"]["checked_at"] != b["checked_at"]
        )
        assert kept["readiness"]["ready"] is False and kept["readiness"]["since"] == b["since"]
        await gauge_until(port, pair, kept["readiness"]["problems"])

        await _paused_then_off(temporal, lab, schedule, b, kept)
    finally:
        stop_worker(worker)
        await cli(temporal, lab, "readiness", "off")


async def _on_checks_at_once(temporal: Client, lab: Lab, port: int) -> dict:
    """`on` with nothing on: the first check at once, its verdict in status and in the gauge.
    The readiness it reported."""
    pair = lab.inventory.pair
    off = await cli_json(temporal, lab, "readiness", "status")
    assert off["on"] is False and off["readiness"] is None

    rc, out = await cli(temporal, lab, "readiness", "on")
    assert rc == 0, out
    assert f"readiness watch of pair {pair} on: a check every 1 h, the first now" in out

    # The first check runs at once (not in an hour) and its verdict reaches status.
    first = await status_until(
        temporal, lab, lambda d: (d.get("readiness") or {}).get("checked_at") is not None
    )
    r = first["readiness"]
    shown = await cli_json(temporal, lab, "readiness", "status")
    assert r["ready"] is True, (shown["last"]["named"], shown["last"]["error"])
    assert r["problems"] == 0 and r["interval"] == 3600 and r["error"] is None
    assert r["since"] == r["checked_at"]
    for key in ("mode", "main", "dsm", "clients", "browse", "fence"):
        assert key in first  # every key of status --json stays
    rc, text = await cli(temporal, lab, "status")
    assert rc == 0
    hhmm = datetime.fromisoformat(r["checked_at"]).strftime("%H:%M")
    assert f"readiness: ready for a switch to Y (checked {hhmm})" in text, text
    await gauge_until(port, pair, 0)
    # When it checked, so that an alert can tell a count kept after `off` is old.
    checked = gauge(await asyncio.to_thread(scrape, port), pair, CHECKED_GAUGE)
    assert checked == int(datetime.fromisoformat(r["checked_at"]).timestamp()), checked
    return r


async def _on_again_makes_the_schedule_anew(temporal: Client, lab: Lab, r: dict) -> None:
    pair = lab.inventory.pair
    # A second `on` with another interval makes the schedule anew, checks at once
    # and carries the verdict on (still ready: since stays); a third leaves it alone.
    lab.retime(readiness_interval=7200)
    rc, out = await cli(temporal, lab, "readiness", "on")
    assert rc == 0, out
    assert "on: a check every 2 h, the first now (made anew: it was every 1 h" in out, out
    again = await status_until(
        temporal, lab, lambda d: d["readiness"]["checked_at"] not in (None, r["checked_at"])
    )
    assert again["readiness"]["interval"] == 7200 and again["readiness"]["ready"] is True
    assert again["readiness"]["since"] == r["since"]
    rc, out = await cli(temporal, lab, "readiness", "on")
    assert rc == 0, out
    assert out.startswith(f"readiness watch of pair {pair} was on: a check every 2 h\n"), out
    assert (await cli_json(temporal, lab, "status"))["readiness"] == again["readiness"]


async def _a_fault_makes_it_not_ready(
    temporal: Client, lab: Lab, port: int, schedule: ScheduleHandle, r: dict
) -> dict:
    """A fault, then a check: not ready, and since moves to that check. The readiness it
    reported."""
    pair = lab.inventory.pair
    set_fault(lab.dir, "ED-01", "unreachable")
    set_fault(lab.dir, "dsm-y", "unreachable")
    await schedule.trigger()
    bad = await status_until(temporal, lab, lambda d: d["readiness"]["ready"] is False)
    b = bad["readiness"]
    assert b["problems"] >= 2 and b["since"] == b["checked_at"] > r["since"]
    rc, text = await cli(temporal, lab, "status")
    since = datetime.fromisoformat(b["since"]).strftime("%H:%M")
    assert f"readiness: not ready: {b['problems']} problems, since {since}" in text, text
    await gauge_until(port, pair, b["problems"])
    shown = await cli_json(temporal, lab, "readiness", "status")
    named = shown["last"]["named"]
    assert any(n.startswith("ED-01: client-answers: Unreachable: ") for n in named), named
    assert any(n.startswith("dsm-y: dsm-answers: Unreachable: ") for n in named), named
    return b


async def _no_secret_and_no_stranger(temporal: Client, lab: Lab, schedule: ScheduleHandle) -> None:
    pair = lab.inventory.pair
    # No secret in the schedule, nor in any run of the pair (the checks and their
    # site checks among them).
    desc = await schedule.describe()
    assert not scan.leaked(lab_secrets(lab), list(scan.texts(desc.raw_description)))
    ticks = [a.action.workflow_id for a in desc.info.recent_actions]
    assert len(ticks) == 2 and all(t.startswith(f"amsm-{pair}-readiness-") for t in ticks)
    kinds = await assert_no_secrets_in_pair(temporal, lab)
    assert kinds["readiness"] == 3 and kinds["pair-check"] >= 3, kinds  # both schedules
    record_history(
        await temporal.get_workflow_handle(ticks[-1]).fetch_history(), "readiness-not-ready.json"
    )

    # A check started by anyone but the schedule counts for nothing (not the gauge).
    with pytest.raises(WorkflowFailureError) as refused:
        await temporal.execute_workflow(
            "readiness",
            ReadinessInput(pair=pair),
            id=f"mallory-{pair}",
            task_queue=lab.inventory.queue,
        )
    assert "runs only from its schedule" in str(refused.value.cause)


async def _paused_then_off(
    temporal: Client, lab: Lab, schedule: ScheduleHandle, b: dict, kept: dict
) -> None:
    pair = lab.inventory.pair
    # Paused from the Web UI (or `temporal schedule toggle`): status says so, `on`
    # resumes it (made anew, at once, since carried on).
    await schedule.pause(note="maintenance")
    rc, text = await cli(temporal, lab, "status")
    assert "PAUSED: no check runs (amsm readiness on resumes it)" in text, text
    rc, out = await cli(temporal, lab, "readiness", "on")
    assert rc == 0 and "(made anew: it was paused)" in out, out
    resumed = await status_until(
        temporal,
        lab,
        lambda d: d["readiness"]["checked_at"] not in (None, kept["readiness"]["checked_at"]),
    )
    assert resumed["readiness"]["paused"] is False
    assert resumed["readiness"]["since"] == b["since"]

    rc, out = await cli(temporal, lab, "readiness", "off")
    assert rc == 0 and f"readiness watch of pair {pair} off" in out, out
    gone = await cli_json(temporal, lab, "status")
    assert gone["readiness"] is None
    rc, text = await cli(temporal, lab, "status")
    assert "readiness: off" in text
    rc, out = await cli(temporal, lab, "readiness", "off")
    assert rc == 0 and "was off" in out


async def test_readiness_refuses_bad_input_and_strangers(
    temporal: Client, lab_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error exits 2
        await cli(temporal, lab, "readiness", "maybe")
    assert usage.value.code == 2
    lab.edit_inventory(operators=["ann"], viewers=["vic"])
    monkeypatch.setenv("AMSM_OPERATOR", "vic")
    rc, out = await cli(temporal, lab, "readiness", "on")
    assert rc == 1 and "vic is not an operator" in out, out
    off = await cli_json(temporal, lab, "readiness", "status")  # a viewer may read it
    assert off["readiness"] is None
    assert re.search(
        r"off \(amsm readiness on\)", (await cli(temporal, lab, "readiness", "status"))[1]
    )

    # `on` never changes a schedule in place (every change is a signal to it, and the
    # server takes MAX_SIGNALS in one run): more changes of the interval than that go
    # through (no worker runs here: the checks wait, which changes nothing of this).
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    try:
        for n in range(MAX_SIGNALS + 2):
            lab.retime(readiness_interval=3600 + 60 * n)
            rc, out = await cli(temporal, lab, "readiness", "on")
            assert rc == 0 and "the first now" in out, (n, out)
        shown = await cli_json(temporal, lab, "readiness", "status")
        assert shown["interval"] == 3600 + 60 * (MAX_SIGNALS + 1)
    finally:
        rc, out = await cli(temporal, lab, "readiness", "off")
    assert rc == 0 and "off (schedule" in out, out
