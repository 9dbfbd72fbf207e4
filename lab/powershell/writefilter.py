"""Write filters: the Unified Write Filter's WMI classes (and its Enable/Disable), and
where each filter's manager tool lives."""

from __future__ import annotations

from lab.powershell.errors import CmdletError
from lab.powershell.session import Session
from lab.powershell.syntax import Command

# The Unified Write Filter's WMI provider (Microsoft Learn, "UWF WMI provider reference":
# namespace root\standardcimv2\embedded; UWF_Filter {Id, CurrentEnabled, NextEnabled},
# UWF_Volume {CurrentSession, DriveLetter, VolumeName, BindByDriveLetter, CommitPending,
# Protected}: one instance per volume for the current session and one for the next).
UWF_NAMESPACE = "root\\standardcimv2\\embedded"
UWF_CLASSES = ("UWF_Filter", "UWF_Volume")
# Each write filter's manager tool, in %WINDIR%\System32 where the filter is installed
# (Microsoft Learn: uwfmgr.exe for UWF; fbwfmgr.exe and ewfmgr.exe for the Windows Embedded
# File Based and Enhanced Write Filters). The drivers' probe: activities/drivers/powershell.py.
WRITE_FILTER_TOOLS = {
    "UWF": "C:\\Windows\\System32\\uwfmgr.exe",
    "FBWF": "C:\\Windows\\System32\\fbwfmgr.exe",
    "EWF": "C:\\Windows\\System32\\ewfmgr.exe",
}
VOLUME_GUID = "3c7f2e4a-0000-0000-0000-100000000000"
UWF_PROPERTIES = (
    "Id", "CurrentEnabled", "NextEnabled", "CurrentSession", "DriveLetter", "VolumeName",
    "BindByDriveLetter", "CommitPending", "Protected",
)  # fmt: skip
# The CIM classes the lab answers, with the properties Select-Object may pick: the
# operating system (root/cimv2, the default namespace) and the iSCSI initiator's


class WriteFilterCmdlets(Session):
    """UWF's classes, on the host document's `write_filter`."""

    def _get_uwf(self, commands: tuple[Command, ...]) -> str:
        """UWF's WMI classes, on a host whose `write_filter` is UWF (lab/state.py
        write_filter_boot). Elsewhere the namespace does not exist: Get-CimInstance
        fails with WMI's "Invalid namespace" (WBEM_E_INVALID_NAMESPACE, 0x8004100E)."""
        wf = self.host.get("write_filter") or {}
        if wf.get("kind") != "UWF":
            raise CmdletError("Get-CimInstance", "Invalid namespace ")
        if commands[1].name == "Invoke-CimMethod":
            if commands[0].args["ClassName"] != "UWF_Filter":
                raise CmdletError("Invoke-CimMethod", "The lab calls methods of UWF_Filter only.")
            # Takes effect at the next boot (lab/state.py write_filter_boot): `current`
            # stays as it is until then.
            wf["next"] = commands[1].args["MethodName"] == "Enable"
            return self._select(commands[1:], [{"ReturnValue": 0}])
        if commands[0].args["ClassName"] == "UWF_Filter":
            obj = {
                "Id": "UWF_Filter",
                "CurrentEnabled": bool(wf.get("current")),
                "NextEnabled": bool(wf.get("next")),
            }
            return self._select(commands, [obj])
        # One instance per protected volume and session; a volume UWF does not
        # protect in a session shows Protected false there.
        vols = []
        for current, key in ((True, "volumes"), (False, "next_volumes")):
            for letter in wf.get(key, wf.get("volumes", [])):
                vols.append(
                    {
                        "CurrentSession": current,
                        "DriveLetter": letter,
                        "VolumeName": "\\\\?\\Volume{" + VOLUME_GUID + "}\\",
                        "BindByDriveLetter": True,
                        "CommitPending": False,
                        "Protected": True,
                    }
                )
        return self._select(commands, vols)
