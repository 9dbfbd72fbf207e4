"""The registry (HKLM:) and the WinRM service's settings on the WSMan: drive:
Get-ItemProperty, Set-ItemProperty, Get-Item."""

from __future__ import annotations

from typing import Any

from lab.powershell.errors import CmdletError, not_found
from lab.powershell.session import Session
from lab.powershell.syntax import Command
from lab.winrm_config import service_config

# The WinRM service's settings on the WSMan: drive that the lab answers, by path (lower
# case): the name Get-Item shows and the key in the host document's `winrm`
# (lab/winrm.py service_config has the defaults). A WSManConfigLeafElement's Value is
# text: "30", "true" (Microsoft Learn, about_WSMan_Provider).
WSMAN_ITEMS = {
    "wsman:\\localhost\\shell\\maxshellsperuser": ("MaxShellsPerUser", "max_shells_per_user"),
    "wsman:\\localhost\\service\\maxconcurrentoperationsperuser": (
        "MaxConcurrentOperationsPerUser",
        "max_concurrent_operations_per_user",
    ),
    "wsman:\\localhost\\service\\allowunencrypted": ("AllowUnencrypted", "allow_unencrypted"),
    "wsman:\\localhost\\service\\auth\\basic": ("Basic", "basic"),
}
# Windows' error for the WSMan: drive when the WinRM service does not run.
WSMAN_NOT_RUNNING = (
    "The client cannot connect to the destination specified in the request. Verify that "
    "the service on the destination is running and is accepting requests."
)


def key_exists(host: dict[str, Any], path: str) -> bool:
    """Test-Path of a registry key: the key, or a key below it, is in the document."""
    low = path.rstrip("\\").lower()
    keys = [k.lower() for k in host.get("registry") or {}]
    return any(k == low or k.startswith(low + "\\") for k in keys)


class RegistryCmdlets(Session):
    """The registry cmdlets, on the host document's `registry` ({key: {name: value}}),
    and Get-Item on the WSMan: drive."""

    def _key(self, cmdlet: str, path: str) -> dict[str, Any]:
        registry: dict[str, dict[str, Any]] = self.host.setdefault("registry", {})
        for actual, values in registry.items():
            if actual.lower() == path.lower():
                return values
        raise not_found(cmdlet, path)

    def _get_item_property(self, commands: tuple[Command, ...]) -> str:
        values = self._key("Get-ItemProperty", commands[0].args["LiteralPath"])
        return self._select(commands, [values])

    def _set_item_property(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        values = self._key("Set-ItemProperty", args["LiteralPath"])
        for existing in list(values):
            if existing.lower() == args["Name"].lower():
                del values[existing]
        values[args["Name"]] = args["Value"]
        return ""

    def _get_item(self, commands: tuple[Command, ...]) -> str:
        """Get-Item of a WinRM setting on the WSMan: drive, which is there only while the
        WinRM service runs (a host document with `winrm`: a host the worker reaches over
        WinRM)."""
        path: str = commands[0].args["LiteralPath"]
        if not path.lower().startswith("wsman:\\"):
            raise CmdletError(
                "Get-Item", f"amsm-lab: Get-Item reads only the WSMan: drive, not '{path}'"
            )
        if self.host.get("winrm") is None:
            raise CmdletError("Get-Item", WSMAN_NOT_RUNNING)
        item = WSMAN_ITEMS.get(path.rstrip("\\").lower())
        if item is None:
            raise not_found("Get-Item", path)
        name, key = item
        value = service_config(self.host)[key]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return self._select(commands, [{"Name": name, "Value": text, "Type": "System.String"}])
