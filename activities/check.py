"""The site check (`amsm check`): which hosts to read, and reading one host's facts against
what the inventory and the workflows need of it. Facts only: nothing here changes a
device (tests/unit/test_rooms.py keeps this module away from drivers/operations/).

Every check that cannot be made is a finding naming the host: a host that does not
answer is never "ok"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import activity

from activities.drivers.credentials import CredentialError
from activities.drivers.errors import DeviceError
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.drivers.iscsi import ISCSI_NEEDS
from activities.drivers.powershell import BadOutput, UnsafeValue
from activities.models import (
    ANSWERS,
    CheckPlan,
    CheckRole,
    CheckTarget,
    Finding,
    HostCheck,
    PairRef,
)
from activities.support import FamilyActivities
from inventory.models import SIDES, Host, Side

# Beyond this the clock is worth a warning (seconds, after the round trip's share).
CLOCK_WARNING = 5.0
# Kerberos refuses tickets beyond its maximum clock skew, 5 minutes by default
# (Microsoft Learn, "Maximum tolerance for computer clock synchronization").
KERBEROS_SKEW = 300.0

# Hosts no step acts on: one that does not answer is a warning (amsm status reads them).
READ_ONLY_ROLES: tuple[CheckRole, ...] = ("nas-ftp", "bridge")


def not_read(e: Exception) -> str:
    """What a failed read found, with the error's kind (Unreachable, AuthenticationFailed,
    CommandFailed, ...), never a secret: the error tree's texts name hosts only."""
    if isinstance(e, DeviceError):
        return f"{e.kind}: {e}"
    if isinstance(e, CredentialError):
        return f"credentials: {e}"
    return f"{type(e).__name__}: {e}"


READ_ERRORS = (DeviceError, CredentialError, BadOutput, UnsafeValue, OSError)


class Report:
    """The findings of one host, built up check by check."""

    def __init__(self, target: CheckTarget) -> None:
        self.result = HostCheck(host=target.host, role=target.role, side=target.side)

    def ran(self, check: str) -> None:
        if check not in self.result.checks:
            self.result.checks.append(check)

    def add(self, check: str, expected: str, found: str, fix: str, warning: bool = False) -> None:
        self.ran(check)
        self.result.findings.append(
            Finding(
                host=self.result.host,
                check=check,
                severity="warning" if warning else "problem",
                expected=expected,
                found=found,
                fix=fix,
            )
        )


class CheckActivities(FamilyActivities):
    @activity.defn(name="check_plan")
    async def check_plan(self, inp: PairRef) -> CheckPlan:
        """Every host the check reads, with its role and side (each host once: Browse
        components may share one)."""
        self.ctx.check_pair(inp.pair)
        inv, pair = self.inv, inp.pair
        targets: list[CheckTarget] = []
        for side in SIDES:
            s = inv.sides[side]
            targets.append(CheckTarget(pair=pair, host=s.dsm.host, role="dsm", side=side))
            targets += [
                CheckTarget(pair=pair, host=h.host, role="smartbins", side=side)
                for h in s.smartbins
            ]
            targets.append(CheckTarget(pair=pair, host=s.nas.cifs.host, role="nas-cifs", side=side))
            targets.append(CheckTarget(pair=pair, host=s.nas.ftp.host, role="nas-ftp", side=side))
            targets.append(CheckTarget(pair=pair, host=s.bridge.host, role="bridge", side=side))
        targets.append(CheckTarget(pair=pair, host=inv.control_point.host, role="control-point"))
        seen: set[str] = set()
        for b in inv.browse:
            if b.host.host.lower() not in seen:
                seen.add(b.host.host.lower())
                targets.append(CheckTarget(pair=pair, host=b.host.host, role="browse"))
        targets += [CheckTarget(pair=pair, host=c.host, role="client") for c in inv.clients]
        t = inv.timing
        return CheckPlan(
            targets=targets,
            operation_timeout=t.operation_timeout,
            connect_timeout=t.connect_timeout,
        )

    @activity.defn(name="check_host")
    async def check_host(self, inp: CheckTarget) -> HostCheck:
        """Read one host's facts and say what would stop a step. Changes nothing; a device
        that does not answer is a finding, not an error."""
        self.ctx.check_pair(inp.pair)
        report = Report(inp)
        if inp.role == "dsm":
            await self._dsm(inp, report)
            return report.result
        host = self._host(inp)
        try:
            drv = self.ctx.host(host)
        except READ_ERRORS as e:
            self._unanswered(inp, host, report, e)
            return report.result
        try:
            clock = await windows_facts.clock(drv)
        except READ_ERRORS as e:
            self._unanswered(inp, host, report, e)
            return report.result
        report.ran(ANSWERS[inp.role])
        self._clock(host, clock, report)
        checks: dict[CheckRole, Callable[[HostDriver, Report], Awaitable[None]]] = {
            "smartbins": self._smartbins,
            "nas-cifs": self._nas_cifs,
            "control-point": self._control_point,
            "browse": lambda d, r: self._browse(inp.host, d, r),
            "client": self._client,
        }
        if inp.role in checks:
            await checks[inp.role](drv, report)
        return report.result

    # -- the host ------------------------------------------------------------------------
    def _host(self, inp: CheckTarget) -> Host:
        return self.inv.host(inp.host)

    def _unanswered(self, inp: CheckTarget, host: Host, report: Report, e: Exception) -> None:
        how = f"over {host.transport} at {host.address}" + (
            f":{host.port}" if host.transport == "ssh" else ""
        )
        report.add(
            ANSWERS[inp.role],
            f"an answer {how} with credentials {host.credentials!r}",
            not_read(e),
            "make the host reachable from the worker and its credentials valid "
            "(README, 'Transports'); nothing else on it could be checked",
            warning=inp.role in READ_ONLY_ROLES,
        )

    def _clock(self, host: Host, clock: windows_facts.HostClock, report: Report) -> None:
        report.ran("clock")
        off = abs(clock.skew) - clock.uncertainty
        if off <= CLOCK_WARNING:
            return
        kerberos = host.transport == "winrm" and host.winrm_settings.auth == "kerberos"
        way = "ahead of" if clock.skew > 0 else "behind"
        report.add(
            "clock",
            f"the host's clock within {CLOCK_WARNING:.0f} s of the worker's"
            + (f" (Kerberos: {KERBEROS_SKEW:.0f} s)" if kerberos else ""),
            f"{abs(clock.skew):.1f} s {way} the worker's (give or take {clock.uncertainty:.1f} s)",
            "set the host (or the worker) to the site's time server",
            warning=not (kerberos and off > KERBEROS_SKEW),
        )

    async def _services(
        self, check: str, drv: HostDriver, names: list[str], report: Report, what: str
    ) -> None:
        try:
            found = await windows_facts.find_services(drv, names)
        except READ_ERRORS as e:
            report.add(check, f"{what}: {', '.join(names)}", not_read(e), "see the host's error")
            return
        report.ran(check)
        for name, svc in found.items():
            if svc is None:
                report.add(
                    check,
                    f"{what} {name!r}",
                    "no such service (by service name or display name)",
                    f"install it, or name the host's service in the inventory ({what})",
                )
            elif svc.key.lower() != name.lower():
                report.add(
                    check,
                    f"{what} {name!r} by its service name",
                    f"a display name: the service is {svc.key!r} ({svc.display!r})",
                    f"name it {svc.key!r} in the inventory (Get-Service matches either, "
                    "a service name is unambiguous)",
                    warning=True,
                )

    # -- per role --------------------------------------------------------------------------
    async def _dsm(self, inp: CheckTarget, report: Report) -> None:
        side: Side = inp.side or "X"
        dsm = self.inv.sides[side].dsm
        try:
            drv = self.ctx.dsm(side)
            await asyncio.to_thread(drv.read)
        except READ_ERRORS as e:
            jobs = ""
            if dsm.profile == "sqlserver":
                ss = dsm.sqlserver_settings
                jobs = f", its Agent jobs {ss.master_job!r} and {ss.backup_job!r}"
            report.add(
                "dsm-answers",
                f"an answer over ODBC ({dsm.profile}) with its mode, replication{jobs} "
                "and asset count",
                not_read(e),
                "make the DSM reachable and its login valid; on SQL Server see README, "
                "'A SQL Server DSM' (the jobs, the mode table, the login's rights)",
            )
            return
        report.ran("dsm-answers")

    async def _smartbins(self, drv: HostDriver, report: Report) -> None:
        name = self.inv.devices.smartbins_service
        await self._services("smartbins-service", drv, [name], report, "devices.smartbins_service")

    async def _nas_cifs(self, drv: HostDriver, report: Report) -> None:
        name = self.inv.devices.allsync_service
        if name is not None:
            await self._services("allsync-service", drv, [name], report, "devices.allsync_service")

    async def _control_point(self, drv: HostDriver, report: Report) -> None:
        name = self.inv.devices.insync_service
        if name is not None:
            await self._services("insync-service", drv, [name], report, "devices.insync_service")

    async def _browse(self, host: str, drv: HostDriver, report: Report) -> None:
        for comp in self.ctx.components(None, hosts=[host]):
            await self._services(
                "browse-service", drv, comp.services, report, f"browse {comp.name}: services"
            )
            try:
                present = await browse_facts.config_files_present(drv, comp)
            except READ_ERRORS as e:
                report.add(
                    "browse-config",
                    f"browse {comp.name}: its config files and their .backup twins",
                    not_read(e),
                    "see the host's error",
                )
                continue
            report.ran("browse-config")
            for path, there in present.items():
                if not there:
                    report.add(
                        "browse-config",
                        path,
                        "missing",
                        "a Browse switch swaps each config file with its .backup twin: "
                        "both must exist (the twin points at the other side)",
                    )

    async def _client(self, drv: HostDriver, report: Report) -> None:
        try:
            missing = await clients_facts.iscsi_cmdlets_missing(drv)
        except READ_ERRORS as e:
            report.add("client-iscsi", ISCSI_NEEDS, not_read(e), "see the host's error")
            return
        report.ran("client-iscsi")
        if missing:
            report.add(
                "client-iscsi",
                ISCSI_NEEDS,
                f"no {', '.join(missing)}",
                "a switchable client needs Windows 8 / Windows Server 2012 or later",
            )
        port = self.inv.devices.iscsi_port
        for side in SIDES:
            portals = self.inv.sides[side].portals
            try:
                reached = await clients_facts.portals_reachable(drv, portals, port)
            except READ_ERRORS as e:
                report.add("client-portal", f"{side}'s iSCSI portals", not_read(e), "see the error")
                continue
            report.ran("client-portal")
            if not any(reached.values()):
                report.add(
                    "client-portal",
                    f"{side}'s iSCSI portal {' or '.join(portals)} reachable on port {port}",
                    "no answer from " + ", ".join(portals),
                    f"route the client to {side}'s media network (sides.{side}.iscsi_portals); "
                    f"a switch to {side} is refused while it cannot reach one",
                )
        try:
            volume = await clients_facts.volume_present(drv)
        except READ_ERRORS as e:
            report.add("client-volume", "V:\\ present", not_read(e), "see the host's error")
            return
        report.ran("client-volume")
        if not volume:
            report.add(
                "client-volume",
                "V:\\ present",
                "no V: drive",
                "the client does not see its side's V: now; check its iSCSI login and SNFS",
                warning=True,
            )
