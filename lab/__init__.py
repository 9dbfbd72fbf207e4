"""The lab: a simulated mirrored K2 pair reached only through real protocols.

Every Windows host is its own SSH server on 127.0.0.1 that runs a small PowerShell
subset (`lab.powershell`); each DSM is a SQLite file the worker opens through
unixODBC (`lab.dsm`). The device state lives in `DIR/lab.db` (`lab.state`), shared
by `amsm lab serve` (`lab.serve`) and the operator's hands (`lab.hands`).
"""

from __future__ import annotations


class LabError(Exception):
    """An expected lab problem, told as a sentence (no traceback for the operator)."""
