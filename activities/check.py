"""The site check (`amsm check`): which hosts to read, and reading one host's facts against
what the inventory and the workflows need of it; the reads of each device family are in
activities/checks/. Facts only: nothing here changes a device (tests/unit/test_rooms.py
keeps this module away from drivers/operations/).

Every check that cannot be made is a finding naming the host: a host that does not
answer is never "ok"."""

from __future__ import annotations

from temporalio import activity

from activities.checks import hosts
from activities.checks.browse import browse
from activities.checks.clients import client
from activities.checks.dsm import dsm
from activities.checks.registry import registry
from activities.checks.report import READ_ERRORS, READ_ONLY_ROLES, Report
from activities.checks.sync_tools import insync_config
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.models import ANSWERS, CheckPlan, CheckTarget, HostCheck, PairRef
from activities.support import FamilyActivities
from inventory.models import SIDES

__all__ = ["READ_ONLY_ROLES", "CheckActivities"]


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
            blackout=self.ctx.blackout_windows(),
        )

    @activity.defn(name="check_host")
    async def check_host(self, inp: CheckTarget) -> HostCheck:
        """Read one host's facts and say what would stop a step. Changes nothing; a device
        that does not answer is a finding, not an error."""
        self.ctx.check_pair(inp.pair)
        report = Report(inp)
        if inp.role == "dsm":
            await dsm(self.ctx, inp.side or "X", report)
            return report.result
        host = self.inv.host(inp.host)
        try:
            drv = self.ctx.host(host)
            version = await windows_facts.powershell_version(drv)
        except READ_ERRORS as e:
            hosts.unanswered(self.inv, inp.role, host, report, e)
            return report.result
        report.ran(ANSWERS[inp.role])
        hosts.powershell(version, report)
        await hosts.clock(host, drv, report)
        await hosts.winrm_service(host, drv, report)
        await hosts.ssh_shell(host, drv, report)
        await registry(inp.role, self.inv.devices, drv, report)
        await self._role(inp, drv, report)
        return report.result

    async def _role(self, inp: CheckTarget, drv: HostDriver, report: Report) -> None:
        dev = self.inv.devices
        if inp.role == "smartbins":
            name = dev.smartbins_service
            await hosts.services(
                "smartbins-service", drv, [name], report, "devices.smartbins_service"
            )
        elif inp.role == "nas-cifs" and dev.allsync_service is not None:
            await hosts.services(
                "allsync-service", drv, [dev.allsync_service], report, "devices.allsync_service"
            )
        elif inp.role == "control-point":
            await insync_config(dev, drv, report)
            if dev.insync_service is not None:
                await hosts.services(
                    "insync-service", drv, [dev.insync_service], report, "devices.insync_service"
                )
        elif inp.role == "browse":
            await browse(self.ctx.components(None, hosts=[inp.host]), drv, report)
        elif inp.role == "client":
            await client(self.inv, drv, report)
