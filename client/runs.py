"""What the CLI's commands add to the operator API (api/) when they wait on a run or
read a history: the payload codec of the command line and a progress line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.converter import PayloadCodec

from api.runs import cause
from client.session import EXIT_USAGE, CliError
from wire.codec import CodecConfigError, load_codec


def codec_of(args: argparse.Namespace) -> PayloadCodec | None:
    """The worker's payload codec (--codec-key-file, AMSM_CODEC_KEY_FILE, AMSM_CODEC_KEY), or
    None when payloads are not encrypted."""
    try:
        return load_codec(getattr(args, "codec_key_file", None))
    except CodecConfigError as e:
        raise CliError(str(e), EXIT_USAGE) from None


# How often a command that waits on a run asks it how far it is.
PROGRESS_POLL_SECONDS = 0.5


async def result_with_progress(
    handle: WorkflowHandle[Any, Any],
    progress: Callable[[], Awaitable[str | None]],
    final: Callable[[Any], str],
    what: str,
    quiet: bool,
) -> Any:
    """The run's result; meanwhile `progress()` on stderr (rewritten in place on a
    terminal; elsewhere only `final(result)`, once). A run that does not finish is a
    CliError naming `what` and the run."""
    live = not quiet and sys.stderr.isatty()
    waiting = asyncio.ensure_future(handle.result())
    shown = ""
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=PROGRESS_POLL_SECONDS)
            if done:
                break
            line = await progress()
            if live and line and line != shown:
                print(f"\r{line}", end="", file=sys.stderr, flush=True)
                shown = line
        result = waiting.result()
    except Exception as e:
        raise CliError(
            f"{what} ({handle.id}) did not finish: {cause(e)}; is the pair's worker running?"
        ) from None
    finally:
        if not waiting.done():
            waiting.cancel()
    if not quiet:
        print(f"\r{final(result)}" if live else final(result), file=sys.stderr)
    return result
