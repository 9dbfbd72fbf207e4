"""What every device activity shares, whatever the device family: the inventory, the
credentials (resolved on the worker: inputs and results carry host names, never a
secret), a driver for a host or a DSM, the pair check, finding a client or Browse
components by name, the limit on parallel reads, and waiting for a device's state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from temporalio.exceptions import ApplicationError

from activities.drivers.credentials import CredentialStore
from activities.drivers.dsm import DsmDriver
from activities.drivers.errors import CommandFailed
from activities.drivers.host import HostDriver
from activities.drivers.ssh import SshHostDriver
from activities.drivers.winrm import WinRmHostDriver
from inventory.blackout import HORIZON, BlackoutError, Window, expand
from inventory.models import BrowseComponent, Host, Inventory, Side, SwitchableClient

T = TypeVar("T")

# Reads of a probe in flight at once: a facility has hundreds of clients.
PROBE_LIMIT = 64


class DeviceContext:
    def __init__(self, inventory: Inventory, inventory_path: str | Path) -> None:
        self.inv = inventory
        self.inventory_path = Path(inventory_path)
        self.creds = CredentialStore(inventory, inventory_path)
        self._probe_limit = asyncio.Semaphore(PROBE_LIMIT)

    def blackout_windows(self) -> list[Window]:
        """The inventory's blackout windows from now over the horizon (.ics files read
        now); a rule or file that cannot be read fails the activity with what is wrong,
        not retried (docs/operators/blackout.md)."""
        if not self.inv.blackout:
            return []
        now = datetime.now(UTC)
        base = self.inventory_path.resolve().parent
        try:
            return expand(self.inv.blackout, self.inv.timezone, base, now, now + HORIZON)
        except BlackoutError as e:
            raise ApplicationError(str(e), type="ConfigurationError", non_retryable=True) from None

    def host(self, host: Host) -> HostDriver:
        """A driver for `host`, over its transport, with its credentials."""
        t = self.inv.timing
        if host.transport == "winrm":
            ca = host.winrm_settings.ca_file
            return WinRmHostDriver(
                host,
                self.creds.resolve(host.credentials),
                self.creds.resolve_file(ca) if ca else None,
                connect_timeout=t.connect_timeout,
                timeout=t.operation_timeout,
            )
        return SshHostDriver(
            host,
            self.creds.resolve(host.credentials),
            self.creds.known_hosts,
            connect_timeout=t.connect_timeout,
            timeout=t.operation_timeout,
        )

    def dsm(self, side: Side) -> DsmDriver:
        d = self.inv.sides[side].dsm
        secret = self.creds.resolve(d.credentials) if d.credentials else None
        return DsmDriver(d, side, secret, timeout=self.inv.timing.connect_timeout)

    def check_pair(self, pair: str) -> None:
        """Refuse an activity meant for another pair's worker."""
        if pair != self.inv.pair:
            raise CommandFailed(
                "worker", f"this worker serves pair {self.inv.pair!r}, not {pair!r}"
            )

    def client(self, name: str) -> SwitchableClient:
        try:
            return self.inv.client(name)
        except KeyError:
            raise CommandFailed(
                "worker", f"{name} is not a switchable client in the inventory"
            ) from None

    def components(
        self, names: list[str] | None, hosts: list[str] | None = None
    ) -> list[BrowseComponent]:
        """The Browse components on `hosts`, else those named, else all of them."""
        if hosts:
            by_host = [
                b for b in self.inv.browse if b.host.host.lower() in {h.lower() for h in hosts}
            ]
            found = {b.host.host.lower() for b in by_host}
            unknown = [h for h in hosts if h.lower() not in found]
            if unknown:
                on = sorted({b.host.host for b in self.inv.browse})
                raise CommandFailed(
                    "worker",
                    f"no Browse component on {', '.join(unknown)}; Browse hosts: {', '.join(on)}",
                )
            return by_host
        if names is None:
            return list(self.inv.browse)
        known = {b.name: b for b in self.inv.browse}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandFailed(
                "worker",
                f"unknown Browse component(s) {', '.join(unknown)}; known: {', '.join(known)}",
            )
        return [known[n] for n in names]

    async def limited(self, coro: Coroutine[Any, Any, T]) -> T:
        """`coro`, within the limit on parallel reads. A read cancelled while it waits
        for its turn (its activity cancelled, the worker stopping) never began: it is
        closed, not left to be reported as a coroutine never awaited."""
        try:
            async with self._probe_limit:
                return await coro
        finally:
            coro.close()  # a no-op on one that ran

    async def wait(self, what: str, check: Callable[[], Awaitable[bool]], host: str) -> None:
        """Poll `check` until it holds; CommandFailed (naming `host`) after the
        inventory's replication timeout."""
        timing = self.inv.timing
        deadline = time.monotonic() + timing.replication_timeout
        while not await check():
            if time.monotonic() > deadline:
                raise CommandFailed(
                    host, f"{what}: not reached within {timing.replication_timeout:.0f} s"
                )
            await asyncio.sleep(min(0.5, timing.poll_interval))
