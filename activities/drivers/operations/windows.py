"""Operations on any Windows host: starting and stopping services, and restarting it."""

from __future__ import annotations

import asyncio
import contextlib

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts.windows import by_name
from activities.drivers.host import HostDriver, reads_answers

# How often a stop that was sent with -NoWait is polled.
SERVICE_POLL_SECONDS = 0.2


# Statuses a dependent counts as running in (PowerShell's DoStopService lists the
# dependents that are Running or StartPending as stopped with the service): the ones a
# stop returns, for the caller to start again.
_STOPPED = ("Stopped", "StopPending")


async def _dependency_tree(
    drv: HostDriver, keys: list[str]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """{key: the keys of the services that depend on it} for `keys` and every service
    below them, and each one's status, one level per script (Get-Service
    -DependentServices answers with the dependents that ServiceController.DependentServices
    lists: EnumDependentServices, which a real host may answer with the indirect ones
    too; asking each again costs nothing and misses none)."""
    tree: dict[str, list[str]] = {}
    status: dict[str, str] = {}
    todo = list(keys)
    while todo:
        answers = await drv.run(*[ps.get_dependent_services(k) for k in todo])
        found: list[str] = []
        for k, line in zip(todo, answers, strict=True):
            tree[k] = []
            for o in ps.parse_json_list(line):
                key = str(ps.prop(o, "Name"))
                status[key] = ps.parse_service_status(ps.prop(o, "Status"))
                if key not in tree[k]:
                    tree[k].append(key)
                if key not in tree and key not in found and key not in todo:
                    found.append(key)
        todo = found
        if len(tree) > 200:
            raise CommandFailed(drv.name, "more than 200 dependent services: not stopped")
    return tree, status


@reads_answers
async def stop_services(drv: HostDriver, names: list[str]) -> list[str]:
    """Stop the services, and first every service that depends on them, and wait at
    most the driver's timeout for all of them to stop.

    Never Stop-Service -Force: .NET's ServiceController.Stop(), under it, stops each
    running dependent and waits up to 30 s for it, and throws when one is slower. Each
    service is sent Stop-Service -NoWait once the services that depend on it are
    Stopped, from the end of the chain, and the stops are polled. Returns the
    dependents that were running (key names, not among `names`) so the caller can
    start them again. Refused by the host (Stop-Service without -Force) if a dependent
    is started again meanwhile. Raises CommandFailed naming the services still not
    stopped at the deadline, or a name the host has no service by.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drv.timeout
    found = by_name(names, await drv.run_one(ps.get_services(names)))
    missing = [n for n in names if n not in found]
    if missing:
        raise CommandFailed(drv.name, f"no such service: {', '.join(missing)}")
    asked = {n: str(ps.prop(found[n], "Name")) for n in names}
    keys = list(dict.fromkeys(asked.values()))
    tree, status = await _dependency_tree(drv, keys)
    dependents = [k for k in tree if k not in keys and status.get(k) not in _STOPPED]
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
