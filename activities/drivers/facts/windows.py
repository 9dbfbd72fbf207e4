"""Facts of any Windows host: its services, its processes, and when it booted."""

from __future__ import annotations

import time
from dataclasses import dataclass

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.host import HostDriver, reads_answers


def by_name(names: list[str], line: str) -> dict[str, dict[str, object]]:
    """Get-Service's objects by the names asked for: a name may be the key name or the
    display name (Get-Service -Name accepts both and answers with the key name in
    Name), compared without regard to case."""
    objs = ps.parse_json_list(line)
    out: dict[str, dict[str, object]] = {}
    for n in names:
        low = n.lower()
        for o in objs:
            if low in (str(o.get("Name", "")).lower(), str(o.get("DisplayName", "")).lower()):
                out[n] = o
                break
    return out


@reads_answers
async def services(drv: HostDriver, names: list[str]) -> dict[str, str]:
    """The status of each service, keyed by the name asked for (key or display name)."""
    line = await drv.run_one(ps.get_services(names))
    return {n: ps.parse_service_status(o.get("Status")) for n, o in by_name(names, line).items()}


@dataclass(frozen=True)
class ServiceName:
    """A service the host has, as asked for: its key (service) name and display name."""

    key: str
    display: str
    # Automatic, Manual, Disabled, ... (ServiceController.StartType); None when not told.
    start_type: str | None = None


@reads_answers
async def find_services(drv: HostDriver, names: list[str]) -> dict[str, ServiceName | None]:
    """For each name asked for (key or display name), the service it names, or None when
    the host has no such service."""
    found = by_name(names, await drv.run_one(ps.find_services(names)))
    out: dict[str, ServiceName | None] = {}
    for n in names:
        o = found.get(n)
        if o is None:
            out[n] = None
            continue
        start = o.get("StartType")
        out[n] = ServiceName(
            str(o.get("Name", "")),
            str(o.get("DisplayName", "")),
            ps.START_TYPE.get(start) if isinstance(start, int) else _text(start),
        )
    return out


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@reads_answers
async def dependency_tree(
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
async def process_running(drv: HostDriver, name: str) -> bool:
    return bool(ps.parse_json_list(await drv.run_one(ps.get_process(name))))


@reads_answers
async def uptime(drv: HostDriver) -> float:
    """Seconds since the host booted: its time now minus its boot time, both read in one
    instance, so a step of the host's clock (which moves both) does not change it, and
    each with its own offset from UTC, so a reading in the hour daylight saving repeats
    in the autumn is not an hour off (ps.os_times)."""
    info = ps.parse_json_object(await drv.run_one(ps.os_times()))
    booted = ps.parse_cim_datetime(ps.prop(info, "LastBootUpTime"))
    now = ps.parse_cim_datetime(ps.prop(info, "LocalDateTime"))
    seconds = (now - booted).total_seconds()
    if seconds < 0:
        raise ps.BadOutput(f"booted after its own time now ({booted} > {now})")
    return seconds


@dataclass(frozen=True)
class Boot:
    """When a host booted, on the worker's clock: between `earliest` and `latest`, the
    round trip of the reading (the host's clock plays no part: its uptime does)."""

    earliest: float
    latest: float

    def after(self, moment: float, tolerance: float) -> bool:
        """A boot later than the one that happened at or before `moment`: later by more
        than `tolerance` (worker clocks, one worker and the next, may disagree a little)."""
        return self.earliest > moment + tolerance


async def boot(drv: HostDriver) -> Boot:
    sent = time.time()
    up = await uptime(drv)
    return Boot(earliest=sent - up, latest=time.time() - up)


@dataclass(frozen=True)
class HostClock:
    """The host's clock against the worker's: `skew` seconds ahead (negative: behind),
    give or take `uncertainty` (half the round trip of the reading)."""

    skew: float
    uncertainty: float


@reads_answers
async def clock(drv: HostDriver) -> HostClock:
    """The host's time now (Win32_OperatingSystem.LocalDateTime, with its offset from
    UTC) against the worker's clock at the middle of the round trip. Reading it is also
    the plainest proof that the host answers over its transport with its credentials."""
    sent = time.time()
    info = ps.parse_json_object(await drv.run_one(ps.os_times()))
    received = time.time()
    host_now = ps.parse_cim_datetime(ps.prop(info, "LocalDateTime")).timestamp()
    return HostClock(skew=host_now - (sent + received) / 2, uncertainty=(received - sent) / 2)


@reads_answers
async def powershell_version(drv: HostDriver) -> tuple[int, int]:
    """The host's PowerShell ($PSVersionTable.PSVersion: major, minor), in a script of its
    own that any PowerShell from 2.0 on runs: the plainest proof that the host answers
    over its transport with its credentials, even where it is too old for the rest."""
    major, minor = await drv.run(*ps.POWERSHELL_VERSION)
    return ps.parse_version_part(major), ps.parse_version_part(minor)


@reads_answers
async def registry_values(
    drv: HostDriver, keys: dict[str, list[str]]
) -> dict[str, list[str] | None]:
    """For each registry key (a PowerShell path, `HKLM:\\...`) the names of the values
    asked for that it lacks, or None when the key itself is missing. Test-Path answers
    for keys only (the registry provider's items); Get-ItemProperty | Select-Object
    writes every property asked for, null for a value the key does not have."""
    paths = list(keys)
    present = [ps.parse_bool(a) for a in await drv.run(*[ps.test_path(p) for p in paths])]
    there = [p for p, ok in zip(paths, present, strict=True) if ok]
    out: dict[str, list[str] | None] = {p: None for p in paths}
    if there:
        answers = await drv.run(*[ps.get_registry(p, keys[p]) for p in there])
        for p, line in zip(there, answers, strict=True):
            values = ps.parse_json_object(line)
            out[p] = [n for n in keys[p] if ps.prop(values, n) is None]
    return out


@dataclass(frozen=True)
class WinRmConfig:
    """The host's WinRM service settings that decide whether the worker gets in."""

    max_shells_per_user: int
    max_concurrent_operations_per_user: int
    allow_unencrypted: bool
    basic: bool


def _setting(line: str, name: str) -> str:
    obj = ps.parse_json_object(line)
    if str(ps.prop(obj, "Name")).lower() != name.lower():
        raise ps.BadOutput(f"expected the setting {name}, got {obj.get('Name')!r}")
    value = ps.prop(obj, "Value")
    if not isinstance(value, str):
        raise ps.BadOutput(f"{name}: expected text, got {value!r}")
    return value


def parse_winrm_config(answers: list[str]) -> WinRmConfig:
    names = list(ps.WSMAN_SETTINGS)
    if len(answers) != len(names):
        raise ps.BadOutput(f"expected {len(names)} settings, got {len(answers)}")
    values = {n: _setting(a, n) for n, a in zip(names, answers, strict=True)}

    def number(name: str) -> int:
        v = values[name].strip()
        if not v.isascii() or not v.isdigit():
            raise ps.BadOutput(f"{name}: expected a number, got {v[:40]!r}")
        return int(v)

    def flag(name: str) -> bool:
        v = values[name].strip().lower()
        if v not in ("true", "false"):
            raise ps.BadOutput(f"{name}: expected true or false, got {v[:40]!r}")
        return v == "true"

    return WinRmConfig(
        max_shells_per_user=number("MaxShellsPerUser"),
        max_concurrent_operations_per_user=number("MaxConcurrentOperationsPerUser"),
        allow_unencrypted=flag("AllowUnencrypted"),
        basic=flag("Basic"),
    )


@reads_answers
async def winrm_config(drv: HostDriver) -> WinRmConfig:
    """MaxShellsPerUser, MaxConcurrentOperationsPerUser, AllowUnencrypted and Basic of
    the host's WinRM service, from its WSMan: drive."""
    answers = await drv.run(*[ps.wsman_setting(p) for p in ps.WSMAN_SETTINGS.values()])
    return parse_winrm_config(answers)
