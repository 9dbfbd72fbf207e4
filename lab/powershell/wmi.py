"""WMI and CIM: Get-CimInstance and Get-WmiObject of the operating system, its time zone,
the iSCSI initiator's persistent logins and the write filter (writefilter.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from lab.powershell.errors import CmdletError
from lab.powershell.iscsi import ISCSI_MODULE, persistent_logins
from lab.powershell.syntax import Command
from lab.powershell.writefilter import UWF_NAMESPACE, UWF_PROPERTIES, WriteFilterCmdlets

# persistent logins (root/wmi; Microsoft Learn, MSIscsiInitiator_PersistentLoginClass:
# "a persistent logon that the operating system initiates automatically when the
# computer boots up"), which it lists whether or not a session is up; UWF's classes (above).
CIM_CLASSES = {
    "Win32_OperatingSystem": ("CSName", "LastBootUpTime", "LocalDateTime"),
    "MSiSCSIInitiator_PersistentLoginClass": (
        "TargetName",
        "InitiatorInstance",
        "InitiatorPortNumber",
        "TargetPortal",
    ),
    "UWF_Filter": ("Id", "CurrentEnabled", "NextEnabled"),
    "UWF_Volume": UWF_PROPERTIES[3:],
    "Win32_TimeZone": ("Caption", "Bias", "StandardName", "DaylightName"),
}
CIM_NAMESPACES = {
    "Win32_OperatingSystem": None,
    "MSiSCSIInitiator_PersistentLoginClass": "root\\wmi",
    "UWF_Filter": UWF_NAMESPACE,
    "UWF_Volume": UWF_NAMESPACE,
    "Win32_TimeZone": None,
}
# Win32_TimeZone of the zones lab hosts keep (`time_zone`, an IANA name; UTC when
# absent), with Windows' own names for them (Microsoft Learn, "Default Time Zones";
# Win32_TimeZone: Bias is the standard offset from UTC in minutes).
WINDOWS_ZONES = {
    "UTC": ("(UTC) Coordinated Universal Time", 0, "Coordinated Universal Time",
            "Coordinated Universal Time"),
    "Europe/London": ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", 0, "GMT Standard Time",
                      "GMT Daylight Time"),
    "Europe/Berlin": ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", 60,
                      "W. Europe Standard Time", "W. Europe Daylight Time"),
    "America/New_York": ("(UTC-05:00) Eastern Time (US & Canada)", -300,
                         "Eastern Standard Time", "Eastern Daylight Time"),
}  # fmt: skip

# What a WMI query answers while its provider cannot be loaded (WMI's error text for
# WBEM_E_PROVIDER_LOAD_FAILURE, 0x80041013: Microsoft Learn, WbemErrorEnum / WMI Error
# Constants), as early in a boot while Winmgmt and the iSCSI initiator service start.
# The iSCSI cmdlets are CIM classes (MSFT_iSCSISession, ...) served through WMI.
PROVIDER_LOAD_FAILURE = "Provider load failure "
WMI_CMDLETS = frozenset({"Get-CimInstance", "Get-WmiObject"}) | ISCSI_MODULE


def _utc_offset_minutes(ms: int, zone: str) -> int:
    at = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(zone))
    delta = at.utcoffset()
    return int(delta.total_seconds() // 60) if delta is not None else 0


def _cim_datetime(ms: int, bias: int) -> str:
    local = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=bias)
    sign = "+" if bias >= 0 else "-"
    return f"{local:%Y%m%d%H%M%S}.{local.microsecond:06d}{sign}{abs(bias):03d}"


def _dotnet_utc_ms(ms: int, zone: str) -> int:
    """The instant `ms` as .NET brings its local wall-clock reading back to UTC: an
    ambiguous wall time is taken for standard time (the later pass, fold=1)."""
    tz = ZoneInfo(zone)
    wall = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz).replace(tzinfo=None)
    back = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return int(round(back.timestamp() * 1000))


class CimCmdlets(WriteFilterCmdlets):
    """Get-CimInstance and Get-WmiObject; UWF's namespace is the write filter's."""

    def _get_cim_instance(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        cls: str = args["ClassName"]
        namespace = args.get("Namespace")
        if namespace == UWF_NAMESPACE:
            return self._get_uwf(commands)
        if namespace != CIM_NAMESPACES[cls]:
            # Get-CimInstance looks in root/cimv2 unless told: a class of another
            # namespace is not there ("Invalid class"), nor Win32_ classes in root/wmi.
            raise CmdletError("Get-CimInstance", "Invalid class ")
        if len(commands) > 1:
            wrong = [p for p in commands[1].args["Property"] if p not in CIM_CLASSES[cls]]
            if wrong:
                raise CmdletError(
                    "Get-CimInstance", f"the lab's {cls} has no property {', '.join(wrong)}"
                )
        if cls == "MSiSCSIInitiator_PersistentLoginClass":
            return self._select(commands, persistent_logins(self.host))
        if cls == "Win32_TimeZone":
            zone = str(self.host.get("time_zone") or "UTC")
            if zone not in WINDOWS_ZONES:
                raise CmdletError("Get-CimInstance", f"the lab knows no Windows zone for {zone}")
            caption, bias, standard, daylight = WINDOWS_ZONES[zone]
            tz = {"Caption": caption, "Bias": bias, "StandardName": standard,
                  "DaylightName": daylight}  # fmt: skip
            return self._select(commands, [tz])
        return self._get_os(commands)

    def _get_os(self, commands: tuple[Command, ...]) -> str:
        # `boot_time` is when the host booted on the lab's clock; `clock_offset` how far
        # the host's own clock is off (`amsm lab fault HOST clock-step S`). Windows moves
        # the boot time with the clock when the clock is set (ReactOS ntoskrnl
        # KeSetSystemTime: `KeBootTime.QuadPart += DeltaTime.QuadPart`), so both
        # properties of Win32_OperatingSystem carry the offset and their difference,
        # the uptime, does not.
        #
        # A host in a zone with daylight saving (`time_zone`, an IANA name; UTC when
        # absent): the CIM cmdlets give each time as a DateTime of Kind Local, its
        # wall-clock reading, and 5.1's ConvertTo-Json writes it as UTC through
        # ToUniversalTime, which takes a wall time of the repeated autumn hour for
        # standard time (Microsoft Learn, TimeZoneInfo.ConvertTimeToUtc: "If dateTime
        # is ambiguous, this method assumes that it is the standard time"): a reading
        # taken in the first, daylight, pass of that hour comes out an hour late.
        boot_ms, now_ms = self._os_times()
        zone = self.host.get("time_zone")
        if zone:
            boot_ms, now_ms = _dotnet_utc_ms(boot_ms, zone), _dotnet_utc_ms(now_ms, zone)
        obj = {
            "CSName": self.host["name"],
            "LastBootUpTime": f"/Date({boot_ms})/",
            "LocalDateTime": f"/Date({now_ms})/",
        }
        return self._select(commands, [obj])

    def _os_times(self) -> tuple[int, int]:
        """(boot, now) in ms since the epoch, on the host's own clock."""
        offset_ms = int(float(self.host.get("clock_offset", 0)) * 1000)
        boot_ms = int(self.host.get("boot_time", 0)) + offset_ms
        now_ms = int(self.world.now() * 1000) + offset_ms
        return boot_ms, now_ms

    def _get_wmi_object(self, commands: tuple[Command, ...]) -> str:
        """Win32_OperatingSystem through WMI: its times are CIM_DATETIME strings,
        `yyyymmddHHMMSS.mmmmmmsUUU`, local time with its offset from UTC in minutes
        (Microsoft Learn, "CIM_DATETIME"; Get-WmiObject passes them on as text), so
        each reads as one instant whatever the zone. The lab writes both with the
        offset in effect when asked."""
        boot_ms, now_ms = self._os_times()
        zone = str(self.host.get("time_zone") or "UTC")
        bias = _utc_offset_minutes(now_ms, zone)
        obj = {
            "CSName": self.host["name"],
            "LastBootUpTime": _cim_datetime(boot_ms, bias),
            "LocalDateTime": _cim_datetime(now_ms, bias),
        }
        return self._select(commands, [obj])
