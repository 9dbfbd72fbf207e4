"""Operations on any Windows host: starting and stopping services, and restarting it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts.windows import by_name, dependency_tree
from activities.drivers.host import HostDriver, reads_answers

# How often a stop sent with -NoWait, or a start sent without waiting, is polled.
SERVICE_POLL_SECONDS = 0.2


# Statuses a dependent counts as running in (PowerShell's DoStopService lists the
# dependents that are Running or StartPending as stopped with the service): the ones a
# stop returns, for the caller to start again.
_STOPPED = ("Stopped", "StopPending")


@reads_answers
async def stop_services(
    drv: HostDriver,
    names: list[str],
    before: Callable[[list[str]], Awaitable[None]] | None = None,
) -> list[str]:
    """Stop the services, and first every service that depends on them, and wait at
    most the driver's timeout for all of them to stop.

    Never Stop-Service -Force: .NET's ServiceController.Stop(), under it, stops each
    running dependent and waits up to 30 s for it, and throws when one is slower. Each
    service is sent Stop-Service -NoWait once the services that depend on it are
    Stopped, from the end of the chain, and the stops are polled. Returns the
    dependents that were running (key names, not among `names`) so the caller can
    start them again; `before` is given them before anything is stopped (to keep
    them where a retry finds them). Refused by the host (Stop-Service without -Force)
    if a dependent is started again meanwhile. Raises CommandFailed naming the
    services still not stopped at the deadline, or a name the host has no service by.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drv.timeout
    found = by_name(names, await drv.run_one(ps.get_services(names)))
    missing = [n for n in names if n not in found]
    if missing:
        raise CommandFailed(drv.name, f"no such service: {', '.join(missing)}")
    asked = {n: str(ps.prop(found[n], "Name")) for n in names}
    keys = list(dict.fromkeys(asked.values()))
    tree, status = await dependency_tree(drv, keys)
    dependents = [k for k in tree if k not in keys and status.get(k) not in _STOPPED]
    if before is not None:
        await before(dependents)
    every = list(tree)
    shown = {k: k for k in every} | {key: n for n, key in asked.items()}
    sent: set[str] = set()
    while True:
        now = by_name(every, await drv.run_one(ps.get_services(every)))
        st = {
            k: ps.parse_service_status(now[k].get("Status")) if k in now else "Missing"
            for k in every
        }
        pending = [k for k in every if st[k] != "Stopped"]
        if not pending:
            return dependents
        ready = [
            k
            for k in pending
            if k not in sent
            and st[k] not in ("StopPending", "Missing")
            and all(st[d] == "Stopped" for d in tree[k])
        ]
        if ready:
            await drv.run(*[ps.stop_service(k) for k in ready])
            sent.update(ready)
            continue
        if loop.time() >= deadline:
            what = ", ".join(f"{shown[k]} ({st[k]})" for k in pending)
            raise CommandFailed(drv.name, f"services not stopped within {drv.timeout:g} s: {what}")
        await asyncio.sleep(SERVICE_POLL_SECONDS)


@reads_answers
async def start_services(drv: HostDriver, names: list[str]) -> None:
    """Start the services and wait at most the driver's timeout for all of them to run.

    Each Stopped one is asked to start without waiting (ps.start_service) and the
    starts are polled; a StopPending one is asked once it is Stopped; a StartPending
    or Running one is left to run. Refused by the host (its exception, as
    CommandFailed) for a disabled service. Raises CommandFailed naming a service that
    went back to Stopped after it was asked (it failed to start), the services still
    not running at the deadline with their status, or a name the host has no service
    by."""
    if not names:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drv.timeout
    sent: set[str] = set()
    while True:
        now = by_name(names, await drv.run_one(ps.get_services(names)))
        missing = [n for n in names if n not in now]
        if missing:
            raise CommandFailed(drv.name, f"no such service: {', '.join(missing)}")
        st = {n: ps.parse_service_status(now[n].get("Status")) for n in names}
        failed = [n for n in names if n in sent and st[n] == "Stopped"]
        if failed:
            # StartService returns with the service StartPending: Stopped again means
            # it stopped while starting.
            raise CommandFailed(
                drv.name, f"services stopped again while starting: {', '.join(failed)}"
            )
        pending = [n for n in names if st[n] != "Running"]
        if not pending:
            return
        ready = [n for n in pending if n not in sent and st[n] == "Stopped"]
        if ready:
            await drv.run(*[ps.start_service(n) for n in ready])
            sent.update(ready)
            continue
        if loop.time() >= deadline:
            what = ", ".join(f"{n} ({st[n]})" for n in pending)
            raise CommandFailed(drv.name, f"services not started within {drv.timeout:g} s: {what}")
        await asyncio.sleep(SERVICE_POLL_SECONDS)


async def restart(drv: HostDriver) -> None:
    """Send the host a restart (Restart-Computer -Force). Sent is all it says: the
    connection can drop as the host goes down, so an Unreachable here is not a failure;
    whether the host restarted is read from its boot (`boot`)."""
    with contextlib.suppress(Unreachable):
        await drv.run_one(ps.restart_computer())
