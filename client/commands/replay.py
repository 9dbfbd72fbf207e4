"""`amsm replay FILE|DIR ... [--json]`: replay histories against the current workflow code
with the worker's data converter (no server needed), and `amsm replay --timeline FILE ...`:
a run's step timeline from its history.

Exit status: 0 when all replay, 1 on a mismatch or an unreadable history, 2 bad usage.
"""

from __future__ import annotations

import argparse
from typing import Any

from api.report import report_of_file
from api.runs import one_line_errors
from client.runs import codec_of
from client.session import EXIT_FAIL, EXIT_OK, emit
from records.replay import expand_paths, replay_paths
from records.report_render import render_timeline


def add(sub: Any) -> None:
    s = sub.add_parser(
        "replay",
        help="replay histories against the current workflow code (no server needed)",
        description="Replay each history (FILE, or every *.json in DIR) against the current "
        "workflow code with the worker's data converter. Exit 0 when all replay; otherwise "
        "each failing file is named with the event and the mismatch.",
    )
    s.add_argument("paths", nargs="+", metavar="FILE|DIR")
    s.add_argument(
        "--timeline",
        action="store_true",
        help="print the run's step timeline from the history instead of replaying it",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(local=local)


async def local(args: argparse.Namespace) -> int:
    with one_line_errors(args.command):
        return await (timeline(args) if args.timeline else replay(args))


async def replay(args: argparse.Namespace) -> int:
    files = expand_paths(args.paths)
    outcomes = await replay_paths(files, codec=codec_of(args))
    ok = all(o.ok for o in outcomes)
    if args.json:
        emit(args, {"ok": ok, "histories": [o.model_dump(mode="json") for o in outcomes]}, "")
    else:
        for o in outcomes:
            print(o.line)
        bad = sum(not o.ok for o in outcomes)
        if len(outcomes) > 1:
            print(
                f"{len(outcomes) - bad} of {len(outcomes)} histories replay"
                + (f"; {bad} do not" if bad else "")
            )
    return EXIT_OK if ok else EXIT_FAIL


async def timeline(args: argparse.Namespace) -> int:
    files = expand_paths(args.paths)
    codec = codec_of(args)
    reports = [await report_of_file(str(p), codec) for p in files]
    if args.json:
        data = [r.model_dump(mode="json") for r in reports]
        emit(args, data[0] if len(data) == 1 else data, "")
        return EXIT_OK
    print("\n".join(render_timeline(r) for r in reports), end="")
    return EXIT_OK
