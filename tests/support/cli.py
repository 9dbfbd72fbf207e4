"""`amsm` commands run through the CLI's own code path, in process, with their output
captured per task (commands running concurrently do not mix their output)."""

from __future__ import annotations

import contextvars
import io
import json
import sys
from typing import Any

from temporalio.client import Client

from tests.support.lab import Lab


async def cli(temporal: Client, lab: Lab, *argv: str) -> tuple[int, str]:
    """Run an `amsm` command through the CLI's own code path, in process."""
    from client.cli import build_parser, run_command
    from client.session import CliError

    args = build_parser().parse_args(["--inventory", str(lab.inventory_path), *argv])
    out, err = io.StringIO(), io.StringIO()
    _install_proxies()
    tokens = (_OUT.set(out), _ERR.set(err))
    try:
        try:
            rc = await run_command(temporal, args, lab.inventory)
        except CliError as e:
            print(f"amsm: {e}")
            rc = e.code
    finally:
        _OUT.reset(tokens[0])
        _ERR.reset(tokens[1])
    return rc, out.getvalue() + err.getvalue()


# Per-task capture, so that CLI commands running concurrently (crash trials on two
# pairs) do not mix their output the way contextlib.redirect_stdout would.
_OUT: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("out", default=None)
_ERR: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("err", default=None)


class _TaskStream(io.TextIOBase):
    def __init__(self, real: Any, var: contextvars.ContextVar[io.StringIO | None]) -> None:
        self.real, self.var = real, var

    def write(self, s: str) -> int:
        target = self.var.get()
        return (target if target is not None else self.real).write(s)

    def flush(self) -> None:
        if self.var.get() is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False


def _install_proxies() -> None:
    if not isinstance(sys.stdout, _TaskStream):
        sys.stdout = _TaskStream(sys.stdout, _OUT)
    if not isinstance(sys.stderr, _TaskStream):
        sys.stderr = _TaskStream(sys.stderr, _ERR)


async def cli_json(temporal: Client, lab: Lab, *argv: str) -> dict:
    rc, out = await cli(temporal, lab, *argv, "--json")
    assert rc == 0, out
    return json.loads(out)
