"""Facts of a Browse component: its services' states, and the side its config files point at."""

from __future__ import annotations

import json
from dataclasses import dataclass

from activities.drivers import powershell as ps
from activities.drivers.facts.windows import by_name
from activities.drivers.host import HostDriver, reads_answers
from inventory.models import BrowseComponent, Inventory, Side
from inventory.names import path_join
from inventory.status import ServiceState


def backup_name(active: str) -> str:
    """The twin of an active config file: `K2_MDI_Service.exe.config` ->
    `K2_MDI_Service.backup.exe.config` (K2-FACTS.md, Browse config files)."""
    return active[: -len(".exe.config")] + ".backup.exe.config"


def twin_missing(comp: BrowseComponent, active: str) -> str:
    """What a Browse switch says of a config file without its twin (or a twin without
    its file): it swaps the two, so it needs both."""
    return f"{comp.name}: expected both {active} and {backup_name(active)} in {comp.config_dir}"


def dependents_record(comp: BrowseComponent) -> str:
    """Where a stop keeps the dependent services it found running, for the start: a
    file next to the component's config files, on the host itself, so a retried stop,
    a start in another run (a console control) or on another worker finds it."""
    return path_join(comp.config_dir, f"amsm-{comp.name}.stopped-dependents.json")


@reads_answers
async def stopped_dependents(drv: HostDriver, path: str) -> list[str] | None:
    """The dependents a stop recorded (key names), None when there is no record."""
    if not ps.parse_bool(await drv.run_one(ps.test_path(path))):
        return None
    text = ps.parse_json_string(await drv.run_one(ps.get_content(path)))
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ps.BadOutput(f"{path} is not a list of service names: {text[:80]!r}")
    return names


@dataclass
class BrowseFacts:
    services: list[ServiceState]
    file_sides: dict[str, Side | None]  # active file name -> side it points at

    @property
    def running(self) -> bool:
        return all(s.status == "Running" for s in self.services)

    @property
    def stopped(self) -> bool:
        return all(s.status == "Stopped" for s in self.services)

    @property
    def side(self) -> Side | None:
        sides = set(self.file_sides.values())
        return next(iter(sides)) if len(sides) == 1 else None


@reads_answers
async def browse_facts(drv: HostDriver, comp: BrowseComponent, inv: Inventory) -> BrowseFacts:
    stmts = [ps.get_services(comp.services)]
    stmts += [ps.get_content(path_join(comp.config_dir, f)) for f in comp.config_files]
    lines = await drv.run(*stmts)
    svc = {
        n: ps.parse_service_status(o.get("Status"))
        for n, o in by_name(comp.services, lines[0]).items()
    }
    file_sides: dict[str, Side | None] = {}
    for f, line in zip(comp.config_files, lines[1:], strict=True):
        file_sides[f] = inv.side_of_marker(ps.parse_json_string(line))
    states = [ServiceState(name=n, status=svc.get(n, "Missing")) for n in comp.services]
    return BrowseFacts(states, file_sides)


@reads_answers
async def config_files_present(drv: HostDriver, comp: BrowseComponent) -> dict[str, bool]:
    """Whether each config file of the component and its `.backup` twin exist, by path:
    a Browse switch swaps the two, so it needs both."""
    paths = []
    for f in comp.config_files:
        paths += [path_join(comp.config_dir, f), path_join(comp.config_dir, backup_name(f))]
    answers = await drv.run(*[ps.test_path(p) for p in paths])
    return {p: ps.parse_bool(a) for p, a in zip(paths, answers, strict=True)}
