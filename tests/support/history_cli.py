"""The history commands (`amsm report`, `replay`, ...) run through the CLI's own parser, as
`amsm` runs them, for the tests."""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

from client.history_cli import add_history_commands, run_history_command


def parser() -> argparse.ArgumentParser:
    """The CLI's parser with the history commands (whether or not cli.py adds them yet)."""
    from client.cli import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    if "report" not in sub.choices:
        add_history_commands(sub)
    return p


async def amsm(*argv: str, client: Any = None, inv: Any = None) -> tuple[int, str]:
    """Run a history command through the CLI's parser, as `amsm` would (one-line errors)."""
    from client.session import CliError

    args = parser().parse_args(list(argv))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = await run_history_command(client, inv, args)
        except CliError as e:
            print(f"amsm: {e}")
            rc = e.code
    return rc, out.getvalue()
