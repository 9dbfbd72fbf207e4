"""The facts the survey reads: the drivers' own fact functions (activities/drivers/facts/,
the DSM profiles' reads), each with the arguments it gets in the workflows, and the
survey's own probes (probes.py). One list, read by the survey on the worker and by
`amsm survey verify` and tests/unit/test_facts.py over the recorded answers: a fact whose
driver changes is surveyed and replayed as it now is.

A fact is read through a driver: a host fact through a HostDriver, a DSM fact through
its profile over the DSM driver's session (the statements DsmDriver.read and .readiness
send). Each returns what the drivers make of the answer; `plain` makes it JSON."""

from __future__ import annotations

from typing import Any

from activities.drivers.dsm_profiles import DsmProfile, Sql
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.surveys import probes
from activities.surveys.kinds import Args, DsmFact, HostFact
from activities.surveys.models import SurveyTarget, plain
from inventory.models import SIDES, Inventory


# -- the arguments the workflows give the drivers' facts --------------------------------
def _role_registry(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    dev = inv.devices
    keys = {
        "smartbins": {dev.smartbins_registry: [dev.smartbins_mode_value]},
        "control-point": {dev.insync_registry: [dev.insync_direction_value]},
        "client": {dev.aurora_registry: [dev.aurora_dsm_value]},
    }.get(t.role)
    return [(None, {"keys": keys})] if keys else []


def _role_services(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    dev = inv.devices
    names: list[str] = []
    if t.role == "smartbins":
        names = [dev.smartbins_service]
    elif t.role == "nas-cifs" and dev.allsync_service:
        names = [dev.allsync_service]
    elif t.role == "control-point" and dev.insync_service:
        names = [dev.insync_service]
    elif t.role == "browse":
        names = [s for b in _components(inv, t) for s in b.services]
    return [(None, {"names": names})] if names else []


def _role_processes(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    dev = inv.devices
    names = {
        "nas-cifs": [dev.allsync_process],
        "control-point": [dev.insync_process],
        "client": list(dev.aurora_processes),
    }.get(t.role, [])
    return [(n, {"name": n}) for n in names]


def _components(inv: Inventory, t: SurveyTarget) -> list[Any]:
    return [b for b in inv.browse if b.host.host.lower() == t.host.lower()]


def _per_component(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    return [(b.name, {"component": b.name}) for b in _components(inv, t)]


def _per_side(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    return [(s, {"to": s}) for s in SIDES]


def _portals(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    return [(s, {"portals": inv.sides[s].portals, "port": inv.devices.iscsi_port}) for s in SIDES]


def _pseudo_host(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    # The media steps list a side's V: on its PseudoSmartBins host (activities/media.py).
    side = inv.sides[t.side] if t.side else None
    return [(None, {})] if side and side.pseudo_host.host.lower() == t.host.lower() else []


def _component(inv: Inventory, args: Args) -> Any:
    return next(b for b in inv.browse if b.name == args["component"])


def _client(inv: Inventory, t: SurveyTarget) -> Any:
    return inv.client(t.host)


# -- the list -----------------------------------------------------------------------------
HOST_FACTS: list[HostFact] = [
    HostFact(
        "powershell_version",
        "$PSVersionTable.PSVersion, as every check reads it first (windows.powershell_version)",
        lambda d, i, t, a: windows_facts.powershell_version(d),
    ),
    HostFact(
        "uptime",
        "seconds since boot, from Win32_OperatingSystem (windows.uptime)",
        lambda d, i, t, a: windows_facts.uptime(d),
    ),
    HostFact(
        "clock",
        "the host's clock against the worker's (windows.clock)",
        lambda d, i, t, a: windows_facts.clock(d),
        volatile=True,
    ),
    HostFact(
        "winrm_config",
        "the WinRM service's quotas and authentication (windows.winrm_config)",
        lambda d, i, t, a: windows_facts.winrm_config(d),
    ),
    HostFact(
        "iscsi_persistent_logins",
        "the persistent logins, session or not (clients.persistent_logins: root\\wmi "
        "MSiSCSIInitiator_PersistentLoginClass)",
        lambda d, i, t, a: clients_facts.persistent_logins(d),
        roles=("client",),
    ),
    HostFact(
        "registry_values",
        "the registry values the role's steps read and write (windows.registry_values)",
        lambda d, i, t, a: windows_facts.registry_values(d, a["keys"]),
        roles=("smartbins", "control-point", "client"),
        calls=_role_registry,
    ),
    HostFact(
        "find_services",
        "the services the inventory names, key and display name (windows.find_services)",
        lambda d, i, t, a: windows_facts.find_services(d, a["names"]),
        roles=("smartbins", "nas-cifs", "control-point", "browse"),
        calls=_role_services,
    ),
    HostFact(
        "services",
        "the status of the services the inventory names (windows.services)",
        lambda d, i, t, a: windows_facts.services(d, a["names"]),
        roles=("smartbins", "nas-cifs", "control-point", "browse"),
        calls=_role_services,
    ),
    HostFact(
        "process_running",
        "whether each process the inventory names runs (windows.process_running)",
        lambda d, i, t, a: windows_facts.process_running(d, a["name"]),
        roles=("nas-cifs", "control-point", "client"),
        calls=_role_processes,
    ),
    HostFact(
        "smartbins_facts",
        "the SmartBins service and mode (smartbins.smartbins_facts)",
        lambda d, i, t, a: smartbins_facts.smartbins_facts(d, i.devices),
        roles=("smartbins",),
    ),
    HostFact(
        "insync_facts",
        "InSync running and its direction (sync_tools.insync_facts)",
        lambda d, i, t, a: sync_tools_facts.insync_facts(d, i.devices),
        roles=("control-point",),
    ),
    HostFact(
        "insync_files",
        "InSync's configuration files (sync_tools.insync_files_present)",
        lambda d, i, t, a: sync_tools_facts.insync_files_present(d, i.devices),
        roles=("control-point",),
    ),
    HostFact(
        "browse_facts",
        "a Browse component's services and configuration files (browse.browse_facts)",
        lambda d, i, t, a: browse_facts.browse_facts(d, _component(i, a), i),
        roles=("browse",),
        calls=_per_component,
    ),
    HostFact(
        "browse_files",
        "a Browse component's files and their twins (browse.config_files_present)",
        lambda d, i, t, a: browse_facts.config_files_present(d, _component(i, a)),
        roles=("browse",),
        calls=_per_component,
    ),
    HostFact(
        "client_facts",
        "a client's side and V: as the status reads them (clients.client_facts)",
        lambda d, i, t, a: clients_facts.client_facts(d, _client(i, t), i),
        roles=("client",),
    ),
    HostFact(
        "client_verify",
        "a client checked against each side, as after its switch (clients.client_verify)",
        lambda d, i, t, a: clients_facts.client_verify(d, _client(i, t), i, a["to"]),
        roles=("client",),
        calls=_per_side,
    ),
    HostFact(
        "iscsi_cmdlets",
        "the iSCSI cmdlets a client switch needs that the client lacks "
        "(clients.iscsi_cmdlets_missing)",
        lambda d, i, t, a: clients_facts.iscsi_cmdlets_missing(d),
        roles=("client",),
    ),
    HostFact(
        "iscsi_discovery",
        "the client's registered portals and discovered targets (clients.iscsi_discovery)",
        lambda d, i, t, a: clients_facts.iscsi_discovery(d),
        roles=("client",),
    ),
    HostFact(
        "portals_reachable",
        "whether the client reaches each side's portals (clients.portals_reachable)",
        lambda d, i, t, a: clients_facts.portals_reachable(d, a["portals"], a["port"]),
        roles=("client",),
        calls=_portals,
    ),
    HostFact(
        "volume_present",
        "whether V: is there (clients.volume_present)",
        lambda d, i, t, a: clients_facts.volume_present(d),
        roles=("client",),
    ),
    HostFact(
        "media_listing",
        "the master clips of the side's V: as the restore's orphan search lists them "
        "(media.media_listing)",
        lambda d, i, t, a: media_facts.media_listing(d),
        roles=("smartbins",),
        calls=_pseudo_host,
    ),
    *probes.HOST_PROBES,
]


def _status(profile: DsmProfile, sql: Sql) -> Any:
    mode, since = profile.read_mode(sql)
    rep = profile.read_replication(sql)
    assets = profile.assets(sql)
    return {
        "mode": mode,
        "mode_since": since,
        "replication": rep.state,
        "role": rep.role,
        "database_state": assets.state,
        "asset_count": assets.count,
    }


DSM_FACTS: list[DsmFact] = [
    DsmFact(
        "dsm_status",
        "mode, replication and asset count: the statements of DsmDriver.read, in order",
        _status,
    ),
    DsmFact(
        "dsm_readiness",
        "the replication jobs and the login's rights: DsmDriver.readiness",
        lambda p, sql: p.readiness(sql),
    ),
    *probes.DSM_PROBES,
]

FACTS: dict[str, HostFact | DsmFact] = {
    **{f.name: f for f in HOST_FACTS},
    **{f.name: f for f in DSM_FACTS},
}


def host_facts(t: SurveyTarget) -> list[HostFact]:
    return [f for f in HOST_FACTS if f.roles is None or t.role in f.roles]


async def read_host_fact(
    fact: HostFact, drv: HostDriver, inv: Inventory, t: SurveyTarget, args: Args
) -> Any:
    return plain(await fact.read(drv, inv, t, args))


def read_dsm_fact(fact: DsmFact, profile: DsmProfile, sql: Sql) -> Any:
    return plain(fact.read(profile, sql))
