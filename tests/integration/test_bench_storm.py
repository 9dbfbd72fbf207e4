"""A storm of junk updates at a switch's run, the worker in a process of its own
(`python -m bench.storm --rate 0 --updates 30`: 90 a second, 30 of each of three kinds):
every act of the operator goes through within the bound (docs/reference/limits.md,
"Storms while the operator acts"). With the server's old limit of 10 updates in flight,
this locked the operator out (bench/results/2026-12-07-storm-updates-10-at-90.md): one
update refused for the limit clears the run's cached state, and the worker's evict and
replay loop follows.

The benchmark checks its own bound (exit 1 beyond it); this checks that it ran whole and
that the junk reached the run, not how fast this machine is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.limits import STORM_ACT_BOUND_SECONDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_operator_acts_through_a_storm_of_updates_at_a_worker_of_its_own(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.storm", "--rate", "0", "--updates", "30"]
        + ["--name", "ci", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = json.loads((tmp_path / "ci.json").read_text())
    assert row["error"] is None and row["state"] == "completed", row
    # The seven manual steps and gates of a switch to Y, each acted on by the operator.
    assert len(row["acts"]) == 7, row["acts"]
    assert row["act_max_s"] <= STORM_ACT_BOUND_SECONDS, row
    # The junk reached the run and its validator refused it there.
    assert row["signals"]["refused"]["update: refused by the validator"] >= 100, row
