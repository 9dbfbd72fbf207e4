"""The web console's benchmark at a tiny size (4 clients, 1 and 2 pages, 2 s windows):
every figure is there and consistent with how it is measured.

The real numbers come from `python -m bench.console`; this checks that the benchmark
runs end to end and measures what it says, not how fast this machine is (no timing
limit here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]


def manual_steps(to: str) -> set[str]:
    return {d.id for d in KINDS["switch"].steps(to) if d.kind in ("manual", "gate")}


@pytest.mark.timeout(600)
def test_tiny_console_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.console",
            *("--devices", "20", "--reboot", "0.3", "--repeat", "2"),
            *("--pages", "1,2", "--window", "2", "--switch-rounds", "1"),
            *("--name", "ci", "--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "ci.json").read_text())
    assert result["devices"] == 20 and result["machine"]["cpus"]

    pair, run, switching = result["first_page"]
    assert (pair["path"], run["path"]) == ("/pairs/console", "/pairs/console/run")
    assert (switching["path"], switching["during"]) == ("/pairs/console/run", "switch-clients")
    # The run page during switch-clients draws a row per client (the lab's 4 or so).
    assert switching["client_rows"]["min"] >= 2 and run["client_rows"]["max"] == 0
    for f in (pair, run, switching):
        assert len(f["shown_seconds"]["runs"]) == 2
        # Shown is the later of the load event and the first live update; the server's
        # answer comes before both.
        for shown, load, server in zip(
            f["shown_seconds"]["runs"],
            f["load_seconds"]["runs"],
            f["server_seconds"]["runs"],
            strict=True,
        ):
            assert 0 < server <= load <= shown
        assert f["page_bytes"] > 1000
    # The pair page lists every client.
    assert pair["page_bytes"] > run["page_bytes"] // 2

    one, two = result["step_change"]
    assert (one["pages"], two["pages"]) == (1, 2)
    # A switch to Y, then one back to X: each manual step, and no change shows before
    # it was sent.
    for s, to in ((one, "Y"), (two, "X")):
        assert set(s["by_step"]) == manual_steps(to), s
        assert all(0 < v < 30 for v in s["by_step"].values()), s
        # The run's own changes: the automated steps done after the pages opened (the
        # run shows on the page only after its workflow task is done: never before).
        assert any(k.endswith(":done") for k in s["recorded"]), s
        assert all(0 < v < 30 for v in s["recorded"].values()), s

    cpu = result["cpu"]
    assert set(cpu) == {"0", "1", "2"}
    for n, by in cpu.items():
        assert set(by) >= {"worker", "console", "temporal", "reads_per_minute"}
        assert len(by["worker"]["runs"]) == 2 and by["worker"]["min"] >= 0
        if n == "0":  # no page open: nothing is followed, nothing asked
            assert by["reads_per_minute"]["max"] == 0 and by["queries_per_minute"]["max"] == 0
            assert by["subscriptions"]["max"] == 0
        else:  # one subscription however many pages share it (its long polls answer
            # when a history is written, so a short window may count none)
            assert by["subscriptions"]["min"] == by["subscriptions"]["max"] == 1
    whole = result["switch_cpu"]
    assert set(whole) == {"0", "2"}
    for by in whole.values():
        assert len(by["worker_cpu_seconds"]["runs"]) == 1 and by["worker_cpu_seconds"]["min"] > 0
        assert by["switch_seconds"]["min"] > 0
    # first page (waiting), first page (switching), per N two, the two CPU goals
    assert len(result["goals"]) == 1 + 1 + 2 * 2 + 1 + 1
    table = (out / "ci.md").read_text()
    assert "`/pairs/console/run`" in table and "| 2 | 7 |" in table
