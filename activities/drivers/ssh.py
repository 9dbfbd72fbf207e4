"""SSH transport (OpenSSH for Windows) on asyncssh: public keys, host keys verified."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

import asyncssh

from activities.drivers import powershell as ps
from activities.drivers.credentials import Secret
from activities.drivers.errors import AuthenticationFailed, Unreachable
from activities.drivers.host import ExecResult, HostDriver
from inventory.models import Host


@lru_cache(maxsize=16)
def _known_hosts(path: str, mtime: float) -> asyncssh.SSHKnownHosts:
    return asyncssh.read_known_hosts(path)


@lru_cache(maxsize=16)
def _client_key(path: str, mtime: float) -> asyncssh.SSHKey:
    return asyncssh.read_private_key(path)


class SshHostDriver(HostDriver):
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
        try:
            kh = _known_hosts(str(self._known_hosts), self._known_hosts.stat().st_mtime)
            key_file = self._secret.key_file
            assert key_file is not None
            key = _client_key(str(key_file), key_file.stat().st_mtime)
        except (OSError, asyncssh.Error, ValueError) as e:
            raise AuthenticationFailed(h.host, f"cannot read key or known_hosts: {e}") from None
        try:
            async with asyncio.timeout(self.timeout):
                async with asyncssh.connect(
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
                ) as conn:
                    r = await conn.run(ps.encoded_command(script_text), check=False)
        except asyncssh.HostKeyNotVerifiable as e:
            raise AuthenticationFailed(
                h.host, f"host key not verified against {self._known_hosts}: {e.reason}"
            ) from None
        except asyncssh.PermissionDenied as e:
            raise AuthenticationFailed(
                h.host, f"user {self._secret.username!r} was refused: {e.reason}"
            ) from None
        except TimeoutError:
            raise Unreachable(h.host, f"no answer within {self.timeout:.0f} s") from None
        except (OSError, asyncssh.ConnectionLost, asyncssh.DisconnectError) as e:
            why = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
            raise Unreachable(h.host, f"cannot connect to {h.address}:{h.port} ({why})") from None
        out = r.stdout if isinstance(r.stdout, str) else (r.stdout or b"").decode()
        err = r.stderr if isinstance(r.stderr, str) else (r.stderr or b"").decode()
        status = r.exit_status if r.exit_status is not None else -1
        return ExecResult(status, out, err)
