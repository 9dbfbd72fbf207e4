"""The history commands (`amsm report`, `replay`, ...) run through the CLI's own parser and
code path, as `amsm` runs them, for the tests."""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

from client.cli import build_parser, run_command
from client.session import CliError


def parser() -> argparse.ArgumentParser:
    return build_parser()


async def amsm(*argv: str, temporal: Any = None, inv: Any = None) -> tuple[int, str]:
    """Run a history command as `amsm` would (one-line errors). `temporal` and `inv` may be
    None for the commands that need no server."""
    args = parser().parse_args(list(argv))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = await run_command(temporal, args, inv)
        except CliError as e:
            print(f"amsm: {e}")
            rc = e.code
    return rc, out.getvalue()
