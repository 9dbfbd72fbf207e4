"""`amsm`, the one command an operator types. `amsm worker`, `amsm lab ...`,
`amsm console` and `amsm codec-server` are programs of their own, each with its own
parser (workers/worker.py, lab/cli.py, console/main.py, workers/codec_server.py); every other command is the
operator's CLI (client/cli.py). Only the program asked for is imported: `amsm status`
does not load the worker's drivers, and the worker does not load the CLI."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from wire.options import add_options

# name: (module with `main(argv) -> int`, help, whether it takes the shared options
# written before its name, as in `amsm --codec-key-file FILE codec-server`).
PROGRAMS: dict[str, tuple[str, str, bool]] = {
    "worker": ("workers.worker", "run a worker for the inventory's pair", True),
    "codec-server": (
        "workers.codec_server",
        "decrypt payloads for the Temporal Web UI (needs --codec-key-file)",
        True,
    ),
    "lab": ("lab.cli", "the simulated pair", False),
    "console": ("console.main", "serve the operator console in a browser (web)", True),
}


class _NotAProgram(Exception):
    pass


class _Front(argparse.ArgumentParser):
    """Finds the command's name behind the shared options, and leaves every error to the
    parser that owns the command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotAProgram(message)


def split(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(the program named, the shared options before its name, what follows it); the
    program is None for a command of the CLI."""
    front = _Front(add_help=False)
    add_options(front)
    front.add_argument("command", nargs="?")
    front.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        ns, _ = front.parse_known_args(argv)
    except _NotAProgram:
        return None, [], argv
    if ns.command not in PROGRAMS:
        return None, [], argv
    at = len(argv) - len(ns.rest) - 1
    return ns.command, argv[:at], argv[at + 1 :]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name, before, after = split(argv)
    if name is None:
        # Imported here, not above: the worker's image has no client/ (Dockerfile), and
        # `amsm worker` / `amsm lab` start without loading the CLI's commands.
        from client import cli

        return cli.main(argv, [(n, help) for n, (_, help, _) in PROGRAMS.items()])
    module, _, shared = PROGRAMS[name]
    program = importlib.import_module(module)
    return int(program.main([*before, *after] if shared else after))


def entry() -> None:
    """Console script. Exits without interpreter finalisation: the Temporal SDK's
    native runtime threads can abort a finalising interpreter (PyGILState_Release)."""
    try:
        rc = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `amsm status | head`
        rc = 0
    os._exit(rc)


if __name__ == "__main__":
    entry()
