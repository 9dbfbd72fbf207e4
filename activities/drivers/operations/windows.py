"""Operations on any Windows host: starting and stopping services, and restarting it."""

from __future__ import annotations

import asyncio
import contextlib

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts.windows import services
from activities.drivers.host import HostDriver, reads_answers

# How often a stop that was sent with -NoWait is polled.
SERVICE_POLL_SECONDS = 0.2


@reads_answers
async def stop_services(drv: HostDriver, names: list[str]) -> list[str]:
    """Stop the services and wait at most the driver's timeout for them to stop.

    Stop-Service -Force also stops the services that depend on them; those that were
    running are returned (key names, not among `names`) so the caller can start them
    again. Raises CommandFailed naming the services still not stopped at the deadline.
    """
    asked = {n.lower() for n in names}
    dependents: list[str] = []
    for line in await drv.run(*[ps.get_dependent_services(n) for n in names]):
        for o in ps.parse_json_list(line):
            key, display = str(o.get("Name", "")), str(o.get("DisplayName", ""))
            running = ps.parse_service_status(o.get("Status")) == "Running"
            mine = key.lower() in asked or display.lower() in asked
            if running and not mine and key not in dependents:
                dependents.append(key)
    await drv.run(*[ps.stop_service(n) for n in names])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drv.timeout
    while True:
        svc = await services(drv, names)
        pending = [f"{n} ({svc.get(n, 'Missing')})" for n in names if svc.get(n) != "Stopped"]
        if not pending:
            return dependents
        if loop.time() >= deadline:
            raise CommandFailed(
                drv.name, f"services not stopped within {drv.timeout:g} s: {', '.join(pending)}"
            )
        await asyncio.sleep(SERVICE_POLL_SECONDS)


async def start_services(drv: HostDriver, names: list[str]) -> None:
    if names:
        await drv.run(*[ps.start_service(n) for n in names])


@reads_answers
async def restart_dependents(drv: HostDriver, names: list[str]) -> list[str]:
    """Start the stopped services that depend on `names` and start automatically (what
    a Stop-Service -Force of theirs stopped); returns their key names."""
    todo: list[str] = []
    for line in await drv.run(*[ps.get_dependent_services(n) for n in names]):
        for o in ps.parse_json_list(line):
            key = str(o.get("Name", ""))
            stopped = ps.parse_service_status(o.get("Status")) == "Stopped"
            start = o.get("StartType")
            auto = (ps.START_TYPE.get(start) if isinstance(start, int) else start) == "Automatic"
            if stopped and auto and key not in todo:
                todo.append(key)
    await start_services(drv, todo)
    return todo


async def restart(drv: HostDriver) -> None:
    """Send the host a restart (Restart-Computer -Force). Sent is all it says: the
    connection can drop as the host goes down, so an Unreachable here is not a failure;
    whether the host restarted is read from its boot (`boot`)."""
    with contextlib.suppress(Unreachable):
        await drv.run_one(ps.restart_computer())
