"""WinRM transport (WS-Management) on pywinrm: the same PowerShell as over SSH.

A call is a Command (`powershell.exe` with exactly the arguments of
`encoded_command()`) and Receive until it is Done, in a WinRS shell the session
keeps for the next commands (Create when it has none; Signal terminate and Delete
only for a command that did not end well; see SHELL_COMMANDS). pywinrm is
synchronous (requests); each call runs in a thread of this module's own pool, so a
slow host never starves the event loop's default executor.

Security: the server certificate is always validated (against the host's
`ca_file` when the inventory names one); plain HTTP only where the inventory
says `allow_http: true`. The password is handed to pywinrm and nowhere else:
never logged, never part of an error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests.exceptions
import urllib3.exceptions
import winrm.transport
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from activities.drivers import powershell as ps
from activities.drivers.credentials import Secret
from activities.drivers.errors import (
    AuthenticationFailed,
    CommandFailed,
    HostNotTrusted,
    LogonRefused,
    Unreachable,
)
from activities.drivers.host import SESSIONS_PER_HOST, ExecResult, HostDriver
from activities.drivers.winrm_messages import TemplatedProtocol
from inventory.models import Host

log = logging.getLogger("amsm.winrm")

COMMAND = "powershell.exe"
# The longest a single Receive waits on the host before answering "still running"
# (WS-Management OperationTimeout); the driver asks again until its own deadline.
MAX_OPERATION_TIMEOUT_SECONDS = 20
# WS-Management's "the shell was not found on the server" (ERROR_WSMAN_SHELL_NOT_FOUND).
SHELL_NOT_FOUND = 2150858843
# A script that restarts the host: its shell is deleted right after its answer.
RESTART = ps.restart_computer()
# Threads for pywinrm calls: as many hosts as the worker may drive at once.
_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="amsm-winrm")
# A session (its keep-alive HTTPS connection, authenticated once for NTLM) is reused
# for the next command to the same host when it has been idle no longer than this.
SESSION_IDLE_SECONDS = 30.0
# SESSIONS_PER_HOST (host.py): at most this many sessions, so shells, per host and
# credentials in this process, in use or idle; more commands to one host wait for one.
# WS-Management's quota fault (ERROR_WSMAN_QUOTA_MAX_SHELLS and its kin).
QUOTA_FAULT = 2150859174
# A session keeps its shell for the next commands (Command + Receive each, instead of
# Create + Command + Receive + Delete), for at most this many commands and this long;
# then the shell is deleted and a new one created, so the host frees what its commands
# held. A restart's shell is forgotten (the host goes down after its answer).
SHELL_COMMANDS = 10
SHELL_MAX_AGE_SECONDS = 60.0


@dataclass
class _Session:
    """A pywinrm Protocol (its HTTP session) and the shell it keeps open, if any."""

    p: Protocol
    shell: str | None = None
    shell_at: float = 0.0
    commands: int = 0
    # Its last command restarted the host: the session is closed, its shell deleted in
    # the background (the host may not answer any more).
    restarted: bool = False

    def delete_shell(self) -> bool:
        """Delete the kept shell; False when the host did not answer."""
        shell, self.shell = self.shell, None
        if shell is None:
            return True
        try:
            self.p.close_shell(shell, close_session=False)
        except Exception as e:
            log.debug("WinRM Delete failed: %s", type(e).__name__)
            return False
        return True

    def close(self) -> None:
        self.delete_shell()
        _close(self.p)


class _Sessions:
    """Idle sessions by endpoint and credentials, for reuse.

    Without it every command pays a TCP and TLS handshake and, for NTLM, a full
    authentication: most of a worker's CPU when hundreds of clients switch at once.
    A connection the host closed (a restart) is noticed by urllib3, which opens a new
    one, so a reused session never answers for a host that went down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[Any, ...], list[tuple[float, _Session]]] = {}
        self._slots: dict[tuple[Any, ...], threading.BoundedSemaphore] = {}

    def slot(self, key: tuple[Any, ...]) -> threading.BoundedSemaphore:
        """Held for as long as a session of `key` is in use: in use plus idle stay at
        SESSIONS_PER_HOST at most (a new session is made only when none is idle)."""
        with self._lock:
            sem = self._slots.get(key)
            if sem is None:
                sem = self._slots[key] = threading.BoundedSemaphore(SESSIONS_PER_HOST)
            return sem

    def take(self, key: tuple[Any, ...]) -> _Session | None:
        now = time.monotonic()
        with self._lock:
            entries = self._idle.get(key, [])
            fresh = [(at, s) for at, s in entries if now - at <= SESSION_IDLE_SECONDS]
            stale = [s for at, s in entries if now - at > SESSION_IDLE_SECONDS]
            found = fresh.pop()[1] if fresh else None
            self._idle[key] = fresh
        for s in stale:
            # Its shell is deleted, not just forgotten: a shell closed without Delete
            # lives on the host until its IdleTimeout (3 min by default, often raised)
            # and counts against MaxShellsPerUser until then. In the background, so a
            # host that went away delays no command.
            _POOL.submit(s.close)
        return found

    def give(self, key: tuple[Any, ...], s: _Session) -> None:
        with self._lock:
            entries = self._idle.setdefault(key, [])
            if len(entries) < SESSIONS_PER_HOST:
                entries.append((time.monotonic(), s))
                return
        s.close()


def _close(p: Protocol) -> None:
    try:
        p.transport.close_session()
    except Exception as e:  # closing a dead connection: nothing to keep
        log.debug("WinRM session close failed: %s", type(e).__name__)


_SESSIONS = _Sessions()


def command_arguments(script_text: str) -> list[str]:
    """`encoded_command()` split after `powershell.exe`: the WinRS Command's arguments."""
    line = ps.encoded_command(script_text)
    head, _, rest = line.partition(" ")
    assert head == COMMAND
    return rest.split(" ")


def pywinrm_transport(scheme: str, auth: str) -> str:
    """pywinrm's name for the auth: Basic over HTTP is its `plaintext`."""
    if auth == "basic":
        return "plaintext" if scheme == "http" else "basic"
    return auth


def endpoint(host: Host) -> str:
    w = host.winrm_settings
    return f"{w.scheme}://{host.address}:{w.endpoint_port}/wsman"


class _Cancelled(Exception):
    """The caller gave up (its deadline passed); stop asking the host."""


class WinRmHostDriver(HostDriver):
    transport = "winrm"

    def __init__(
        self,
        host: Host,
        secret: Secret,
        ca_file: Path | None,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        super().__init__(host, timeout)
        settings = host.winrm_settings
        if secret.password is None:
            raise AuthenticationFailed(
                host.host,
                "WinRM needs password credentials (password_file or password_env); "
                f"credentials {host.credentials!r} have none",
            )
        if settings.auth == "basic" and not (_latin1(secret.username) and _latin1(secret.password)):
            # requests encodes Basic credentials as Latin-1 (requests.auth._basic_auth_str);
            # its UnicodeEncodeError would quote a character of the password and its place.
            raise AuthenticationFailed(
                host.host,
                f"credentials {host.credentials!r} cannot be sent with WinRM Basic auth: the "
                "user name or password has characters outside Latin-1 (use auth: ntlm)",
            )
        if settings.auth == "kerberos" and not winrm.transport.HAVE_KERBEROS:
            raise AuthenticationFailed(
                host.host, "WinRM auth kerberos needs pykerberos on the worker (not installed)"
            )
        if settings.auth == "credssp" and not winrm.transport.HAVE_CREDSSP:
            raise AuthenticationFailed(
                host.host, "WinRM auth credssp needs requests-credssp on the worker (not installed)"
            )
        if settings.scheme == "https" and ca_file is not None and not ca_file.is_file():
            # requests would say "Could not find a suitable TLS CA certificate bundle" as
            # an OSError, for every command: no certificate can be verified without it.
            raise HostNotTrusted(
                host.host, f"cannot read the CA file {ca_file} (winrm.ca_file)", "certificate"
            )
        self._secret = secret
        self._ca_file = ca_file
        self._connect_timeout = connect_timeout
        self.endpoint = endpoint(host)

    # -- the protocol, in a worker thread ---------------------------------------------------
    def _protocol(self) -> Protocol:
        w = self.host.winrm_settings
        operation = max(1, min(MAX_OPERATION_TIMEOUT_SECONDS, math.ceil(self.timeout)))
        read = operation + max(5, math.ceil(self._connect_timeout))
        p = TemplatedProtocol(
            self.endpoint,
            transport=pywinrm_transport(w.scheme, w.auth),  # type: ignore[arg-type]
            username=self._secret.username,
            password=self._secret.password,
            server_cert_validation="validate",
            ca_trust_path=str(self._ca_file) if self._ca_file else None,  # type: ignore[arg-type]
            read_timeout_sec=read,
            operation_timeout_sec=operation,
            proxy=None,
        )
        # requests takes (connect, read): a dead address fails after connect_timeout,
        # a Receive may wait on the host up to the operation timeout.
        p.transport.read_timeout_sec = (self._connect_timeout, read)  # type: ignore[assignment]
        # No proxy (proxy=None above), so nothing to read from the environment: requests
        # would otherwise look up proxy variables for every request.
        p.transport.build_session().trust_env = False
        return p

    def _session_key(self) -> tuple[Any, ...]:
        w = self.host.winrm_settings
        s = self._secret
        return (
            self.endpoint,
            w.scheme,
            w.auth,
            s.username,
            s.password,
            str(self._ca_file),
            self.timeout,
            self._connect_timeout,
        )

    def _run_sync(
        self, script_text: str, deadline: float, cancelled: threading.Event
    ) -> ExecResult:
        key = self._session_key()
        slot = _SESSIONS.slot(key)
        if not slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _Cancelled
        try:
            return self._run_in_slot(key, script_text, deadline, cancelled)
        finally:
            slot.release()

    def _run_in_slot(
        self, key: tuple[Any, ...], script_text: str, deadline: float, cancelled: threading.Event
    ) -> ExecResult:
        s = _SESSIONS.take(key) or _Session(self._protocol())
        try:
            result = self._run_in(s, script_text, deadline, cancelled)
        except BaseException as e:
            if _never_connected(e):
                # Refused (a host restarting): no connection to lose, and the next
                # poll takes the same session instead of building a new one. Its
                # shells, if any, went down with the host.
                s.shell = None
                _SESSIONS.give(key, s)
            else:
                s.close()
            raise
        if result[1]:
            _SESSIONS.give(key, s)
        elif s.restarted:
            _POOL.submit(s.close)
        else:
            s.close()
        return result[0]

    def _open_shell(self, s: _Session) -> str:
        if s.shell is not None:
            s.delete_shell()
        s.shell = s.p.open_shell(codepage=65001, noprofile=True)
        s.shell_at, s.commands = time.monotonic(), 0
        return s.shell

    def _start(self, s: _Session, script_text: str) -> tuple[str, str]:
        """Start the command in the session's shell (a new one when it has none, or has
        served its turn); (shell id, command id)."""
        kept = s.shell is not None
        if not kept or s.commands >= SHELL_COMMANDS:
            kept = False
        elif time.monotonic() - s.shell_at > SHELL_MAX_AGE_SECONDS:
            kept = False
        shell = s.shell if kept and s.shell is not None else self._open_shell(s)
        args = command_arguments(script_text)
        try:
            command_id = s.p.run_command(shell, COMMAND, args, skip_cmd_shell=True)
        except WSManFaultError as e:
            if not (kept and e.wsman_fault_code == SHELL_NOT_FOUND):
                raise
            # The kept shell is gone (a restart, the host's own idle timeout): the
            # command never started, so it goes to a new shell.
            s.shell = None
            shell = self._open_shell(s)
            command_id = s.p.run_command(shell, COMMAND, args, skip_cmd_shell=True)
        s.commands += 1
        return shell, command_id

    def _run_in(
        self, s: _Session, script_text: str, deadline: float, cancelled: threading.Event
    ) -> tuple[ExecResult, bool]:
        """Run the script in the session's shell; (its result, whether the session is fit
        for reuse)."""
        p = s.p
        command_id: str | None = None
        clean = True
        done = False
        shell_id, command_id = self._start(s, script_text)
        try:
            out: list[bytes] = []
            err: list[bytes] = []
            status = -1
            while not done:
                if cancelled.is_set() or time.monotonic() > deadline:
                    raise _Cancelled
                try:
                    o, e, status, done = p.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    continue  # still running: ask again
                out.append(o)
                err.append(e)
            result = ExecResult(status, b"".join(out), b"".join(err))
        finally:
            # Always clean up; once the output is in, a failed cleanup changes nothing
            # (a Restart-Computer may take the host down right after its answer). A
            # command that is done needs no terminate Signal: the host frees it with its
            # shell, deleted after at most SHELL_COMMANDS commands.
            try:
                if command_id is not None and not done:
                    p.cleanup_command(shell_id, command_id)
            except Exception as e:
                clean = False
                log.debug("%s: WinRM Signal failed: %s", self.name, type(e).__name__)
            finally:
                # The shell stays for the next command, unless the command did not end
                # well (deleted) or restarted the host. A host going down takes its
                # shells with it, but one whose restart did not happen (or came late)
                # would keep the shell until its IdleTimeout: it is deleted in the
                # background, where a host that no longer answers delays nothing.
                if not done:
                    clean = s.delete_shell() and clean
                elif RESTART in script_text:
                    s.restarted = True
                    clean = False
        return result, clean

    # -- HostDriver ---------------------------------------------------------------------------
    async def _execute(self, script_text: str) -> ExecResult:
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        deadline = time.monotonic() + self.timeout
        try:
            async with asyncio.timeout(self.timeout):
                return await loop.run_in_executor(
                    _POOL, self._run_sync, script_text, deadline, cancelled
                )
        except (TimeoutError, _Cancelled):
            raise Unreachable(self.name, f"no answer within {self.timeout:.0f} s") from None
        except Exception as e:
            raise self._translate(e) from None
        finally:
            cancelled.set()

    def _translate(self, e: Exception) -> Exception:
        h = self.name
        w = self.host.winrm_settings
        where = f"{self.host.address}:{w.endpoint_port}"
        if isinstance(e, requests.exceptions.SSLError) and _certificate_refused(e):
            trust = str(self._ca_file) if self._ca_file else "the default CA bundle"
            return HostNotTrusted(
                h, f"certificate of {h} not trusted by {trust}: {_root_cause(e)}", "certificate"
            )
        if isinstance(e, requests.exceptions.SSLError):
            if any(isinstance(x, (ssl.SSLEOFError, ConnectionError)) for x in _chain(e)):
                # cut mid-handshake (a host going down): worth another try
                return Unreachable(h, f"TLS handshake with {where} cut ({_root_cause(e)})")
            return AuthenticationFailed(h, f"TLS with {where} failed: {_root_cause(e)}")
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return Unreachable(h, f"cannot connect to {where} ({_root_cause(e)})")
        if isinstance(e, InvalidCredentialsError) and w.scheme == "http" and w.auth == "basic":
            return LogonRefused(
                h,
                f"user {self._secret.username!r} was refused (basic over http): a wrong "
                "password, or, more often, a WinRM service that refuses Basic over plain "
                "HTTP, as it does unless AllowUnencrypted is true (false by default); use "
                "HTTPS, or NTLM (pywinrm encrypts its messages), or set AllowUnencrypted "
                "on the host if that is really meant",
            )
        if isinstance(e, InvalidCredentialsError):
            return LogonRefused(
                h, f"user {self._secret.username!r} was refused ({w.auth} over {w.scheme})"
            )
        if isinstance(e, PermissionError):  # requests_ntlm: no NTLM challenge
            return AuthenticationFailed(
                h, f"user {self._secret.username!r} was refused: {w.auth} not offered ({e})"
            )
        if isinstance(e, WSManFaultError) and e.wsman_fault_code == SHELL_NOT_FOUND:
            # The shell went with a restart between two requests: worth another try.
            return Unreachable(h, f"{where} lost the command's shell (the host restarted?)")
        if isinstance(e, WSManFaultError) and e.wsman_fault_code == QUOTA_FAULT:
            return CommandFailed(
                h,
                f"{where} refused a new shell: too many open for user "
                f"{self._secret.username!r} (MaxShellsPerUser; shells closed without Delete "
                "count until the host's idle timeout)",
                e.reason,
            )
        if isinstance(e, WSManFaultError):
            code = e.wsman_fault_code if e.wsman_fault_code is not None else e.fault_subcode
            return CommandFailed(h, f"WS-Management fault {code}", e.reason)
        if isinstance(e, WinRMTransportError):
            return CommandFailed(
                h, f"WS-Management answered HTTP {e.code}", str(e.response_text)[:500]
            )
        if isinstance(e, WinRMError):
            return CommandFailed(h, f"WinRM: {e}")
        if isinstance(e, UnicodeError):
            # Encoding the credentials (or a message) failed; the codec's own text would
            # quote a character of the password and its position: a fixed text instead.
            return AuthenticationFailed(
                h,
                f"user {self._secret.username!r}: the credentials could not be encoded for "
                f"{w.auth} over {w.scheme}",
            )
        if isinstance(e, OSError):
            return Unreachable(h, f"cannot connect to {where} ({e.strerror or e})")
        return CommandFailed(h, f"unexpected WS-Management answer ({type(e).__name__}: {e})")


def _latin1(text: str | None) -> bool:
    try:
        (text or "").encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _chain(e: BaseException) -> list[BaseException]:
    """`e` and the exceptions requests/urllib3 wrap inside it, outermost first."""
    seen: list[BaseException] = []
    cur: Any = e
    while isinstance(cur, BaseException) and cur not in seen:
        seen.append(cur)
        nxt = getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = next((a for a in cur.args if isinstance(a, BaseException)), None)
        cur = nxt if nxt is not None else cur.__cause__ or cur.__context__
    return seen


def _never_connected(e: BaseException) -> bool:
    """The request failed before any connection was made (refused, no route)."""
    return isinstance(e, requests.exceptions.ConnectionError) and any(
        isinstance(x, urllib3.exceptions.NewConnectionError) for x in _chain(e)
    )


def _certificate_refused(e: BaseException) -> bool:
    return any(
        isinstance(x, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(x)
        for x in _chain(e)
    )


def _root_cause(e: BaseException) -> str:
    """The innermost reason requests/urllib3 wrap (e.g. the OpenSSL verify error)."""
    text = str(_chain(e)[-1])
    errno_at = text.find("[Errno")
    if errno_at >= 0:  # urllib3: "HTTPConnection(...): Failed to establish ...: [Errno 111] ..."
        text = text[errno_at:]
    return text if len(text) < 300 else text[:300] + "…"
