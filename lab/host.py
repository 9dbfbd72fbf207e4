"""What a lab host does whichever transport reached it: which command lines it takes,
running a script against lab.db, and going down when the script restarted it.

`lab.ssh` (its SSH listener, and the HostServer that starts and stops all of a host's
listeners) and `lab.winrm` (its WS-Management listener) both build on this; neither
imports the other's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from activities.drivers.powershell import decode_command, encoded_command
from lab.powershell import ScriptResult
from lab.state import HostDown, LabState

log = logging.getLogger("amsm.lab.host")

REFUSED = "amsm-lab: only PowerShell -EncodedCommand is accepted"
# Where every host listens: 127.0.0.1, unless the lab is served inside a network
# namespace of its own (tests/support/netns.py), where it listens at that namespace's
# address so that a driver in another namespace reaches it over a veth and a bridge.
BIND_ADDRESS = os.environ.get("AMSM_LAB_BIND_ADDRESS", "127.0.0.1")
# How long a rebooting host waits for its last reply to reach the client.
REPLY_GRACE_SECONDS = 2.0


class Host(Protocol):
    """The host a listener belongs to (lab.ssh.HostServer)."""

    name: str
    state: LabState
    restarting: bool

    def mark_restarting(self) -> None: ...

    def doomed_connections(self) -> Callable[[], None]: ...

    async def stop(self, drop_connections: bool = True) -> None: ...


def script_of(command: str | None) -> str | None:
    """The PowerShell script inside an `encoded_command()` line, or None for anything else."""
    if command is None:
        return None
    try:
        script = decode_command(command)
    except (ValueError, UnicodeDecodeError):
        return None
    # base64 decoding skips stray characters; only the builder's exact line is accepted.
    return script if encoded_command(script) == command else None


async def run_script(host: Host, script: str) -> ScriptResult | None:
    """Run `script` on the host (one lab.db transaction). None when the host is down:
    its connections go with it. A failure of the lab itself is raised, with the reboot
    it may have begun rolled back."""
    try:
        result = await asyncio.to_thread(
            host.state.run_script, host.name, script, host.mark_restarting
        )
        if result.waited > 0:
            # The time the script spent waiting on the host (a Stop-Service waiting for
            # dependents): its answer comes that much later.
            await asyncio.sleep(result.waited)
        return result
    except HostDown:
        host.doomed_connections()()
        return None
    except BaseException:
        host.restarting = False  # the reboot, if any, was rolled back
        raise


async def go_down(host: Host, answer: Callable[[], None], delivered: Awaitable[object]) -> None:
    """The script restarted the host: stop listening first (both transports), so that a
    client that has seen the answer cannot connect again, then `answer`, give the answer
    `REPLY_GRACE_SECONDS` to reach the client (`delivered`), and drop every connection
    that was open. `lab.serve` boots the host again."""
    close_doomed = host.doomed_connections()
    await host.stop(drop_connections=False)
    answer()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(delivered, REPLY_GRACE_SECONDS)
    await asyncio.sleep(0)  # let the last answer reach the transport
    close_doomed()
    log.info("%s: restarting", host.name)
