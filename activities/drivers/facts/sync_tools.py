"""Facts of the sync tools: whether InSync runs on the Control Point PC, and its direction.

AllSync's one fact is whether its process runs (windows.process_running).
"""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.host import HostDriver, reads_answers
from inventory.models import SIDES, DeviceSettings, Side
from inventory.names import path_join


def insync_template(dev: DeviceSettings, main: Side) -> str:
    """The InSync configuration for `main` as master (K2-FACTS.md: copied over the active
    one to set the direction)."""
    name = "InsyncXtoY.cfg" if main == "X" else "InsyncYtoX.cfg"
    return path_join(dev.insync_cfg_dir, name)


def insync_active_cfg(dev: DeviceSettings) -> str:
    return path_join(dev.insync_cfg_dir, "Insync.cfg")


@reads_answers
async def insync_files_present(drv: HostDriver, dev: DeviceSettings) -> dict[str, bool]:
    """Whether the active InSync configuration and both templates exist, by path: setting
    the direction compares the active one with a template and copies it over."""
    paths = [insync_active_cfg(dev), *(insync_template(dev, s) for s in SIDES)]
    answers = await drv.run(*[ps.test_path(p) for p in paths])
    return {p: ps.parse_bool(a) for p, a in zip(paths, answers, strict=True)}


@reads_answers
async def insync_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, Side | None]:
    proc_line, reg_line = await drv.run(
        ps.get_process(dev.insync_process),
        ps.get_registry(dev.insync_registry, [dev.insync_direction_value]),
    )
    running = bool(ps.parse_json_list(proc_line))
    value = ps.parse_json_object(reg_line).get(dev.insync_direction_value)
    main: Side | None = value if value in SIDES else None
    return running, main
