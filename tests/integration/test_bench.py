"""The reduced benchmark (N = 1 and 20, short reboots): every figure is there and plausible.

The real numbers come from `make bench`; this checks that the benchmark runs end to
end on a clean machine and measures what it says, not how fast this machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_reduced_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--clients",
            "1,20",
            "--reboot",
            "0.5",
            "--status-devices",
            "40",
            "--name",
            "ci",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "ci.json").read_text())
    assert result["reboot_seconds"] == 0.5 and result["machine"]["cpus"]
    one, twenty = result["sizes"]
    assert (one["clients"], twenty["clients"]) == (1, 20)
    assert twenty["clients_switched"] == 20 and one["clients_switched"] == 1
    for r in (one, twenty):
        # A switch of clients takes at least two lab reboots; the step at least one client.
        assert r["client_seconds_median"] >= 2 * 0.5
        assert r["step_seconds"] >= r["client_seconds_min"]
        assert r["ratio"] == pytest.approx(r["step_seconds"] / r["client_seconds_median"], 1e-2)
        assert 1.0 <= r["projected_ratio"] <= r["ratio"]
        assert r["overhead_ms"]["count"] >= 5 and r["overhead_ms"]["median"] is not None
        assert r["confirm_to_activity_ms"]["count"] >= 2
        assert 0 < r["confirm_to_activity_ms"]["median"] < 60_000
        assert r["parent_events"] > 50 and r["largest_child_events"] > 5
        assert r["worker_peak_mb"] > 20
        assert set(r["cpu_seconds"]) == {"temporal", "lab", "worker"}
    assert one["marginal_ms"] is None
    expected = (twenty["step_seconds"] - one["step_seconds"]) / 19 * 1000
    assert twenty["marginal_ms"] == pytest.approx(expected, abs=0.2)
    status = result["status"]
    assert status["devices"] == 40 and len(status["runs"]) == 6
    assert 0 < status["median_seconds"] <= status["max_seconds"]
    goals = {g["goal"]: g for g in result["goals"]}
    assert len(goals) == 6
    assert goals["ratio at N = 100"]["met"] is None  # not measured at these sizes
    assert goals["parent history at N = 20"]["value"] == twenty["parent_events"]
    table = (out / "ci.md").read_text()
    assert "| 20 |" in table and "`amsm status` on 40 devices" in table
