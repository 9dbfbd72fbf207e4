"""A WS-Management (WinRM) listener per simulated Windows host, beside its SSH listener.

What a host accepts, and nothing more (MS-WSMV, the WinRS subset pywinrm speaks):
- `POST /wsman` over HTTP or HTTPS (TLS with the lab CA's certificate for the host:
  SAN 127.0.0.1 and the host name), on the host's `winrm.port`;
- Basic authentication with the lab's WinRM user (`Administrator`, password in
  `secrets/winrm-password`) only where the host's document says `winrm: {basic: true}`
  (a default service's Auth/Basic is false), and over plain HTTP only where it also
  says `allow_unencrypted: true` (a default service's AllowUnencrypted is false); else
  it answers 401, the "credentials rejected" a client then reports; over HTTPS
  also NTLM (`Negotiate`/`NTLM` header,
  pyspnego's acceptor, channel binding to the server certificate checked); the
  connection stays authenticated after NTLM, as on Windows;
- the shell actions Create, Command, Receive, Signal and Delete on the `cmd`
  resource. A command runs only if it is `powershell.exe` with exactly the
  arguments `encoded_command()` writes; anything else ends with exit status 1 and
  `amsm-lab: only PowerShell -EncodedCommand is accepted` on stderr, as over SSH.
  Other actions, unknown shells and bad envelopes get a SOAP fault (HTTP 500) like
  Windows' own, with its WSManFault code;
- quotas as a default service has them: MaxShellsPerUser 30 unless the host's
  document sets `winrm: {max_shells_per_user: N}` (the N+1st Create gets the quota
  fault), IdleTimeout 180 s (a shell closed without Delete counts until
  then), a command line of at most 32,766 characters (CreateProcess);
- output as powershell.exe writes it to pipes, in the shell's console code page
  (WINRS_CODEPAGE; pywinrm sends 437 unless told) until the script sets UTF-8.

The script runs in `LabState.run_script` when the Command arrives; Receive waits
for it (up to the request's OperationTimeout, then the "timed out, ask again"
fault) and returns stdout and stderr base64-encoded, at most `RECEIVE_CHUNK` bytes
per answer (several rounds for long output), the last one with CommandState Done
and the exit code. A `Restart-Computer` takes the whole host down as over SSH:
both listeners close before the Done answer is sent, and open connections are
dropped once the client has deleted its shell (or after a grace period).

Security: the lab listens on 127.0.0.1 only, authenticates before it parses any
XML, caps request sizes, and logs no credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import re
import secrets
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab import write_random_secret
from lab.host import BIND_ADDRESS, REFUSED, Host, go_down, run_script, script_of
from lab.powershell import OEM_CODEPAGE, ScriptResult
from lab.state import LabState
from lab.winrm_config import MAX_SHELLS_PER_USER, service_config

log = logging.getLogger("amsm.lab.winrm")

USERNAME = "Administrator"
CA_FILE = "winrm-ca.pem"
CERT_DIR = "keys/winrm"
PASSWORD_FILE = "secrets/winrm-password"
NTLM_USER_FILE = "secrets/winrm-ntlm-users"

# Raw output bytes per Receive answer (Windows caps an envelope at MaxEnvelopeSize).
RECEIVE_CHUNK = 64 * 1024
MAX_REQUEST_BYTES = 512 * 1024
MAX_HEADER_BYTES = 16 * 1024
IDLE_SECONDS = 60.0
MAX_OPERATION_SECONDS = 60.0
# winrm/config/Winrs defaults (Microsoft Learn, "Quotas for Remote Shells"; MS-WSMV
# 2.2.4.42 WinrsType): MaxShellsPerUser 30, IdleTimeout 180,000 ms. A shell closed
# without Delete lives until its idle timeout and counts against the quota until then.
SHELL_IDLE_SECONDS = 180.0
# How long a listener keeps the service settings it read from the host's document: a
# change (`amsm lab fault HOST shell-quota N`, a test's edit) applies within this, as
# Set-Item WSMan:\... applies to the next request on Windows.
CONFIG_SECONDS = 0.25
# CreateProcess takes a command line of at most 32,767 characters with its terminating
# null (Microsoft Learn, CreateProcessW); WinRS (WINRS_SKIP_CMD_SHELL) reports the
# failure as a fault carrying the Win32 error: 206, ERROR_FILENAME_EXCED_RANGE.
MAX_COMMAND_LINE = 32766
FAULT_COMMAND_TOO_LONG = 206

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_RESOURCE = SHELL_URI + "/cmd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
ACTION_CREATE = TRANSFER + "/Create"
ACTION_DELETE = TRANSFER + "/Delete"
ACTION_COMMAND = SHELL_URI + "/Command"
ACTION_RECEIVE = SHELL_URI + "/Receive"
ACTION_SIGNAL = SHELL_URI + "/Signal"
STATE_DONE = SHELL_URI + "/CommandState/Done"
STATE_RUNNING = SHELL_URI + "/CommandState/Running"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# WSManFault codes Windows uses for the same conditions.
FAULT_TIMED_OUT = 2150858793
FAULT_SHELL_NOT_FOUND = 2150858843
FAULT_ACTION_NOT_SUPPORTED = 2150858892
FAULT_BAD_ENVELOPE = 2150858817
FAULT_QUOTA = 2150859174
FAULT_BAD_RESOURCE = 2150858770


# -- certificates and secrets (lab init) ---------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amsm lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def write_pki(directory: Path, hosts: list[str], address: str) -> None:
    """A lab CA (`winrm-ca.pem`) and one server certificate per host under keys/winrm/.

    The CA's private key is not kept: the lab never issues another certificate.
    """
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    until = now + dt.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("amsm lab WinRM CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / CA_FILE).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_dir = directory / CERT_DIR
    cert_dir.mkdir(parents=True, exist_ok=True)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    for host in hosts:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host.lower()))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName(host.lower())]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(aki, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = cert_paths(directory, host)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(key_path, 0o600)


def cert_paths(directory: Path, host: str) -> tuple[Path, Path]:
    base = directory / CERT_DIR / host.lower()
    return base.with_suffix(".pem"), base.with_suffix(".key")


def write_password(directory: Path) -> None:
    """A fresh random WinRM password (no ':', so it fits an NTLM user file)."""
    write_random_secret(directory / PASSWORD_FILE)


def read_password(directory: Path) -> str:
    return (directory / PASSWORD_FILE).read_text(encoding="utf-8").strip()


def write_ntlm_users(directory: Path, password: str) -> Path:
    """The NTLM acceptor's user file, mode 0600, in the smbpasswd format
    `USER:UID:LM_HASH:NT_HASH:FLAGS:LCT` with the NT hash only (no LM hash, as Windows
    keeps it): pyspnego then reads the hash instead of deriving it from the password
    at every logon (a pure-Python DES for the LM hash)."""
    from spnego._ntlm_raw.crypto import ntowfv1

    path = directory / NTLM_USER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    nt_hash = ntowfv1(password).hex().upper()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"{USERNAME}:1000:{'0' * 32}:{nt_hash}:[U]:LCT-00000000\n")
    return path


def server_ssl_context(directory: Path, host: str) -> tuple[ssl.SSLContext, bytes]:
    """(TLS context, the certificate's channel-binding hash) for a host's HTTPS listener."""
    cert_path, key_path = cert_paths(directory, host)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ctx, _certificate_hash(cert)


def _certificate_hash(cert: x509.Certificate) -> bytes:
    """RFC 5929 tls-server-end-point: the certificate hashed with its signature hash
    (SHA-256 for MD5 and SHA-1), as requests_ntlm computes it."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


# -- authentication ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Users:
    """Who may log on: one user and its password; NTLM through pyspnego's user file."""

    username: str
    password: str
    ntlm_file: Path | None = None

    def check_basic(self, header_value: str) -> str | None:
        try:
            raw = base64.b64decode(header_value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = raw.partition(":")
        if not sep:
            return None
        ok_user = user.lower() == self.username.lower() or user.lower().endswith(
            "\\" + self.username.lower()
        )
        ok_password = secrets.compare_digest(password.encode(), self.password.encode())
        return user if ok_user and ok_password else None


# pyspnego's NTLM acceptor reads its user file from the environment: set it around each
# step (synchronous, under a lock), so several labs in one process keep their own users.
_NTLM_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _ntlm_user_file(path: Path) -> Iterator[None]:
    with _NTLM_ENV_LOCK:
        old = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(path)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = old


# -- SOAP ----------------------------------------------------------------------------------------
def _tag(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


class Fault(Exception):
    """A WS-Management fault: HTTP 500 with a SOAP Fault body."""

    def __init__(self, subcode: str, code: int, reason: str, sender: bool = True) -> None:
        self.subcode = subcode
        self.code = code
        self.reason = reason
        self.sender = sender
        super().__init__(reason)


def _envelope(action: str, relates_to: str | None, body: str) -> bytes:
    header = (
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        + (f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else "")
    )
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xml:lang="en-US" {ns}>'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: Fault, relates_to: str | None, machine: str) -> bytes:
    who = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{who}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}"
        f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">'
        f"{escape(fault.reason)}</s:Text></s:Reason><s:Detail>"
        f'<f:WSManFault Code="{fault.code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


@dataclass
class Request:
    action: str
    message_id: str | None
    resource_uri: str
    shell_id: str | None
    operation_timeout: float
    body: ET.Element
    # w:OptionSet of the header (WINRS_CODEPAGE, WINRS_NOPROFILE, ...).
    options: dict[str, str] = field(default_factory=dict)


_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def _duration(text: str | None, default: float) -> float:
    m = _DURATION.match((text or "").strip())
    if not m or not (m.group(1) or m.group(2)):
        return default
    return float(m.group(1) or 0) * 60 + float(m.group(2) or 0)


def parse_request(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise Fault("w:InvalidMessage", FAULT_BAD_ENVELOPE, f"not a SOAP envelope: {e}") from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if root.tag != _tag("s", "Envelope") or header is None or body is None:
        raise Fault("w:InvalidMessage", FAULT_BAD_ENVELOPE, "not a SOAP 1.2 envelope")
    selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
    options = {
        str(o.get("Name", "")).upper(): (o.text or "").strip()
        for o in header.findall("w:OptionSet/w:Option", NS)
    }
    return Request(
        action=(header.findtext("a:Action", "", NS) or "").strip(),
        message_id=(header.findtext("a:MessageID", None, NS) or "").strip() or None,
        resource_uri=(header.findtext("w:ResourceURI", "", NS) or "").strip(),
        shell_id=(selector.text or "").strip() if selector is not None else None,
        operation_timeout=min(
            MAX_OPERATION_SECONDS, _duration(header.findtext("w:OperationTimeout", None, NS), 60)
        ),
        body=body,
        options=options,
    )


# -- shells and commands -------------------------------------------------------------------------
@dataclass
class Command:
    id: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int = -1

    def finish(self, result: ScriptResult, codepage: str) -> None:
        self.stdout, self.stderr = result.wire(codepage)
        self.exit_status = result.exit_status
        self.done.set()


@dataclass
class Shell:
    id: str
    user: str
    # The console code page of the shell's processes: WINRS_CODEPAGE from Create
    # (MS-WSMV 2.2.4.40 / winrs -codepage), else the host's OEM code page.
    codepage: str = OEM_CODEPAGE
    commands: dict[str, Command] = field(default_factory=dict)
    used: float = field(default_factory=time.monotonic)
    deleted: asyncio.Event = field(default_factory=asyncio.Event)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.user: str | None = None  # set once NTLM has authenticated the connection
        self.ntlm: object | None = None  # the pyspnego acceptor while a handshake runs

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
REASONS |= {405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large"}
REASONS |= {500: "Internal Server Error"}


class WinRmServer:
    """The WinRM listener of one lab host; its HostServer starts and stops it with SSH."""

    def __init__(
        self,
        name: str,
        port: int,
        state: LabState,
        users: Users,
        tls: tuple[ssl.SSLContext, bytes] | None,
        allow_unencrypted: bool | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.state = state
        self.users = users
        self.scheme = "https" if tls else "http"
        # The service's settings live in the host's document (`winrm`, see
        # service_config); a test's own listener may fix AllowUnencrypted instead.
        self._allow_unencrypted = allow_unencrypted
        self._config: tuple[float, dict[str, Any]] = (-CONFIG_SECONDS, {})
        self.shell_idle_seconds = SHELL_IDLE_SECONDS
        self._ssl = tls[0] if tls else None
        self._cert_hash = tls[1] if tls else None
        self.host: Host | None = None  # set by lab.ssh.HostServer
        self.shells: dict[str, Shell] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def service_config(self) -> dict[str, Any]:
        """The host document's `winrm` section (read at most every CONFIG_SECONDS, in a
        thread, without the write lock: lab.db is shared with the serve loop and the
        hosts' scripts)."""
        at, config = self._config
        if time.monotonic() - at < CONFIG_SECONDS:
            return config

        def read() -> dict[str, Any]:
            return service_config(self.state.read_host(self.name) or {})

        config = await asyncio.to_thread(read)
        self._config = (time.monotonic(), config)
        return config

    @property
    def max_shells_per_user(self) -> int:
        return int(self._config[1].get("max_shells_per_user", MAX_SHELLS_PER_USER))

    @property
    def ntlm(self) -> bool:
        """NTLM only over HTTPS: over HTTP pywinrm would wrap every message in NTLM
        sealing (MS-WSMV encryption), which the lab does not do."""
        return self._ssl is not None and self.users.ntlm_file is not None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen on 127.0.0.1:port (OSError if the port is taken); a fresh boot has no shells."""
        if self._server is not None:
            return
        self.shells.clear()
        self._server = await asyncio.start_server(
            self._serve_connection,
            BIND_ADDRESS,
            self.port,
            ssl=self._ssl,
            ssl_handshake_timeout=10 if self._ssl else None,
            limit=MAX_HEADER_BYTES,
        )

    def close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def snapshot(self) -> Callable[[], None]:
        """A function that closes the connections open now (and forgets the shells)."""
        doomed = set(self._connections)

        def close() -> None:
            for conn in doomed:
                conn.close()
            self.shells.clear()

        return close

    def drop_connections(self) -> None:
        self.snapshot()()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _Connection(writer)
        self._connections.add(conn)
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_SECONDS):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.LimitOverrunError, ValueError):
                    await self._send(writer, Response(400), close=True)
                    return
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ssl.SSLError):
                    return
                parsed = _parse_head(head)
                if parsed is None:
                    await self._send(writer, Response(400), close=True)
                    return
                method, path, headers = parsed
                if "transfer-encoding" in headers:
                    await self._send(writer, Response(411), close=True)
                    return
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_REQUEST_BYTES:
                    await self._send(writer, Response(413), close=True)
                    return
                try:
                    body = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                response = await self._request(conn, method, path, headers, body)
                close = headers.get("connection", "").lower() == "close"
                await self._send(writer, response, close=close)
                if close:
                    return
        except (ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # The lab stopping (Ctrl-C): the connection ends here. Python 3.11's
            # StreamReaderProtocol logs a handler that ends cancelled as a failed callback,
            # with a traceback per open connection (CPython gh-113538, fixed in 3.12).
            pass
        except Exception:
            log.exception("%s: the lab's WinRM listener failed on a request", self.name)
        finally:
            self._connections.discard(conn)
            conn.close()

    async def _send(self, writer: asyncio.StreamWriter, r: Response, close: bool = False) -> None:
        head = [f"HTTP/1.1 {r.status} {REASONS.get(r.status, 'Error')}", "Server: amsm-lab-wsman"]
        if r.body:
            head.append("Content-Type: application/soap+xml;charset=UTF-8")
        head.append(f"Content-Length: {len(r.body)}")
        head += [f"{k}: {v}" for k, v in r.headers.items()]
        if close:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + r.body)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()

    def _challenge(self, config: dict[str, Any] | None = None) -> dict[str, str]:
        offers = ["Negotiate"] if self.ntlm else []
        if config is None or config.get("basic"):
            offers.append('Basic realm="WSMAN"')
        return {"WWW-Authenticate": ", ".join(offers)}

    def _authenticate(
        self, conn: _Connection, headers: dict[str, str], config: dict[str, Any]
    ) -> tuple[str | None, Response | None]:
        """(user, None) to go on, or (None, the 401 to send)."""
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        scheme = scheme.lower()
        allow_unencrypted = (
            bool(config.get("allow_unencrypted"))
            if self._allow_unencrypted is None
            else self._allow_unencrypted
        )
        if scheme == "basic":
            conn.ntlm = None
            if not config.get("basic"):
                # winrm/config/service/auth Basic is false by default: the service
                # offers no Basic and refuses it.
                log.info("%s: WinRM Basic refused (Auth/Basic=false)", self.name)
                return None, Response(401, headers=self._challenge(config))
            if self._ssl is None and not allow_unencrypted:
                log.info("%s: WinRM Basic over HTTP refused (AllowUnencrypted=false)", self.name)
                return None, Response(401, headers=self._challenge(config))
            user = self.users.check_basic(token)
            if user is None:
                log.info("%s: WinRM Basic logon refused", self.name)
                return None, Response(401, headers=self._challenge(config))
            return user, None
        if scheme in ("negotiate", "ntlm") and self.ntlm:
            return self._ntlm_step(conn, scheme, token)
        if conn.user is not None and not value:
            return conn.user, None
        return None, Response(401, headers=self._challenge(config))

    def _ntlm_step(
        self, conn: _Connection, scheme: str, token: str
    ) -> tuple[str | None, Response | None]:
        import spnego
        import spnego.channel_bindings
        import spnego.exceptions

        assert self.users.ntlm_file is not None and self._cert_hash is not None
        label = "Negotiate" if scheme == "negotiate" else "NTLM"
        try:
            data = base64.b64decode(token.strip(), validate=True)
        except binascii.Error:
            conn.ntlm = None
            return None, Response(401, headers=self._challenge(self._config[1]))
        try:
            with _ntlm_user_file(self.users.ntlm_file):
                if conn.ntlm is None or getattr(conn.ntlm, "complete", False):
                    bindings = spnego.channel_bindings.GssChannelBindings(
                        application_data=b"tls-server-end-point:" + self._cert_hash
                    )
                    conn.ntlm = spnego.server(
                        hostname=self.name,
                        service="http",
                        protocol="ntlm",
                        channel_bindings=bindings,
                    )
                    conn.user = None
                ctx = conn.ntlm
                out = ctx.step(data)  # type: ignore[attr-defined]
        except (spnego.exceptions.SpnegoError, ValueError) as e:
            log.info("%s: WinRM NTLM logon refused (%s)", self.name, type(e).__name__)
            conn.ntlm, conn.user = None, None
            return None, Response(401, headers=self._challenge(self._config[1]))
        if not ctx.complete:  # type: ignore[attr-defined]
            reply = base64.b64encode(out or b"").decode("ascii")
            return None, Response(401, headers={"WWW-Authenticate": f"{label} {reply}"})
        user = str(ctx.client_principal or USERNAME)  # type: ignore[attr-defined]
        if user.split("\\")[-1].lower() != self.users.username.lower():
            conn.ntlm, conn.user = None, None
            return None, Response(401, headers=self._challenge(self._config[1]))
        conn.user = user
        conn.ntlm = None
        return user, None

    async def _request(
        self, conn: _Connection, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        if path.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            return Response(404)
        if method != "POST":
            return Response(405, headers={"Allow": "POST"})
        user, refusal = self._authenticate(conn, headers, await self.service_config())
        if refusal is not None:
            return refusal
        assert user is not None
        relates_to: str | None = None
        try:
            req = parse_request(body)
            relates_to = req.message_id
            action, reply = await self._dispatch(req, user)
            return Response(200, _envelope(action, relates_to, reply))
        except Fault as f:
            return Response(500, fault_envelope(f, relates_to, self.name))

    # -- WinRS ---------------------------------------------------------------------------------
    async def _dispatch(self, req: Request, user: str) -> tuple[str, str]:
        if req.resource_uri != CMD_RESOURCE:
            raise Fault(
                "w:DestinationUnreachable",
                FAULT_BAD_RESOURCE,
                f"The WS-Management service cannot process the request: the resource URI "
                f"{req.resource_uri!r} is not supported by the lab (only {CMD_RESOURCE}).",
            )
        if req.action == ACTION_CREATE:
            return TRANSFER + "/CreateResponse", self._create(user, req.options)
        shell = self._shell(req.shell_id)
        if req.action == ACTION_DELETE:
            self.shells.pop(shell.id, None)
            shell.deleted.set()
            return TRANSFER + "/DeleteResponse", ""
        if req.action == ACTION_COMMAND:
            return SHELL_URI + "/CommandResponse", self._command(shell, req.body)
        if req.action == ACTION_RECEIVE:
            return SHELL_URI + "/ReceiveResponse", await self._receive(shell, req)
        if req.action == ACTION_SIGNAL:
            return SHELL_URI + "/SignalResponse", self._signal(shell, req.body)
        raise Fault(
            "a:ActionNotSupported",
            FAULT_ACTION_NOT_SUPPORTED,
            f"The WS-Management service does not support the action {req.action!r}.",
        )

    def _shell(self, shell_id: str | None) -> Shell:
        shell = self.shells.get(shell_id or "")
        if shell is None:
            raise Fault(
                "w:InvalidSelectors",
                FAULT_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed "
                "because the shell was not found on the server.",
            )
        shell.used = time.monotonic()
        return shell

    def _create(self, user: str, options: dict[str, str]) -> str:
        now = time.monotonic()
        for sid, old in list(self.shells.items()):
            if now - old.used > self.shell_idle_seconds:  # closed without Delete: expired
                del self.shells[sid]
        mine = [sh for sh in self.shells.values() if sh.user.lower() == user.lower()]
        if len(mine) >= self.max_shells_per_user:
            # ERROR_WSMAN_QUOTA_MAX_SHELLS, in the words of the WinRM service.
            raise Fault(
                "w:QuotaLimit",
                FAULT_QUOTA,
                "The WS-Management service cannot process the request. This user is allowed "
                f"a maximum number of {self.max_shells_per_user} concurrent shells, which has "
                "been exceeded. Close existing shells or raise the quota for this user.",
            )
        codepage = _codepage(options.get("WINRS_CODEPAGE"))
        shell = Shell(str(uuid.uuid4()).upper(), user, codepage)
        self.shells[shell.id] = shell
        return (
            f"<x:ResourceCreated><a:Address>{self.scheme}://{BIND_ADDRESS}:{self.port}/wsman"
            f"</a:Address><a:ReferenceParameters><w:ResourceURI>{CMD_RESOURCE}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet>'
            f"</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId><rsp:Owner>{escape(user)}"
            f"</rsp:Owner><rsp:InputStreams>stdin</rsp:InputStreams>"
            f"<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )

    def _command(self, shell: Shell, body: ET.Element) -> str:
        line_el = body.find("rsp:CommandLine", NS)
        if line_el is None:
            raise Fault("w:InvalidMessage", FAULT_BAD_ENVELOPE, "Command without rsp:CommandLine")
        command = (line_el.findtext("rsp:Command", "", NS) or "").strip()
        arguments = [a.text or "" for a in line_el.findall("rsp:Arguments", NS)]
        line = " ".join([command, *arguments])
        if len(line) > MAX_COMMAND_LINE:
            raise Fault(
                "w:InternalError",
                FAULT_COMMAND_TOO_LONG,
                "The filename or extension is too long. ",
                sender=False,
            )
        cmd = Command(str(uuid.uuid4()).upper())
        shell.commands[cmd.id] = cmd
        script = script_of(line)
        if script is None:
            cmd.finish(ScriptResult("", REFUSED + "\n", 1, clixml=False), shell.codepage)
        else:
            task = asyncio.create_task(self._run(shell, cmd, script))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"

    async def _run(self, shell: Shell, cmd: Command, script: str) -> None:
        host = self.host
        assert host is not None
        try:
            result = await run_script(host, script)
        except Exception:
            log.exception("%s: the lab failed to run a command", self.name)
            err = "amsm-lab: internal error in the lab (see its log)\n"
            cmd.finish(ScriptResult("", err, 1, clixml=False), shell.codepage)
            return
        if result is None:
            return  # down
        if not result.reboot:
            cmd.finish(result, shell.codepage)
            return
        await go_down(host, lambda: cmd.finish(result, shell.codepage), shell.deleted.wait())

    async def _receive(self, shell: Shell, req: Request) -> str:
        stream = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = (stream.get("CommandId") if stream is not None else None) or ""
        cmd = shell.commands.get(command_id)
        if cmd is None:
            raise Fault(
                "w:InvalidParameter",
                FAULT_SHELL_NOT_FOUND,
                f"The Windows Remote Shell received a request for CommandId {command_id!r}, "
                "which it does not know.",
            )
        try:
            await asyncio.wait_for(cmd.done.wait(), req.operation_timeout)
        except TimeoutError:
            raise Fault(
                "w:TimedOut",
                FAULT_TIMED_OUT,
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
                sender=False,
            ) from None
        budget = RECEIVE_CHUNK
        out, cmd.stdout = cmd.stdout[:budget], cmd.stdout[budget:]
        budget -= len(out)
        err, cmd.stderr = cmd.stderr[:budget], cmd.stderr[budget:]
        finished = not cmd.stdout and not cmd.stderr
        cid = escape(cmd.id)
        parts = []
        for name, data in (("stdout", out), ("stderr", err)):
            end = ' End="true"' if finished else ""
            text = base64.b64encode(data).decode("ascii")
            parts.append(f'<rsp:Stream Name="{name}" CommandId="{cid}"{end}>{text}</rsp:Stream>')
        if finished:
            parts.append(
                f'<rsp:CommandState CommandId="{cid}" State="{STATE_DONE}">'
                f"<rsp:ExitCode>{cmd.exit_status}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(f'<rsp:CommandState CommandId="{cid}" State="{STATE_RUNNING}"/>')
        return f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>"

    def _signal(self, shell: Shell, body: ET.Element) -> str:
        signal = body.find("rsp:Signal", NS)
        command_id = signal.get("CommandId") if signal is not None else None
        if command_id:
            # terminate (or ctrl_c): forget the command; a script that is still running
            # finishes its transaction anyway, like a process that ignores the signal.
            shell.commands.pop(command_id, None)
        return "<rsp:SignalResponse/>"


def _codepage(option: str | None) -> str:
    """The Python codec of a WINRS_CODEPAGE value (65001 is UTF-8); the OEM code page
    when none is asked for. A code page Windows would not know is a fault."""
    if not option:
        return OEM_CODEPAGE
    if option.strip() == "65001":
        return "utf-8"
    try:
        codec = f"cp{int(option)}"
        "".encode(codec)
    except (ValueError, LookupError):
        raise Fault(
            "w:InvalidOptions", FAULT_BAD_ENVELOPE, f"WINRS_CODEPAGE {option!r} is not valid"
        ) from None
    return codec


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def winrm_server(
    directory: Path,
    name: str,
    port: int,
    scheme: str,
    state: LabState,
    users: Users,
    allow_unencrypted: bool | None = None,
) -> WinRmServer:
    """The listener a lab host's inventory entry asks for (LabError-free: OSError, ValueError)."""
    tls = server_ssl_context(directory, name) if scheme == "https" else None
    return WinRmServer(name, port, state, users, tls, allow_unencrypted)
