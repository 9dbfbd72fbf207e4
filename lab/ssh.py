r"""One SSH server per simulated Windows host (asyncssh, 127.0.0.1, its own port).

What a host accepts, and nothing more:
- public-key authentication with the lab's client key (`keys/id_ed25519.pub`),
  under any user name; no passwords, keyboard-interactive, host-based or GSS;
- exec requests whose command is exactly what `encoded_command()` writes; a shell,
  a subsystem (sftp), scp or any other command gets
  `amsm-lab: only PowerShell -EncodedCommand is accepted` and exit status 1;
- a command that cmd.exe cannot take gets cmd.exe's "The command line is too long."
  on stderr, exit 1: Win32-OpenSSH runs an exec request through its default shell as
  `"...\cmd.exe" /c "<command>"` (PowerShell/openssh-portable,
  contrib/win32/win32compat/w32-doexec.c, do_exec_windows: `"%s %s \"%s\""`), and
  cmd.exe takes at most 8,191 characters of command (Microsoft Learn, "Command prompt
  (Cmd.exe) command-line string limitation"): the quoted `"<command>"` after /c, so
  8,189 characters of the command itself (`cmd_line_too_long`);
- output as powershell.exe writes it to pipes (`ScriptResult.wire`: the console's
  OEM code page unless the script set UTF-8, errors and progress as CLIXML);
- no PTY, no port, agent or X11 forwarding;
- stdin is watched: a client that never closes it (SSH_MSG_CHANNEL_EOF) is counted in
  the host document's `stdin_left_open`. powershell.exe given a redirected stdin
  reads it as the script's input (about_PowerShell_exe, -InputFormat; "-Command -" and
  "-File -" read their commands from it), and a stdin that never ends is the known
  hang of powershell.exe over SSH (the workaround is `-InputFormat None` or closing
  stdin): the lab does not hang, it waits STDIN_GRACE_SECONDS for the EOF and
  records, so a test can see that the driver closes stdin;
- at most MaxSessions session channels open at once on one connection (sshd_config
  MaxSessions, default 10; the host document's `ssh_max_sessions`): OpenSSH's
  session_new (session.c) finds no free session, server_request_session gives no
  channel, and server_input_channel_open (serverloop.c) answers
  SSH_MSG_CHANNEL_OPEN_FAILURE with its initial reason SSH2_OPEN_CONNECT_FAILED and
  "open failed"; the connection, and every channel open on it, stays.

A `Restart-Computer` takes the host down once the command has returned: the
listener closes (connections are refused) before the exit status is sent, and the
host's open connections are dropped right after. `lab.serve` boots it again.

A host the inventory reaches over WinRM also has a WS-Management listener
(`lab.winrm.WinRmServer`); the HostServer starts and stops both together, so a
reboot or a fault takes the whole host off the network whichever transport ran it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from lab.host import BIND_ADDRESS, REFUSED, go_down, run_script, script_of
from lab.powershell import OEM_CODEPAGE
from lab.state import LabState

if TYPE_CHECKING:
    from lab.winrm import WinRmServer

log = logging.getLogger("amsm.lab.ssh")

CMD_MAX_COMMAND_LINE = 8191
CMD_TOO_LONG = "The command line is too long."
# Win32-OpenSSH's default shell, as do_exec_windows quotes it.
DEFAULT_SHELL = '"C:\\Windows\\System32\\cmd.exe"'


def cmd_line(command: str) -> str:
    """The command line Win32-OpenSSH gives CreateProcess for an exec request when the
    default shell is cmd.exe (w32-doexec.c: shell, shell option, quoted command)."""
    return f'{DEFAULT_SHELL} /c "{command}"'


def cmd_line_too_long(command: str) -> bool:
    """Whether cmd.exe refuses the command: what it runs is everything after `/c `, the
    quotes included, and it takes at most CMD_MAX_COMMAND_LINE characters of it."""
    return len(cmd_line(command).split(" /c ", 1)[1]) > CMD_MAX_COMMAND_LINE


# sshd_config(5) MaxSessions: "The default is 10."
DEFAULT_MAX_SESSIONS = 10
FAST_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"]


class _HostSSHServer(asyncssh.SSHServer):
    """Per-connection callbacks: track the connection, allow public keys only."""

    def __init__(self, host: HostServer) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._host.connections.add(conn)
        # sshd reads MaxSessions when the connection's session process starts.
        doc = self._host.state.read_host(self._host.name) or {}
        limit = int(doc.get("ssh_max_sessions", DEFAULT_MAX_SESSIONS))
        open_sessions: set[asyncssh.SSHServerChannel[bytes]] = set()
        # asyncssh looks the handler of a channel type up on the connection
        # (`_process_<type>_open`); with a process factory it never asks the server
        # object, so the limit wraps the connection's own handler.
        accept: Any = getattr(conn, "_process_session_open")  # noqa: B009

        def session_open(packet: Any) -> Any:
            if len(open_sessions) >= limit:
                raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "open failed")
            chan, session = accept(packet)
            open_sessions.add(chan)
            # The slot is free once the channel is closed both ways: asyncssh tells the
            # session (connection_lost) as it cleans the channel up, before it reads
            # the next packet.
            lost = session.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                open_sessions.discard(chan)
                lost(exc)

            session.connection_lost = connection_lost
            return chan, session

        setattr(conn, "_process_session_open", session_open)  # noqa: B010

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._host.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


class HostServer:
    """The listeners of one lab host (SSH, and WinRM when the inventory uses it);
    start() and stop() may be called repeatedly and act on both."""

    def __init__(
        self,
        name: str,
        port: int,
        host_key: asyncssh.SSHKey,
        authorized_keys: asyncssh.SSHAuthorizedKeys,
        state: LabState,
        winrm: WinRmServer | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.host_key = host_key
        self.authorized_keys = authorized_keys
        self.state = state
        self.connections: set[asyncssh.SSHServerConnection] = set()
        # Down in lab.db: never listen. Set by a Restart-Computer *before* it commits
        # (so the serve loop never sees the host down without it), cleared at boot.
        self.restarting = False
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._lock = asyncio.Lock()
        self.winrm = winrm
        if winrm is not None:
            winrm.host = self

    @property
    def ports(self) -> list[int]:
        return [self.port] + ([self.winrm.port] if self.winrm is not None else [])

    @property
    def listening(self) -> bool:
        """Every listener of the host is open."""
        return self._acceptor is not None and (self.winrm is None or self.winrm.listening)

    async def start(self) -> bool:
        """Listen on 127.0.0.1 (SSH port, and WinRM port) unless restarting; OSError if a
        port is taken. WinRM opens first, so an open SSH port means the host is up."""
        async with self._lock:
            if self.listening:
                return True
            if self.restarting:
                return False
            if self.winrm is not None and not self.winrm.listening:
                try:
                    await self.winrm.start()
                except OSError as e:
                    raise OSError(
                        e.errno, f"WinRM port {self.winrm.port}: {e.strerror or e}"
                    ) from None
            if self._acceptor is not None:
                return True
            self._acceptor = await asyncssh.create_server(
                lambda: _HostSSHServer(self),
                BIND_ADDRESS,
                self.port,
                server_host_keys=[self.host_key],
                authorized_client_keys=self.authorized_keys,
                process_factory=self._handle,
                encoding=None,
                allow_pty=False,
                agent_forwarding=False,
                x11_forwarding=False,
                allow_scp=False,
                gss_host=None,
                login_timeout=10,
                # AES-GCM runs in C; asyncssh's chacha20 does per-packet work in Python,
                # which costs a third of the time when hundreds of clients switch at once.
                encryption_algs=FAST_CIPHERS,
            )
            return True

    async def stop(self, drop_connections: bool = True) -> None:
        """Stop listening (new connections are refused); optionally drop open ones."""
        async with self._lock:
            acceptor, self._acceptor = self._acceptor, None
            if self.winrm is not None:
                self.winrm.close_listener()
            if acceptor is not None:
                acceptor.close()
                await acceptor.wait_closed()
        if drop_connections:
            for conn in list(self.connections):
                conn.close()
            if self.winrm is not None:
                self.winrm.drop_connections()

    def doomed_connections(self) -> Callable[[], None]:
        """A function that closes the host's connections open now (SSH and WinRM)."""
        ssh = set(self.connections)
        web = self.winrm.snapshot() if self.winrm is not None else None

        def close() -> None:
            for conn in ssh:
                conn.close()
            if web is not None:
                web()

        return close

    def mark_restarting(self) -> None:
        # Runs in the worker thread, inside the transaction; a bool store is atomic.
        self.restarting = True

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            await self._exec(process)
        except (BrokenPipeError, ConnectionError, asyncssh.Error):
            pass  # the client went away; what the script did is committed anyway
        except Exception:
            log.exception("%s: the lab failed to run a command", self.name)
            with contextlib.suppress(Exception):
                process.stderr.write(b"amsm-lab: internal error in the lab (see its log)\r\n")
                process.exit(1)

    async def _exec(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run the command; then see whether the client closed stdin (module docstring)."""
        if process.command is not None and cmd_line_too_long(process.command):
            # OpenSSH for Windows runs the command through cmd.exe /c "...", which
            # refuses more than 8,191 characters (see cmd_line_too_long).
            process.stderr.write(f"{CMD_TOO_LONG}\r\n".encode("ascii"))
            process.exit(1)
            return
        eof = asyncio.create_task(_stdin_closed(process))
        done, _ = await asyncio.wait({eof}, timeout=STDIN_GRACE_SECONDS)
        if not done:
            eof.cancel()
            await asyncio.to_thread(self.state.note_stdin_left_open, self.name)
        await self._run(process)

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        script = None if process.subsystem is not None else script_of(process.command)
        if script is None:
            process.stderr.write(f"{REFUSED}\r\n".encode("ascii"))
            process.exit(1)
            return
        result = await run_script(self, script)
        if result is None:
            return  # down
        stdout, stderr = result.wire(OEM_CODEPAGE)
        if stdout:
            process.stdout.write(stdout)
        if stderr:
            process.stderr.write(stderr)
        if not result.reboot:
            process.exit(result.exit_status)
            return
        await go_down(self, lambda: process.exit(result.exit_status), process.wait_closed())


# How long the lab waits for a client's EOF on stdin before it runs the command and
# counts stdin as left open (a client that closes it does so as the channel opens).
STDIN_GRACE_SECONDS = 0.2


async def _stdin_closed(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Returns once the client has closed the channel's stdin (EOF)."""
    with contextlib.suppress(asyncssh.Error, ConnectionError, BrokenPipeError):
        await process.stdin.read()


def load_host_key(path: Path) -> asyncssh.SSHKey:
    return asyncssh.read_private_key(str(path))


def load_authorized_keys(path: Path) -> asyncssh.SSHAuthorizedKeys:
    return asyncssh.import_authorized_keys(path.read_text(encoding="ascii"))
