"""SSH transport (OpenSSH for Windows) on asyncssh: public keys, host keys verified."""

from __future__ import annotations

import asyncio
import time
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncssh

from activities.drivers import powershell as ps
from activities.drivers.credentials import Secret
from activities.drivers.errors import (
    AuthenticationFailed,
    HostNotTrusted,
    LogonRefused,
    Unreachable,
)
from activities.drivers.host import ExecResult, HostDriver
from inventory.models import Host


@lru_cache(maxsize=16)
def _known_hosts(path: str, mtime: float) -> asyncssh.SSHKnownHosts:
    return asyncssh.read_known_hosts(path)


@lru_cache(maxsize=16)
def _client_key(path: str, mtime: float) -> asyncssh.SSHKey:
    return asyncssh.read_private_key(path)


# An open connection is reused for the next command to the same host while it has been
# idle no longer than this: hundreds of clients polled during their restarts would
# otherwise pay a key exchange and a public-key login for every command.
CONNECTION_IDLE_SECONDS = 30.0
_Key = tuple[str, int, str, str]
# A channel the host refused (SSH_MSG_CHANNEL_OPEN_FAILURE: sshd's MaxSessions) is
# asked for again after this long, doubling up to BUSY_RETRY_MAX, within the command's
# timeout.
BUSY_RETRY_SECONDS = 0.05
BUSY_RETRY_MAX = 1.0
# Refused channels per host, since the worker started (read by tests and logs).
_BUSY: dict[str, int] = {}


def channels_per_host(host: Host) -> int:
    """Commands this worker runs on `host` at once: one fewer than its sshd allows on a
    connection (MaxSessions, the inventory's `ssh_max_sessions`), because sshd frees a
    finished session's slot only when it collects the closed channel, after it has
    read the packets that came with the close (OpenSSH serverloop.c: channels are
    collected after input is processed), so a new channel asked for at once may find
    the old one still counted."""
    return max(1, host.ssh_max_sessions - 1)


def busy_refusals(host: Host) -> int:
    """How many channels `host` refused while its connection stayed open."""
    return _BUSY.get(host.host, 0)


class _Connections:
    """Open SSH connections by host, per event loop (a connection belongs to its loop).

    A connection the host closed (a restart) is noticed (`is_closed`) and replaced; one
    that no longer opens a channel is dropped and the command goes over a new one, so
    a command never runs twice. Keepalives close a connection to a host that vanished.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_Key, tuple[asyncssh.SSHClientConnection, float]]
        ] = weakref.WeakKeyDictionary()
        self._slots: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_Key, tuple[int, asyncio.Semaphore]]
        ] = weakref.WeakKeyDictionary()
        self._swept = 0.0

    def slots(self, key: _Key, size: int) -> asyncio.Semaphore:
        """The host's channel slots in this worker: at most `size` commands run on it at
        once (channels_per_host), so a connection stays below sshd's MaxSessions."""
        loop = asyncio.get_running_loop()
        table = self._slots.get(loop)
        if table is None:
            table = self._slots[loop] = {}
        entry = table.get(key)
        if entry is None or entry[0] != size:
            entry = table[key] = (size, asyncio.Semaphore(size))
        return entry[1]

    def _table(self) -> dict[_Key, tuple[asyncssh.SSHClientConnection, float]]:
        loop = asyncio.get_running_loop()
        table = self._by_loop.get(loop)
        if table is None:
            table = self._by_loop[loop] = {}
        return table

    def get(self, key: _Key) -> asyncssh.SSHClientConnection | None:
        table = self._table()
        now = time.monotonic()
        if now - self._swept > 1.0:  # idle ones out, at most once a second
            self._swept = now
            for k, (conn, used) in list(table.items()):
                if conn.is_closed() or now - used > CONNECTION_IDLE_SECONDS:
                    del table[k]
                    conn.close()
        entry = table.get(key)
        if entry is None:
            return None
        if entry[0].is_closed() or now - entry[1] > CONNECTION_IDLE_SECONDS:
            del table[key]
            entry[0].close()
            return None
        table[key] = (entry[0], now)
        return entry[0]

    def put(self, key: _Key, conn: asyncssh.SSHClientConnection) -> bool:
        """Pool `conn`, unless another command to the host connected first and its
        connection is open: that one stays (a command may be running on it: closing it
        cut that command, "the connection closed before the command finished", seen
        when the pair's watch and a site check read a host at once), and False says to
        close `conn` after its own command."""
        table = self._table()
        old = table.get(key)
        if old is not None and old[0] is not conn and not old[0].is_closed():
            return False
        table[key] = (conn, time.monotonic())
        return True

    def drop(self, key: _Key, conn: asyncssh.SSHClientConnection) -> None:
        table = self._table()
        if key in table and table[key][0] is conn:
            del table[key]
        conn.close()


_CONNECTIONS = _Connections()


# What asyncssh raises when a channel cannot be opened on a connection, including its
# internal assertions when the connection closes under the opening (channel.py:
# `assert self._conn is not None`, `self._session.session_started()` on None; seen with
# asyncssh 2.x while a host restarts): the command never started.
_CHANNEL_NOT_OPENED: tuple[type[BaseException], ...] = (
    asyncssh.ChannelOpenError,
    asyncssh.Error,
    OSError,
    AssertionError,
    AttributeError,
)
_REUSE_FAILED: tuple[type[BaseException], ...] = (*_CHANNEL_NOT_OPENED, TimeoutError)


class SshHostDriver(HostDriver):
    transport = "ssh"

    def __init__(
        self,
        host: Host,
        secret: Secret,
        known_hosts: Path,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        super().__init__(host, timeout)
        if secret.key_file is None:
            raise AuthenticationFailed(
                host.host, "SSH needs a key_file in its credentials (public-key authentication)"
            )
        self._secret = secret
        self._known_hosts = known_hosts
        self._connect_timeout = connect_timeout

    async def _execute(self, script_text: str) -> ExecResult:
        h = self.host
        key_file = self._secret.key_file
        assert key_file is not None
        pool_key: _Key = (h.address, h.port, self._secret.username, str(key_file))
        command = ps.encoded_command(script_text)
        refused = [0]  # channels the host refused to this command
        try:
            async with (
                asyncio.timeout(self.timeout),
                _CONNECTIONS.slots(pool_key, channels_per_host(h)),
            ):
                reused = _CONNECTIONS.get(pool_key)
                if reused is not None:
                    try:
                        process = await self._open(reused, command, refused)
                    except _REUSE_FAILED:
                        # The channel never opened, so the command never ran: a new one.
                        _CONNECTIONS.drop(pool_key, reused)
                    else:
                        r = await self._finish(process)
                        return self._result(r)  # Unreachable when it was cut
                # Key and known_hosts are read for a new connection only (and again
                # when their files change).
                try:
                    kh = _known_hosts(str(self._known_hosts), self._known_hosts.stat().st_mtime)
                except (OSError, asyncssh.Error, ValueError) as e:
                    # No host key can be verified without it.
                    raise HostNotTrusted(
                        h.host, f"cannot read known_hosts {self._known_hosts}: {e}", "host-key"
                    ) from None
                try:
                    key = _client_key(str(key_file), key_file.stat().st_mtime)
                except (OSError, asyncssh.Error, ValueError) as e:
                    raise AuthenticationFailed(h.host, f"cannot read the key: {e}") from None
                conn = await self._connect(key, kh)
                pooled = _CONNECTIONS.put(pool_key, conn)
                try:
                    process = await self._open(conn, command, refused)
                except _CHANNEL_NOT_OPENED as e:
                    # Connected, but the host went away before the command started (a
                    # restart under way): it never ran.
                    _CONNECTIONS.drop(pool_key, conn)
                    raise Unreachable(
                        h.host, f"the connection closed before the command started ({e!r})"
                    ) from None
                except BaseException:
                    _CONNECTIONS.drop(pool_key, conn)
                    raise
                try:
                    r = await self._finish(process)
                except BaseException:
                    _CONNECTIONS.drop(pool_key, conn)
                    raise
                if not pooled:
                    conn.close()
        except asyncssh.HostKeyNotVerifiable as e:
            raise HostNotTrusted(
                h.host, f"host key not verified against {self._known_hosts}: {e.reason}", "host-key"
            ) from None
        except asyncssh.PermissionDenied as e:
            raise LogonRefused(
                h.host, f"user {self._secret.username!r} was refused: {e.reason}"
            ) from None
        except TimeoutError:
            if refused[0]:
                raise Unreachable(
                    h.host,
                    f"the host refused a new SSH channel {refused[0]} time(s) within "
                    f"{self.timeout:.0f} s (busy: more sessions than its sshd MaxSessions; "
                    "set the host's ssh_max_sessions to it)",
                ) from None
            raise Unreachable(h.host, f"no answer within {self.timeout:.0f} s") from None
        except (OSError, asyncssh.ConnectionLost, asyncssh.DisconnectError) as e:
            why = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
            raise Unreachable(h.host, f"cannot connect to {h.address}:{h.port} ({why})") from None
        return self._result(r)

    async def _connect(
        self, key: asyncssh.SSHKey, kh: asyncssh.SSHKnownHosts
    ) -> asyncssh.SSHClientConnection:
        """A new connection, bounded by the connect timeout (TCP, key exchange, login).
        Its expiry is said as such: a silently dropped link (no refusal) fails here,
        after the connect timeout, not after the command's."""
        h = self.host
        try:
            return await asyncssh.connect(
                h.address,
                h.port,
                username=self._secret.username,
                client_keys=[key],
                known_hosts=kh,
                connect_timeout=self._connect_timeout,
                login_timeout=self._connect_timeout,
                agent_path=None,
                password=None,
                kbdint_auth=False,
                keepalive_interval=10,
                keepalive_count_max=3,
            )
        except TimeoutError:
            # asyncssh's own connect timeout (asyncio.wait_for); the command's timeout
            # cancels instead, and is reported by the caller.
            raise Unreachable(
                h.host,
                f"cannot connect to {h.address}:{h.port} (no answer within "
                f"{self._connect_timeout:g} s)",
            ) from None

    async def _open(
        self, conn: asyncssh.SSHClientConnection, command: str, refused: list[int]
    ) -> asyncssh.SSHClientProcess[Any]:
        """A channel running `command` on `conn`. A channel the host refuses while the
        connection stays open (SSH_MSG_CHANNEL_OPEN_FAILURE, asyncssh's ChannelOpenError:
        OpenSSH refuses a session beyond MaxSessions, session.c session_new) is busy,
        not gone: asked for again after a pause, on the same connection, so the commands
        running on it go on; the command's timeout bounds the waiting."""
        delay = BUSY_RETRY_SECONDS
        while True:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    process = await conn.create_process(command, encoding=None)
                # The script is on the command line, never on stdin: close stdin at once.
                # asyncssh sends EOF only with `input` (create_process, communicate),
                # and powershell.exe with a redirected stdin that stays open may wait
                # on it (the known hang over SSH; -InputFormat None is the other cure).
                process.stdin.write_eof()
                return process
            except asyncssh.ChannelOpenError:
                if conn.is_closed():
                    raise
            refused[0] += 1
            _BUSY[self.name] = _BUSY.get(self.name, 0) + 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, BUSY_RETRY_MAX)

    @staticmethod
    async def _finish(process: asyncssh.SSHClientProcess[Any]) -> asyncssh.SSHCompletedProcess:
        try:
            return await process.wait(check=False)
        finally:
            process.close()

    def _result(self, r: asyncssh.SSHCompletedProcess) -> ExecResult:
        if r.exit_status is None and r.exit_signal is None:
            # The connection closed before the command said how it ended: the host went
            # down under it (a restart). Whether it ran is for the caller to read again.
            raise Unreachable(self.name, "the connection closed before the command finished")
        if r.exit_status == 0 and not r.stdout and not r.stderr:
            # powershell.exe running a ps.script() always prints its markers, so not one
            # byte is not an answer: seen when a connection is torn down by a restart
            # while another command runs on it (asyncssh then reports the status of a
            # channel that never carried output). The host went away under the command.
            raise Unreachable(self.name, "the host answered nothing at all (going down?)")
        # Bytes (encoding=None): the host driver decodes, and says so when it cannot.
        out = r.stdout if isinstance(r.stdout, bytes) else str(r.stdout or "").encode()
        err = r.stderr if isinstance(r.stderr, bytes) else str(r.stderr or "").encode()
        status = r.exit_status if r.exit_status is not None else -1
        return ExecResult(status, out, err)
