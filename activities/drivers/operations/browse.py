"""Operations on a Browse component: stopping and starting its services, and swapping its
config files so it points at the other side (interlock: only while stopped)."""

from __future__ import annotations

import json

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.browse import (
    backup_name,
    browse_facts,
    dependents_record,
    stopped_dependents,
    twin_missing,
)
from activities.drivers.facts.windows import find_services, services
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.operations.windows import start_services, stop_services
from activities.drivers.plans import browse as plans
from inventory.models import BrowseComponent, Inventory, Side
from inventory.names import path_join


def _tmp(active: str) -> str:
    return active[: -len(".exe.config")] + ".amsm-swap.exe.config"


@reads_answers
async def browse_stop(drv: HostDriver, comp: BrowseComponent) -> str:
    """Stop every service of the component, and first the services that depend on them
    (stop_services). The dependents that were running are recorded on the host
    (dependents_record) before anything is stopped, added to what an interrupted stop
    recorded, so the start brings back exactly those. No-op when already stopped."""
    svc = await services(drv, comp.services)
    plan = plans.stop(comp.name, drv.name, svc, comp.services)
    if plan.nothing_to_do:
        return plan.done
    todo = [n for n in comp.services if svc.get(n) != "Stopped"]
    path = dependents_record(comp)
    recorded = await stopped_dependents(drv, path)

    async def keep(running: list[str]) -> None:
        both = (recorded or []) + [d for d in running if d not in (recorded or [])]
        if both and both != recorded:
            # JSON with \u escapes: ASCII whatever the names, as Set-Content -Encoding
            # ASCII writes it.
            await drv.run(ps.set_content(path, [json.dumps(both)]))

    also = await stop_services(drv, todo, before=keep)
    svc = await services(drv, comp.services)
    still = [n for n in comp.services if svc.get(n) != "Stopped"]
    if still:
        raise CommandFailed(drv.name, f"services not stopped: {', '.join(still)}")
    extra = f"; dependent services stopped too: {', '.join(also)}" if also else ""
    return f"{plan.done}{extra}"


@reads_answers
async def browse_start(drv: HostDriver, comp: BrowseComponent) -> str:
    """Start every service of the component, then exactly the dependent services its
    stop recorded as running (dependents_record), and remove the record once they all
    run. A recorded service the host no longer has, or that is Disabled now, is named,
    not started (the others are). Each start is sent without waiting and polled within
    the driver's timeout (start_services). Without a
    record no dependent is started (the stop was not amsm's). No-op when all run."""
    svc = await services(drv, comp.services)
    plan = plans.start(comp.name, drv.name, svc, comp.services)
    todo = plans.start_todo(svc, comp.services)
    if todo:
        await start_services(drv, todo)
    path = dependents_record(comp)
    recorded = await stopped_dependents(drv, path)
    started: list[str] = []
    gone: list[str] = []
    disabled: list[str] = []
    if recorded:
        found = await find_services(drv, recorded)
        gone = [d for d in recorded if found.get(d) is None]
        # Disabled since the stop (an administrator's choice): the host would refuse
        # it, and the refusal would leave the other dependents stopped.
        disabled = [
            d for d in recorded if (f := found.get(d)) is not None and f.start_type == "Disabled"
        ]
        here = [d for d in recorded if d not in gone and d not in disabled]
        now = await services(drv, here) if here else {}
        started = [d for d in here if now.get(d) != "Running"]
        await start_services(drv, started)
    svc = await services(drv, comp.services + [d for d in recorded or [] if d not in gone])
    still = [n for n in comp.services + started if svc.get(n) != "Running"]
    if still:
        raise CommandFailed(drv.name, f"services not started: {', '.join(still)}")
    if recorded is not None:
        await drv.run(ps.remove_item(path))
    if plan.nothing_to_do and not started:
        return plan.done
    extra = f"; dependent services started too: {', '.join(started)}" if started else ""
    if gone:
        extra += f"; recorded dependents the host no longer has: {', '.join(gone)}"
    if disabled:
        extra += (
            f"; recorded dependents disabled since the stop, not started: {', '.join(disabled)}"
        )
    if plan.nothing_to_do:
        return f"Browse {comp.name} started (already running){extra}"
    return f"{plan.done}{extra}"


@reads_answers
async def browse_switch(
    drv: HostDriver,
    comp: BrowseComponent,
    inv: Inventory,
    to: Side,
    overrides: Overrides | None = None,
) -> str:
    """Swap each config file with its twin so the component points at `to`.

    Refused unless every service of the component is stopped (overridable: the files
    are then swapped under the running services, which read them at their next
    start). A swap that was interrupted half-way (the temporary name exists) is
    completed first.
    """
    ov = overrides or Overrides()
    svc = await services(drv, comp.services)
    running = [n for n in comp.services if svc.get(n) != "Stopped"]
    forced = None
    # Its side is read file by file below: the plan decides the refusal here.
    no = plans.switch(comp.name, drv.name, running, None, to).refusal
    if no is not None:
        forced = ov.refuse(drv.name, no.rule, no.refusal, no.forced)
    swapped = []
    for f in comp.config_files:
        active = path_join(comp.config_dir, f)
        backup = path_join(comp.config_dir, backup_name(f))
        tmp = path_join(comp.config_dir, _tmp(f))
        has_active, has_backup, has_tmp = (
            ps.parse_bool(x)
            for x in await drv.run(ps.test_path(active), ps.test_path(backup), ps.test_path(tmp))
        )
        if has_tmp:
            # Finish an interrupted swap: active -> tmp, backup -> active, tmp -> backup.
            steps = []
            if not has_active and has_backup:
                steps.append(ps.rename_file(backup, f))
            steps.append(ps.rename_file(tmp, backup_name(f)))
            await drv.run(*steps)
            swapped.append(f"{f} (interrupted swap completed)")
            continue
        if not (has_active and has_backup):
            raise CommandFailed(drv.name, twin_missing(comp, f))
        content = ps.parse_json_string(await drv.run_one(ps.get_content(active)))
        if inv.side_of_marker(content) == to:
            continue
        await drv.run(
            ps.rename_file(active, _tmp(f)),
            ps.rename_file(backup, f),
            ps.rename_file(tmp, backup_name(f)),
        )
        swapped.append(f)
    after = await browse_facts(drv, comp, inv)
    if after.side != to:
        raise CommandFailed(
            drv.name,
            f"Browse {comp.name} does not point at {to} after the swap (files: {after.file_sides})",
        )
    if not swapped:
        return with_forced(plans.switch(comp.name, drv.name, [], to, to).done, forced)
    done = plans.switch(comp.name, drv.name, [], None, to).done
    return with_forced(f"{done} ({', '.join(swapped)})", forced)
