"""The machine and its network: Restart-Computer, Test-NetConnection."""

from __future__ import annotations

from lab.powershell.iscsi import ISCSI_PORT, portal_side
from lab.powershell.session import Session, is_up
from lab.powershell.syntax import Command


class MachineCmdlets(Session):
    """Restart-Computer (the host goes down once the script has returned) and
    Test-NetConnection (what answers on the network)."""

    def _restart_computer(self, commands: tuple[Command, ...]) -> str:
        self.reboot = True
        return ""

    def _test_net_connection(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        # A bridge answers iSCSI at its portal addresses on the media network.
        side = portal_side(self.world, args["ComputerName"])
        if args["Port"] == ISCSI_PORT and self.world.portal_target(args["ComputerName"]):
            if not self.world.portal_answers(args["ComputerName"]):
                return "False"
        other = self.world.bridge(side) if side else self.world.host(args["ComputerName"])
        if side is None and self.world.portal_target(args["ComputerName"]):
            return "True" if args["Port"] == ISCSI_PORT else "False"
        if other is None or not is_up(other):
            return "False"
        if other.get("probe_blocked"):
            # A firewall that drops the probe, not the protocol: iSCSI still connects
            # (what an operator forces with --override client-switch-needs-bridge).
            return "False"
        if args["Port"] == ISCSI_PORT and side is None:
            # The bridge's iSCSI target listens on the media network only (K2-FACTS.md:
            # its own subnet); its control-network name does not answer on 3260.
            return "False"
        return "True"
