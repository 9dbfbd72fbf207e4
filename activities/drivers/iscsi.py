"""Running the iSCSI cmdlets on a switchable client, for its facts and its operations
alike: a client that has no iSCSI module is named as such."""

from __future__ import annotations

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.host import HostDriver

ISCSI_NEEDS = "the iSCSI PowerShell module and Test-NetConnection (Windows 8.1 / Windows Server 2012 R2 or later)"


async def iscsi_run(drv: HostDriver, *statements: str) -> list[str]:
    """drv.run for a script that uses the iSCSI cmdlets. When it fails, ask the host
    whether it has them at all: a client older than Windows 8 / Server 2012 has no
    iSCSI module (and one older than 8.1 / 2012 R2 no Test-NetConnection), and the operator must read that, with the host's name, rather than
    PowerShell's "not recognized as the name of a cmdlet". Costs nothing when it works."""
    try:
        return await drv.run(*statements)
    except CommandFailed as failed:
        try:
            present = await drv.run_one(ps.get_commands(ps.ISCSI_CMDLETS))
            names = {str(o.get("Name", "")).lower() for o in ps.parse_json_list(present)}
        except (CommandFailed, ps.BadOutput):
            raise failed from None
        missing = [c for c in ps.ISCSI_CMDLETS if c.lower() not in names]
        if missing:
            raise CommandFailed(
                drv.name,
                f"{drv.name} has no {', '.join(missing)}: a switchable client needs {ISCSI_NEEDS}",
            ) from None
        raise
