"""`amsm lab serve`: every lab host's SSH server (and WinRM listener where the
inventory uses WinRM), reboots, and the DSM replicator.

The serve loop keeps the listeners in step with lab.db: a host whose `down_until`
is set is not listening; once that time has passed it boots (new boot time, V:
mounted from its persistent iSCSI targets, Aurora restarted on clients) and
listens again with the same host key and port. A host left down by an earlier
serve process is booted as soon as serve starts.

Refuses to start when the directory holds no complete lab, or a host's port is
taken (another serve on the same lab, usually).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import time
from pathlib import Path
from typing import Any

import asyncssh

from inventory.load import InventoryError, load_inventory
from lab import LabError
from lab.dsm import run_replicator
from lab.init import CLIENT_KEY, HOST_KEY_DIR, INVENTORY
from lab.media import sync_once
from lab.ssh import HostServer, load_authorized_keys, load_host_key
from lab.state import LabState
from lab.winrm import USERNAME, Users, WinRmServer, read_password, winrm_server, write_ntlm_users

log = logging.getLogger("amsm.lab.serve")

SUPERVISE_INTERVAL_SECONDS = 0.1
# A listener that failed to open (port taken) is retried this often, logged once.
RETRY_LISTEN_SECONDS = 5.0
MEDIA_SYNC_SECONDS = 0.5


def _raise_file_limit() -> None:
    """500 hosts mean 500 listeners plus the worker's connections: lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def migrate_winrm(doc: dict[str, Any], basic: bool) -> None:
    """A lab made before its hosts' documents held their WinRM service's settings: the
    service was set up for what `lab init` wrote in the inventory (Basic where it says
    basic), as `lab init` now records (lab/init.py)."""
    config = doc.get("winrm")
    if config is None:
        doc["winrm"] = config = {}
    config.setdefault("basic", basic)
    config.setdefault("allow_unencrypted", False)


def _servers(where: str | Path) -> tuple[LabState, str, dict[str, HostServer]]:
    directory = Path(where).expanduser().resolve()
    if not (directory / INVENTORY).is_file():
        raise LabError(
            f"{directory} holds no lab ({INVENTORY} is missing); run `amsm lab init --dir {directory}`"
        )
    state = LabState(directory)
    try:
        inventory = load_inventory(directory / INVENTORY)
    except InventoryError as e:
        raise LabError(e.explain()) from None
    with state.transaction() as txn:
        known = {n.lower(): n for n in txn.host_names()}
        for _, host in inventory.all_hosts():
            doc = txn.host(host.host)
            if host.transport == "winrm" and doc is not None:
                migrate_winrm(doc, host.winrm_settings.auth == "basic")
    pub = directory / f"{CLIENT_KEY}.pub"
    try:
        authorized = load_authorized_keys(pub)
    except (OSError, ValueError) as e:
        raise LabError(f"cannot read the lab's client key {pub}: {e}") from None
    servers: dict[str, HostServer] = {}
    users: Users | None = None
    for _, host in inventory.all_hosts():
        key = host.host.lower()
        if key in servers:
            continue  # several Browse components on one host
        if key not in known:
            raise LabError(f"{host.host} is in {INVENTORY} but not in lab.db; run `amsm lab init`")
        name = known[key]
        key_path = directory / HOST_KEY_DIR / f"{name}.key"
        try:
            host_key = load_host_key(key_path)
        except (OSError, ValueError) as e:
            raise LabError(f"cannot read the host key {key_path}: {e}") from None
        web: WinRmServer | None = None
        if host.transport == "winrm":
            users = users or _winrm_users(directory)
            w = host.winrm_settings
            try:
                web = winrm_server(directory, name, w.endpoint_port, w.scheme, state, users)
            except (OSError, ValueError) as e:
                raise LabError(
                    f"{name}: cannot set up its WinRM listener ({e}); run `amsm lab init`"
                ) from None
        servers[key] = HostServer(name, host.port, host_key, authorized, state, web)
    return state, inventory.pair, servers


def _winrm_users(directory: Path) -> Users:
    """The lab's WinRM logon: its password file, and an NTLM user file derived from it."""
    try:
        password = read_password(directory)
        ntlm = write_ntlm_users(directory, password)
    except OSError as e:
        raise LabError(f"cannot read the lab's WinRM password: {e}; run `amsm lab init`") from None
    return Users(USERNAME, password, ntlm)


class _Supervisor:
    """Keeps listeners in step with lab.db: down hosts closed, due hosts booted.

    Only this loop boots hosts, and only once their listener is closed, so a
    Restart-Computer still delivering its reply is never overtaken by the boot.
    """

    def __init__(self, state: LabState, servers: dict[str, HostServer]) -> None:
        self.state = state
        self.servers = servers
        self._failed_at: dict[str, float] = {}

    async def step(self) -> None:
        for name in await asyncio.to_thread(self.state.crash_due):
            log.info("%s: restarts by itself (boot loop)", name)
        down = {n.lower(): u for n, u in (await asyncio.to_thread(self.state.down_hosts)).items()}
        now = time.time()
        due: list[str] = []
        stops = []
        for key, until in down.items():
            server = self.servers.get(key)
            if server is None:
                continue
            if not server.restarting:
                # Marked down in lab.db by someone else: the host goes down now.
                server.restarting = True
                stops.append(server.stop())
            elif until <= now and server.listening:
                # A restart whose session went away before it closed the listener (its
                # handler was cancelled while the restart committed): down it goes now,
                # and it boots on the next round.
                stops.append(server.stop())
            elif until <= now:
                due.append(server.name)
        await asyncio.gather(*stops)
        booted = set()
        if due:
            booted = {n.lower() for n in await asyncio.to_thread(self.state.boot_due, due)}
        starts = []
        for key, server in self.servers.items():
            if key in booted:
                server.restarting = False
                log.info("%s: booted", server.name)
            if not server.listening and not server.restarting:
                starts.append(self._listen(server))
        await asyncio.gather(*starts)

    async def _listen(self, server: HostServer) -> None:
        failed = self._failed_at.get(server.name)
        if failed is not None and time.monotonic() - failed < RETRY_LISTEN_SECONDS:
            return
        try:
            await server.start()
        except OSError as e:
            if failed is None:
                log.error("%s: cannot listen on ports %s: %s", server.name, server.ports, e)
            self._failed_at[server.name] = time.monotonic()
        else:
            self._failed_at.pop(server.name, None)

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                # lab.db locked past the busy timeout, say: try again next round.
                log.exception("lab supervisor step failed")
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)


async def run_media_sync(state: LabState, interval: float = MEDIA_SYNC_SECONDS) -> None:
    """InSync and AllSync at work while they run (lab.media); a failed pass is logged."""
    while True:
        try:
            for change in await asyncio.to_thread(sync_once, state):
                log.info("%s", change)
        except Exception:
            log.exception("media sync pass failed")
        await asyncio.sleep(interval)


async def serve_lab(directory: str | Path, ready: asyncio.Event | None = None) -> None:
    """Serve the lab in `directory` until cancelled; set `ready` once every host listens.

    Raises LabError when the lab is incomplete or a port is already taken.
    """
    _raise_file_limit()
    state, pair, servers = await asyncio.to_thread(_servers, directory)
    d = state.dir
    supervisor = _Supervisor(state, servers)
    tasks: list[asyncio.Task[None]] = []
    try:
        down = await asyncio.to_thread(state.down_hosts)
        # Finish the reboots an earlier serve left behind; later ones wait for the loop.
        due = [name for name, until in down.items() if until <= time.time()]
        booted = {n.lower() for n in await asyncio.to_thread(state.boot_due, due)}
        for name in down:
            if name.lower() not in booted and name.lower() in servers:
                servers[name.lower()].restarting = True
        for server in servers.values():
            try:
                await server.start()
            except OSError as e:
                ports = ", ".join(str(p) for p in server.ports)
                raise LabError(
                    f"{server.name}: a port of {ports} on 127.0.0.1 is taken ({e.strerror}); "
                    "is another `amsm lab serve` running on this lab?"
                ) from None
        tasks.append(asyncio.create_task(run_replicator(d), name="lab-replicator"))
        tasks.append(asyncio.create_task(supervisor.run(), name="lab-supervisor"))
        tasks.append(asyncio.create_task(run_media_sync(state), name="lab-media-sync"))
        print(f"lab: serving {len(servers)} hosts for pair '{pair}' from {d}", flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Future()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in servers.values():
            await server.stop()
        state.close()


def main_serve(directory: str | Path) -> None:
    """Run serve_lab until Ctrl-C or SIGTERM; stop without a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncssh.set_log_level(logging.WARNING)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve_lab(directory)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    print("lab: stopped", flush=True)
