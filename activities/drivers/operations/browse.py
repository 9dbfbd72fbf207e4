"""Operations on a Browse component: stopping and starting its services, and swapping its
config files so it points at the other side (interlock: only while stopped)."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts.browse import backup_name, browse_facts, twin_missing
from activities.drivers.facts.windows import services
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from activities.drivers.operations.windows import (
    restart_dependents,
    start_services,
    stop_services,
)
from activities.drivers.refusals import browse_switch_running
from inventory.models import BrowseComponent, Inventory, Side
from inventory.names import path_join


def _tmp(active: str) -> str:
    return active[: -len(".exe.config")] + ".amsm-swap.exe.config"


@reads_answers
async def _browse_services(drv: HostDriver, comp: BrowseComponent, run: bool) -> str:
    """Start or stop every service of a Browse component; no-op for those already there."""
    want = "Running" if run else "Stopped"
    verb = "started" if run else "stopped"
    svc = await services(drv, comp.services)
    todo = [n for n in comp.services if svc.get(n) != want]
    if not todo:
        return f"Browse {comp.name} already {'running' if run else 'stopped'}"
    also: list[str] = []
    if run:
        await start_services(drv, todo)
        also = await restart_dependents(drv, comp.services)
    else:
        also = await stop_services(drv, todo)
    svc = await services(drv, comp.services)
    still = [n for n in comp.services if svc.get(n) != want]
    if still:
        raise CommandFailed(drv.name, f"services not {verb}: {', '.join(still)}")
    extra = f"; dependent services {verb} too: {', '.join(also)}" if also else ""
    return f"Browse {comp.name} {verb} ({', '.join(todo)}){extra}"


async def browse_stop(drv: HostDriver, comp: BrowseComponent) -> str:
    return await _browse_services(drv, comp, run=False)


async def browse_start(drv: HostDriver, comp: BrowseComponent) -> str:
    return await _browse_services(drv, comp, run=True)


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
    no = browse_switch_running(comp.name, running)
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
        return with_forced(f"Browse {comp.name} already points at {to}", forced)
    return with_forced(f"Browse {comp.name} switched to {to} ({', '.join(swapped)})", forced)
