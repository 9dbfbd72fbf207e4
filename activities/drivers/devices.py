"""Facts (read-only probes) and operations on the Windows hosts around the pair.

Every operation reads the device first and does nothing when it is already in the
wanted state, so running it twice is safe. Interlocks live here, in the driver
layer, so no caller can bypass them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from activities.drivers import powershell as ps
from activities.drivers.errors import (
    RULE_BROWSE_STOPPED,
    RULE_CLIENT_BRIDGE,
    RULE_INSYNC_STOPPED,
    RULE_PURGE_BACKUP_ONLY,
    CommandFailed,
    InterlockRefused,
)
from activities.drivers.host import HostDriver, reads_answers
from activities.drivers.interlocks import Overrides, with_forced
from inventory.models import (
    SIDES,
    BrowseComponent,
    DeviceSettings,
    Inventory,
    Side,
    SwitchableClient,
    other,
)
from inventory.status import ClientStatus, ServiceState


# -- facts ----------------------------------------------------------------------------------
@reads_answers
async def services(drv: HostDriver, names: list[str]) -> dict[str, str]:
    line = await drv.run_one(ps.get_services(names))
    return {
        str(s["Name"]): ps.parse_service_status(s.get("Status")) for s in ps.parse_json_list(line)
    }


@reads_answers
async def process_running(drv: HostDriver, name: str) -> bool:
    return bool(ps.parse_json_list(await drv.run_one(ps.get_process(name))))


@reads_answers
async def boot_time(drv: HostDriver) -> datetime:
    info = ps.parse_json_object(await drv.run_one(ps.boot_info()))
    return ps.parse_datetime(ps.prop(info, "LastBootUpTime"))


def _twin(active: str) -> str:
    return active[: -len(".exe.config")] + ".backup.exe.config"


def _tmp(active: str) -> str:
    return active[: -len(".exe.config")] + ".amsm-swap.exe.config"


def _join(folder: str, name: str) -> str:
    return folder.rstrip("\\") + "\\" + name


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
    stmts += [ps.get_content(_join(comp.config_dir, f)) for f in comp.config_files]
    lines = await drv.run(*stmts)
    svc = {
        str(s["Name"]): ps.parse_service_status(s.get("Status"))
        for s in ps.parse_json_list(lines[0])
    }
    file_sides: dict[str, Side | None] = {}
    for f, line in zip(comp.config_files, lines[1:], strict=True):
        file_sides[f] = inv.side_of_marker(ps.parse_json_string(line))
    states = [ServiceState(name=n, status=svc.get(n, "Missing")) for n in comp.services]
    return BrowseFacts(states, file_sides)


@reads_answers
async def smartbins_facts(drv: HostDriver, dev: DeviceSettings) -> tuple[bool, str | None]:
    svc_line, reg_line = await drv.run(
        ps.get_services([dev.smartbins_service]),
        ps.get_registry(dev.smartbins_registry, [dev.smartbins_mode_value]),
    )
    svc = ps.parse_json_object(svc_line)
    reg = ps.parse_json_object(reg_line)
    running = ps.parse_service_status(svc.get("Status")) == "Running"
    mode = reg.get(dev.smartbins_mode_value)
    return running, (str(mode) if mode is not None else None)


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


@reads_answers
async def client_facts(drv: HostDriver, client: SwitchableClient, inv: Inventory) -> ClientStatus:
    dev = inv.devices
    sess_line, v_line, reg_line = await drv.run(
        ps.iscsi_sessions(),
        ps.test_path("V:\\"),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
    )
    sessions = [
        str(s.get("TargetNodeAddress"))
        for s in ps.parse_json_list(sess_line)
        if s.get("IsConnected") in (True, "True")
    ]
    sides = {inv.side_of_target(t) for t in sessions} - {None}
    dsm_host = ps.parse_json_object(reg_line).get(dev.aurora_dsm_value)
    side: Side | None = None
    if len(sides) == 1:
        side = sides.pop()
    elif not sessions:
        side = next((s for s in SIDES if inv.sides[s].dsm.host == dsm_host), None)
    v_visible = ps.parse_bool(v_line)
    return ClientStatus(
        host=client.host,
        kind=client.kind,
        side=side,
        status="online" if v_visible else "no-volume",
    )


# -- operations ----------------------------------------------------------------------------
@reads_answers
async def smartbins_set(
    drv: HostDriver, dev: DeviceSettings, mode: Literal["Normal", "Pseudo"], run: bool
) -> str:
    """Put one SmartBins server in `mode`, running or stopped. No-op when it already is."""
    running, current = await smartbins_facts(drv, dev)
    if running == run and (current == mode or not run):
        state = f"running in {mode.lower()} mode" if run else "stopped"
        return f"SmartBins on {drv.name} already {state}"
    stmts = []
    if running:
        stmts.append(ps.stop_service(dev.smartbins_service))
    if run:
        stmts.append(ps.set_registry(dev.smartbins_registry, dev.smartbins_mode_value, mode))
        stmts.append(ps.start_service(dev.smartbins_service))
    await drv.run(*stmts)
    running, current = await smartbins_facts(drv, dev)
    if running != run or (run and current != mode):
        raise CommandFailed(
            drv.name,
            f"SmartBins did not take the new state: running={running}, mode={current}",
        )
    return f"SmartBins on {drv.name} " + (f"running in {mode.lower()} mode" if run else "stopped")


async def _browse_services(drv: HostDriver, comp: BrowseComponent, run: bool) -> str:
    """Start or stop every service of a Browse component; no-op for those already there."""
    want = "Running" if run else "Stopped"
    verb = "started" if run else "stopped"
    svc = await services(drv, comp.services)
    todo = [n for n in comp.services if svc.get(n) != want]
    if not todo:
        return f"Browse {comp.name} already {'running' if run else 'stopped'}"
    await drv.run(*[(ps.start_service if run else ps.stop_service)(n) for n in todo])
    svc = await services(drv, comp.services)
    still = [n for n in comp.services if svc.get(n) != want]
    if still:
        raise CommandFailed(drv.name, f"services not {verb}: {', '.join(still)}")
    return f"Browse {comp.name} {verb} ({', '.join(todo)})"


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
    if running:
        forced = ov.refuse(
            drv.name,
            RULE_BROWSE_STOPPED,
            f"Browse {comp.name} switches only when stopped; running: {', '.join(running)}",
            f"Browse {comp.name} was running ({', '.join(running)})",
        )
    swapped = []
    for f in comp.config_files:
        active = _join(comp.config_dir, f)
        backup = _join(comp.config_dir, _twin(f))
        tmp = _join(comp.config_dir, _tmp(f))
        has_active, has_backup, has_tmp = (
            ps.parse_bool(x)
            for x in await drv.run(ps.test_path(active), ps.test_path(backup), ps.test_path(tmp))
        )
        if has_tmp:
            # Finish an interrupted swap: active -> tmp, backup -> active, tmp -> backup.
            steps = []
            if not has_active and has_backup:
                steps.append(ps.rename_file(backup, f))
            steps.append(ps.rename_file(tmp, _twin(f)))
            await drv.run(*steps)
            swapped.append(f"{f} (interrupted swap completed)")
            continue
        if not (has_active and has_backup):
            raise CommandFailed(
                drv.name,
                f"{comp.name}: expected both {f} and {_twin(f)} in {comp.config_dir}",
            )
        content = ps.parse_json_string(await drv.run_one(ps.get_content(active)))
        if inv.side_of_marker(content) == to:
            continue
        await drv.run(
            ps.rename_file(active, _tmp(f)),
            ps.rename_file(backup, f),
            ps.rename_file(tmp, _twin(f)),
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


async def tool_set(drv: HostDriver, label: str, service: str, process: str, running: bool) -> str:
    """Start or stop InSync/AllSync through the service that runs it; no-op when it already is.

    Checked by the process, which is what the tool's own work depends on.
    """
    if await process_running(drv, process) == running:
        return f"{label} already {'running' if running else 'stopped'} on {drv.name}"
    await drv.run(ps.start_service(service) if running else ps.stop_service(service))
    if await process_running(drv, process) != running:
        state = "is not running" if running else "still runs"
        raise CommandFailed(drv.name, f"{label}: service {service} changed but {process} {state}")
    return f"{label} {'started' if running else 'stopped'} on {drv.name} (service {service})"


def insync_template(dev: DeviceSettings, main: Side) -> str:
    name = "InsyncXtoY.cfg" if main == "X" else "InsyncYtoX.cfg"
    return _join(dev.insync_cfg_dir, name)


@reads_answers
async def insync_set_main(
    drv: HostDriver, dev: DeviceSettings, main: Side, overrides: Overrides | None = None
) -> str:
    """Set the InSync direction main -> other. Refused while InSync runs (overridable)."""
    ov = overrides or Overrides()
    running, current = await insync_facts(drv, dev)
    target = _join(dev.insync_cfg_dir, "Insync.cfg")
    template = insync_template(dev, main)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    same_cfg = ps.parse_json_object(h_target).get("Hash") == ps.parse_json_object(h_template).get(
        "Hash"
    )
    if current == main and same_cfg:
        return f"InSync on {drv.name} already copies {main} -> {other(main)}"
    forced = None
    if running:
        forced = ov.refuse(
            drv.name,
            RULE_INSYNC_STOPPED,
            f"the InSync direction changes only while InSync is stopped; "
            f"{dev.insync_process} is running",
            f"InSync ({dev.insync_process}) was running",
        )
    await drv.run(
        ps.set_registry(dev.insync_registry, dev.insync_direction_value, main),
        ps.copy_file(template, target),
    )
    _, current = await insync_facts(drv, dev)
    h_target, h_template = await drv.run(ps.file_hash(target), ps.file_hash(template))
    if current != main or h_target != h_template:
        raise CommandFailed(drv.name, f"InSync direction did not take (registry says {current})")
    return with_forced(f"InSync on {drv.name} set to copy {main} -> {other(main)}", forced)


@reads_answers
async def client_prepare(
    drv: HostDriver,
    client: SwitchableClient,
    inv: Inventory,
    to: Side,
    overrides: Overrides | None = None,
) -> str:
    """Stop the Aurora software, move the iSCSI initiator and the DSM pointer to `to`.

    Refused when the client cannot reach `to`'s bridge K2 server (overridable: the
    probe may be blocked where iSCSI is not). No-op when the client is already
    configured for `to`.
    """
    ov = overrides or Overrides()
    dev = inv.devices
    target = inv.sides[to]
    # One round trip reads the client and probes the bridge (hundreds of clients
    # prepare at once; the probe costs the host little when it is not needed).
    sess_line, reg_line, port_line = await drv.run(
        ps.iscsi_sessions(),
        ps.get_registry(dev.aurora_registry, [dev.aurora_dsm_value]),
        ps.test_port(target.bridge.host, dev.iscsi_port),
    )
    sessions = [str(s.get("TargetNodeAddress")) for s in ps.parse_json_list(sess_line)]
    dsm_host = ps.parse_json_object(reg_line).get(dev.aurora_dsm_value)
    if sessions == [target.iscsi_target] and dsm_host == target.dsm.host:
        return f"{client.host} is already configured for {to}"
    reachable = ps.parse_bool(port_line)
    forced = None
    if not reachable:
        forced = ov.refuse(
            drv.name,
            RULE_CLIENT_BRIDGE,
            f"{client.host} cannot reach {to}'s bridge K2 server {target.bridge.host} "
            f"on port {dev.iscsi_port}",
            f"{client.host} did not reach {target.bridge.host} on port {dev.iscsi_port}",
        )
    stmts = [ps.stop_process(p) for p in dev.aurora_processes]
    stmts += [ps.iscsi_disconnect(t) for t in sessions if t != target.iscsi_target]
    if target.iscsi_target not in sessions:
        stmts.append(ps.iscsi_connect(target.iscsi_target, target.bridge.host))
    stmts.append(ps.set_registry(dev.aurora_registry, dev.aurora_dsm_value, target.dsm.host))
    await drv.run(*stmts)
    return with_forced(
        f"{client.host} reconfigured for {to} (iSCSI {target.iscsi_target}, DSM {target.dsm.host})",
        forced,
    )


async def client_verify(drv: HostDriver, client: SwitchableClient, inv: Inventory, to: Side) -> str:
    st = await client_facts(drv, client, inv)
    if st.side != to or st.status != "online":
        raise CommandFailed(
            drv.name,
            f"{client.host} does not see {to}'s V: volume "
            f"(side {st.side or 'unknown'}, {st.status})",
        )
    return f"{client.host} sees {to}'s V: volume"


# -- media: master clips and orphans ------------------------------------------------------------
CLIP_ROOT = "V:\\VibrantAVIFiles"
_CLIP_RE = re.compile(r"^[A-Za-z0-9 _.()-]+(\\[A-Za-z0-9 _.()-]+)*\.vmf$")


def _clip_ok(clip: str) -> bool:
    return bool(_CLIP_RE.match(clip)) and ".." not in clip.split("\\")


async def master_clips(drv: HostDriver) -> set[str]:
    """Master clips (.vmf folders) under V:\\VibrantAVIFiles, relative to it."""
    line = await drv.run_one(ps.list_folders(CLIP_ROOT, "*.vmf"))
    prefix = CLIP_ROOT.lower() + "\\"
    out = set()
    for item in ps.parse_json_list(line):
        full = str(item.get("FullName", ""))
        if full.lower().startswith(prefix):
            out.add(full[len(prefix) :])
    return out


async def purge_orphans(
    drv: HostDriver, host_side: Side, main: Side, clips: list[str], on_main: set[str]
) -> str:
    """Delete orphan master clips on the backup side's volume.

    Refused outright on the main side's volume, for a clip that exists on the main
    side (it is not an orphan), and for any name outside V:\\VibrantAVIFiles.
    """
    if host_side == main:
        raise InterlockRefused(
            drv.name,
            RULE_PURGE_BACKUP_ONLY,
            f"orphans are deleted only on the backup side's volume; {drv.name} is on {main}, "
            "the main side",
        )
    bad = [c for c in clips if not _clip_ok(c)]
    if bad:
        raise InterlockRefused(
            drv.name, RULE_PURGE_BACKUP_ONLY, f"not a master clip path: {', '.join(bad)}"
        )
    main_lower = {c.lower() for c in on_main}
    protected = [c for c in clips if c.lower() in main_lower]
    if protected:
        raise InterlockRefused(
            drv.name,
            RULE_PURGE_BACKUP_ONLY,
            f"exists on the main side, so not an orphan: {', '.join(protected)}",
        )
    present = await master_clips(drv)
    present_lower = {c.lower() for c in present}
    todo = [c for c in clips if c.lower() in present_lower]
    if todo:
        await drv.run(*[ps.remove_tree(f"{CLIP_ROOT}\\{c}") for c in todo])
    left = {c.lower() for c in await master_clips(drv)} & {c.lower() for c in todo}
    if left:
        raise CommandFailed(drv.name, f"still present after delete: {', '.join(sorted(left))}")
    gone = len(clips) - len(todo)
    return f"{len(todo)} orphan clip(s) deleted on {drv.name} ({host_side})" + (
        f"; {gone} already gone" if gone else ""
    )
