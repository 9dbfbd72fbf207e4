"""docs/reference/cli.md is what the parsers print now: a change to a command's options
that does not regenerate the reference (`python -m docs.cli_reference`) fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reference_matches_the_parsers() -> None:
    # In a process of its own: the generator imports every program (the lab, the console)
    # and draws their help in an environment without AMSM_* or TEMPORAL_* variables.
    env = {**os.environ, "AMSM_INVENTORY": "elsewhere.yaml", "TEMPORAL_ADDRESS": "far:1"}
    out = subprocess.run(
        [sys.executable, "-m", "docs.cli_reference", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
