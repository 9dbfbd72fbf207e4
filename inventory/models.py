"""The pair and its hosts, as an operator writes them in inventory.yaml.

Nothing here is secret: a host names a *reference* to its credentials, and the
worker resolves the reference (a key file, a password file or an environment
variable) when it connects. The inventory can therefore be read by the CLI and
shown in the Web UI without leaking anything.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from inventory.blackout import Blackout, zone
from inventory.durations import duration_seconds
from inventory.intent import public_key
from inventory.names import HOST_NAME, segment_problem, windows_folder_problem

Side = Literal["X", "Y"]
SIDES: tuple[Side, Side] = ("X", "Y")

# Windows host names (NetBIOS/DNS labels): letters and digits of any language, hyphen,
# dot (inventory/names.py: never refused for being outside ASCII).
HOSTNAME_RE = HOST_NAME
# Names that end up quoted inside PowerShell or SQL: a conservative set.
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9 _.()-]{1,128}$")
REGISTRY_PATH_RE = re.compile(r"^HKLM:\\[A-Za-z0-9 _.\\-]+$")
IQN_RE = re.compile(r"^(iqn|eui|naa)\.[A-Za-z0-9.:_-]{1,200}$")
# A SQL Server instance name (SQL Server docs, "Instance Configuration": at most 16
# characters; the first a letter or underscore, then letters, digits, $ or _).
SQL_INSTANCE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,15}")


def other(side: Side) -> Side:
    return "Y" if side == "X" else "X"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check(pattern: re.Pattern[str], what: str, value: str) -> str:
    # The whole string: `match` with `$` would accept a trailing newline.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid {what}")
    return value


def _each_once(pattern: re.Pattern[str], what: str, one: str, values: list[str]) -> list[str]:
    """Each value a valid `what`, and none listed twice (compared without regard to case:
    `one` names one of them in the refusal)."""
    for v in values:
        _check(pattern, what, v)
    if len({v.lower() for v in values}) != len(values):
        raise ValueError(f"{one} is listed twice")
    return values


def _folder(v: str) -> str:
    why = windows_folder_problem(v)
    if why:
        raise ValueError(f"{v!r} is not a valid Windows folder (C:\\...): {why}")
    return v


class Credential(_Strict):
    """How the worker authenticates; never the secret itself.

    `key_file` and `password_file` are paths (relative to the inventory file),
    `password_env` the name of an environment variable on the worker.
    """

    username: str = "Administrator"
    key_file: str | None = None
    password_file: str | None = None
    password_env: str | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        return _check(SAFE_NAME_RE, "user name (letters, digits, space, _ . ( ) -)", v)


class WinRm(_Strict):
    """How to reach a host over WS-Management. Secure by default: HTTPS, certificate
    validated against `ca_file`; plain HTTP only with `allow_http: true`."""

    scheme: Literal["https", "http"] = "https"
    port: int | None = Field(None, ge=1, le=65535, description="default 5986 (https), 5985 (http)")
    auth: Literal["ntlm", "kerberos", "credssp", "basic"] = "ntlm"
    ca_file: str | None = Field(
        None, description="CA bundle that signs the host's certificate (default: system store)"
    )
    allow_http: bool = False

    @model_validator(mode="after")
    def _http_is_explicit(self) -> WinRm:
        if self.scheme == "http" and not self.allow_http:
            raise ValueError(
                "plain HTTP sends PowerShell and credentials unprotected; set "
                "`allow_http: true` for this host to mean it, or use scheme https"
            )
        return self

    @property
    def endpoint_port(self) -> int:
        return self.port or (5986 if self.scheme == "https" else 5985)


class Host(_Strict):
    """A Windows host running PowerShell, reached over SSH (OpenSSH for Windows) or WinRM."""

    host: str = Field(description="the host's name, as the operator knows it")
    address: str = Field(description="IP address or DNS name to connect to")
    port: int = Field(22, ge=1, le=65535, description="the SSH port")
    ssh_max_sessions: int = Field(
        10,
        ge=1,
        le=1000,
        description="the host's sshd MaxSessions (sshd_config; default 10): a worker "
        "runs at most one fewer commands on the host at once",
    )
    transport: Literal["ssh", "winrm"] = "ssh"
    winrm: WinRm | None = Field(None, description="WinRM settings (transport: winrm)")
    credentials: str = Field(description="name of an entry under `credentials:`")

    @property
    def winrm_settings(self) -> WinRm:
        return self.winrm or WinRm()

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check(HOSTNAME_RE, "host name (letters, digits, '-' and '.')", v)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _check(HOSTNAME_RE, "address (IPv4 or DNS name)", v)


class SmartBinsServer(Host):
    pseudo_host: bool = Field(False, description="this side's PseudoSmartBins host")


# A regular T-SQL identifier, ASCII only (it is written into the statement, bracketed):
# `Assets` or `dbo.Assets`.
SQL_TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})?")
SQL_DATABASE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def odbc_keywords(odbc: str) -> list[tuple[str, str, str]]:
    """An ODBC connection string as (keyword, value, the attribute's own text), in order.

    [MS-ODBCSTR] 2.1.2: attributes `key=value` separated by `;`; a value in braces may
    hold `;` and a doubled `}`. A string that does not read so is a ValueError (with a
    fixed text: the string may hold what its writer did not mean to show).
    """
    out: list[tuple[str, str, str]] = []
    i, n = 0, len(odbc)
    while i < n:
        if odbc[i] in "; ":
            i += 1
            continue
        eq = odbc.find("=", i)
        if eq < 0:
            raise ValueError("an ODBC attribute without '=' (keyword=value; ...)")
        key, j = odbc[i:eq].strip(), eq + 1
        if j < n and odbc[j] == "{":
            k, value = j + 1, []
            while True:
                close = odbc.find("}", k)
                if close < 0:
                    raise ValueError(f"the ODBC value of {key!r} opens a brace it never closes")
                value.append(odbc[k:close])
                if odbc.startswith("}}", close):
                    value.append("}")
                    k = close + 2
                    continue
                end = close + 1
                break
            val = "".join(value)
            while end < n and odbc[end] == " ":
                end += 1
            if end < n and odbc[end] != ";":
                raise ValueError(f"the ODBC value of {key!r} goes on after its closing brace")
        else:
            end = odbc.find(";", j)
            end = n if end < 0 else end
            val = odbc[j:end].strip()
        out.append((key, val, odbc[i:end]))
        i = end + 1
    return out


def odbc_database(odbc: str) -> str | None:
    """The database an ODBC string names (`Database=`; the first, as ODBC takes it)."""
    for key, value, _ in odbc_keywords(odbc):
        if key.casefold() == "database":
            return value
    return None


SYSTEM_DATABASES = ("master", "msdb", "model", "tempdb")


class SqlServerDsm(_Strict):
    """What the `sqlserver` profile expects on one DSM (docs/site/sqlserver.md).

    The Aurora schema and its replication are not public: these are the names a site
    gives the SQL Server Agent jobs and the table amsm reads, with this project's
    defaults. Job names travel as bound parameters, never inside the statement.
    """

    master_job: str = Field(
        "AuroraReplication",
        description="Agent job on this DSM that runs while it replicates FROM itself",
    )
    backup_job: str = Field(
        "AuroraReplicationBackup",
        description="Agent job on this DSM that runs while it receives replication",
    )
    asset_table: str = Field(
        "dbo.Assets", description="table (in the replicated database) whose rows are the assets"
    )
    database: str | None = Field(
        None,
        description="the database replication copies (Aurora's); default: the ODBC "
        "string's Database=",
    )
    state_database: str = Field(
        "amsm",
        description="amsm's own database on this DSM, which replication does not reach: "
        "it holds dbo.AmsmDsmMode (docs/site/sqlserver.md)",
    )

    @field_validator("database", "state_database")
    @classmethod
    def _database(cls, v: str | None) -> str | None:
        if v is None:
            return v
        return _check(SQL_DATABASE_RE, "database name (an ASCII identifier)", v)

    @field_validator("master_job", "backup_job")
    @classmethod
    def _job(cls, v: str) -> str:
        # sysname: nvarchar(128). Control characters and outer blanks are refused: a
        # name an operator cannot see is a name nobody can check in msdb.
        if not 1 <= len(v) <= 128 or v != v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError(
                f"{v!r} is not a valid SQL Server Agent job name (1-128 characters, "
                "no control characters, no leading or trailing blank)"
            )
        return v

    @field_validator("asset_table")
    @classmethod
    def _table(cls, v: str) -> str:
        return _check(SQL_TABLE_RE, "table name (Table or schema.Table, ASCII identifiers)", v)

    @model_validator(mode="after")
    def _two_jobs(self) -> SqlServerDsm:
        # msdb compares job names without regard to case (its default collation).
        if self.master_job.casefold() == self.backup_job.casefold():
            raise ValueError("master_job and backup_job must be two different jobs")
        return self


class Dsm(_Strict):
    """An Aurora database server, reached over ODBC."""

    host: str
    profile: Literal["lab", "sqlserver"] = "lab"
    odbc: str = Field(
        description="ODBC connection string without credentials, e.g. "
        "'Driver=SQLite3;Database=dsm-x.db' or "
        "'Driver={ODBC Driver 18 for SQL Server};Server=dsm-x;Database=Aurora'"
    )
    credentials: str | None = None
    sqlserver: SqlServerDsm | None = Field(
        None, description="jobs and tables of a `sqlserver` DSM (defaults when absent)"
    )

    @model_validator(mode="after")
    def _settings_match_profile(self) -> Dsm:
        if self.sqlserver is not None and self.profile != "sqlserver":
            raise ValueError(
                f"`sqlserver:` settings are for profile sqlserver; this DSM is {self.profile}"
            )
        if self.profile != "sqlserver":
            return self
        db = self.replicated_database
        if db is None:
            raise ValueError(
                "name the database replication copies: `sqlserver.database`, or Database= "
                "in the ODBC string"
            )
        _check(SQL_DATABASE_RE, "database name (an ASCII identifier)", db)
        state = self.sqlserver_settings.state_database
        if db.casefold() == state.casefold() or state.casefold() in SYSTEM_DATABASES:
            raise ValueError(
                f"`sqlserver.state_database` {state!r} must be amsm's own database: not the "
                f"replicated database {db!r} (replication would overwrite the mode) nor a "
                "system database"
            )
        return self

    @property
    def sqlserver_settings(self) -> SqlServerDsm:
        return self.sqlserver or SqlServerDsm()

    @property
    def replicated_database(self) -> str | None:
        """The database replication copies: the setting, else the ODBC string's."""
        return self.sqlserver_settings.database or odbc_database(self.odbc)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check(HOSTNAME_RE, "host name", v)

    @field_validator("odbc")
    @classmethod
    def _odbc(cls, v: str) -> str:
        if re.search(r"(?i)\b(pwd|password|uid)\s*=", v):
            raise ValueError(
                "the ODBC string must not hold credentials; name them under `credentials:`"
            )
        odbc_keywords(v)  # reads whole, or says where it does not
        return v


class NasHeads(_Strict):
    cifs: Host = Field(description="CIFS NAS head (runs AllSync when its side is main)")
    ftp: Host = Field(description="FTP NAS head (used by InSync)")


class SideConfig(_Strict):
    dsm: Dsm
    smartbins: list[SmartBinsServer] = Field(min_length=1)
    nas: NasHeads
    bridge: Host = Field(description="bridge K2 server the iSCSI clients connect to")
    iscsi_target: str = Field(description="iSCSI target name (IQN) of this side's V: volume")
    iscsi_targets: list[str] = Field(
        default_factory=list,
        description="further target names (IQNs) of this side, where its K2 SAN has one "
        "target per bridge/TOE (a redundant SAN's B server, say); with iscsi_target, every "
        "target a switch away from this side removes the persistent logins of",
    )
    iscsi_portals: list[str] = Field(
        default_factory=list,
        description="the bridge's iSCSI portal address(es) on this side's media network "
        "(IPv4 or DNS name; port: devices.iscsi_port); default: the bridge's address",
    )
    fsnameservers: list[str] | None = Field(
        None,
        description="what a client's SNFS fsnameservers file lists to mount this side's V: "
        "(the side's file system / metadata servers); unset: amsm neither sets nor checks it",
    )
    marker: str | None = Field(
        None,
        description="text that identifies this side inside Browse config files "
        "(default: the DSM's host name)",
    )
    aurora_dsm_pointer: str | None = Field(
        None,
        description="what a client's Aurora DSM pointer (devices.aurora_registry, "
        "devices.aurora_dsm_value) names for this side: the DSM's name, FQDN, IP address or "
        "HOST\\INSTANCE, as the site's clients write it (default: the DSM's host)",
    )

    @field_validator("iscsi_target")
    @classmethod
    def _iqn(cls, v: str) -> str:
        return _check(IQN_RE, "iSCSI target name (iqn.…)", v)

    @field_validator("iscsi_targets")
    @classmethod
    def _iqns(cls, v: list[str]) -> list[str]:
        return _each_once(IQN_RE, "iSCSI target name (iqn.…)", "an iSCSI target", v)

    @field_validator("iscsi_portals")
    @classmethod
    def _portals(cls, v: list[str]) -> list[str]:
        # The port is `devices.iscsi_port` for every portal.
        return _each_once(
            HOSTNAME_RE, "iSCSI portal address (IPv4 or DNS name)", "an iSCSI portal", v
        )

    @field_validator("fsnameservers")
    @classmethod
    def _nameservers(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("fsnameservers lists at least one name server (or is left out)")
        for n in v:
            _check(HOSTNAME_RE, "SNFS name server (IPv4 or DNS name)", n)
        return v

    @field_validator("aurora_dsm_pointer")
    @classmethod
    def _pointer(cls, v: str | None) -> str | None:
        if v is None:
            return None
        host, sep, instance = v.partition("\\")
        if not HOSTNAME_RE.fullmatch(host) or (sep and not SQL_INSTANCE_RE.fullmatch(instance)):
            raise ValueError(
                f"{v!r} is not a valid Aurora DSM pointer: a host name, FQDN or IPv4 address, "
                "optionally followed by \\INSTANCE (a SQL Server instance name: a letter or _, "
                "then at most 15 letters, digits, $ or _)"
            )
        return v

    @model_validator(mode="after")
    def _one_pseudo(self) -> SideConfig:
        pseudo = [s.host for s in self.smartbins if s.pseudo_host]
        if len(pseudo) != 1:
            raise ValueError(
                f"exactly one SmartBins server per side must be the PseudoSmartBins host "
                f"(pseudo_host: true); found {len(pseudo)}"
                + (f": {', '.join(pseudo)}" if pseudo else "")
            )
        return self

    @model_validator(mode="after")
    def _targets_once(self) -> SideConfig:
        if self.iscsi_target.lower() in {t.lower() for t in self.iscsi_targets}:
            raise ValueError("iscsi_targets repeats iscsi_target; list only the further ones")
        return self

    @property
    def targets(self) -> list[str]:
        """Every target name (IQN) of this side: iscsi_target, then iscsi_targets."""
        return [self.iscsi_target, *self.iscsi_targets]

    def has_target(self, iqn: str) -> bool:
        return iqn.lower() in {t.lower() for t in self.targets}

    @property
    def dsm_pointer(self) -> str:
        """What a client's Aurora DSM pointer names when it uses this side's DSM."""
        return self.aurora_dsm_pointer or self.dsm.host

    @property
    def side_marker(self) -> str:
        return self.marker or self.dsm.host

    @property
    def portals(self) -> list[str]:
        """The addresses a client registers as target portals for this side: the
        bridge's iSCSI address(es) on the media network. Without `iscsi_portals`, the
        bridge's own address (what inventories before it meant: correct only where the
        bridge's control address also carries iSCSI)."""
        return list(self.iscsi_portals) or [self.bridge.address]

    @property
    def pseudo_host(self) -> SmartBinsServer:
        return next(s for s in self.smartbins if s.pseudo_host)


class BrowseComponent(_Strict):
    """A MediaFrame/MDI host: its services and the config files it swaps."""

    name: str
    role: Literal["mediaframe", "k2-mdi", "news-mdi", "ftp-mdi", "archive-mdi", "nearline-mdi"]
    host: Host
    services: list[str] = Field(min_length=1)
    config_dir: str = r"C:\Thomson\MediaFrame\Configuration"
    config_files: list[str] = Field(
        min_length=1, description="active file names, e.g. K2_MDI_Service.exe.config"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check(HOSTNAME_RE, "component name", v)

    @field_validator("services")
    @classmethod
    def _services(cls, v: list[str]) -> list[str]:
        return [_check(SAFE_NAME_RE, "service name", s) for s in v]

    @field_validator("config_dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        return _folder(v)

    @field_validator("config_files")
    @classmethod
    def _files(cls, v: list[str]) -> list[str]:
        out = []
        for f in v:
            why = segment_problem(f)
            if why:
                raise ValueError(f"{f!r} is not a valid config file name: {why}")
            if not f.endswith(".exe.config") or f.endswith(".backup.exe.config"):
                raise ValueError(
                    f"{f!r}: name the active file (…something.exe.config); "
                    "its twin …something.backup.exe.config is derived"
                )
            out.append(f)
        return out


class ClientIscsi(_Strict):
    """The portal(s) one client logs in through on one side: the TOE that K2 System
    Configuration assigned to it on media network A and, on a redundant K2 SAN, the one
    on media network B (K2 Installation and Service Manual, "About iSCSI bandwidth": "the
    K2Config application assigns a K2 client to a TOE and keeps track of the bandwidth so
    subscribed to each TOE. A single K2 client can only subscribe to a single TOE";
    "Failover behaviors" for media networks A and B; K2-FACTS.md). A's target defaults to the
    side's `iscsi_target`; B needs its own `b_target`, not A's (a second login to one
    target needs MPIO, which client editions of Windows lack)."""

    a: str = Field(description="the portal (TOE address) on media network A")
    a_target: str | None = Field(None, description="the target logged in to through `a`")
    b: str | None = Field(None, description="the portal on media network B (redundant SAN)")
    b_target: str | None = Field(None, description="the target logged in to through `b`")

    @field_validator("a", "b")
    @classmethod
    def _portal(cls, v: str | None) -> str | None:
        return None if v is None else _check(HOSTNAME_RE, "iSCSI portal address", v)

    @field_validator("a_target", "b_target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return None if v is None else _check(IQN_RE, "iSCSI target name (iqn.…)", v)

    @model_validator(mode="after")
    def _b_is_whole(self) -> ClientIscsi:
        if self.b is None and self.b_target is not None:
            raise ValueError("b_target without b: name the B portal too")
        if self.b is not None and self.b.lower() == self.a.lower():
            raise ValueError("a and b are one portal; B is the other media network's")
        return self


class IscsiPath(BaseModel):
    """One login a client keeps to a side: path 'A' or 'B', through `portal`, to `target`."""

    model_config = ConfigDict(frozen=True)

    name: Literal["A", "B"]
    portal: str
    target: str


class SwitchableClient(Host):
    kind: Literal["edit", "ingest", "other"] = "edit"
    iscsi: dict[Side, ClientIscsi] = Field(
        default_factory=dict,
        description="per side, the portal(s) this client logs in through (its TOE on "
        "media network A, and B on a redundant SAN); a side left out: path A through "
        "the side's first portal, no B path",
    )


class ControlPoint(Host):
    pass


class DeviceSettings(_Strict):
    """Names on the real devices that the public documentation does not pin down.

    Each has a default that the lab uses; a site sets its own (docs/site/inventory.md).
    """

    smartbins_service: str = "SmartBins"
    smartbins_registry: str = r"HKLM:\SOFTWARE\GVG\SmartBins"
    smartbins_mode_value: str = "Mode"
    insync_process: str = "K2InSync"
    insync_registry: str = r"HKLM:\SOFTWARE\GVG\InSync"
    insync_direction_value: str = "MasterSystem"
    insync_cfg_dir: str = "C:\\"
    allsync_process: str = "AllSync"
    # When set, the service that runs the tool: its start/stop steps become automatic.
    insync_service: str | None = None
    allsync_service: str | None = None
    aurora_processes: list[str] = Field(default_factory=lambda: ["AuroraEdit", "AuroraIngest"])
    aurora_registry: str = r"HKLM:\SOFTWARE\GVG\Aurora"
    aurora_dsm_value: str = "DsmServer"
    iscsi_port: int = 3260
    # StorNext's name-server list on a client (K2-FACTS.md: generic StorNext on Windows;
    # the K2 client's path may differ, *uncertain*): used only where a side names its
    # `fsnameservers`.
    snfs_nameservers_file: str = r"C:\Program Files\StorNext\config\fsnameservers"
    # A client whose UWF protects C: is refused (its restart would discard the switch);
    # with this, the switch turns UWF off for an extra restart, reconfigures the client,
    # and turns UWF on again from restart 1/2 (docs/site/client-switch.md).
    uwf_off_for_switch: bool = False

    @field_validator(
        "smartbins_service",
        "smartbins_mode_value",
        "insync_process",
        "insync_direction_value",
        "allsync_process",
        "aurora_dsm_value",
    )
    @classmethod
    def _safe(cls, v: str) -> str:
        return _check(SAFE_NAME_RE, "name", v)

    @field_validator("insync_service", "allsync_service")
    @classmethod
    def _service(cls, v: str | None) -> str | None:
        return None if v is None else _check(SAFE_NAME_RE, "service name", v)

    @field_validator("aurora_processes")
    @classmethod
    def _procs(cls, v: list[str]) -> list[str]:
        for p in v:
            _check(SAFE_NAME_RE, "process name", p)
            # A space before or after: Get-Process -Name compares the whole name
            # (Process.ProcessName, a wildcard pattern without '*'), so it never matches.
            if p != p.strip():
                raise ValueError(
                    f"{p!r} is not a valid process name: a space before or after it would "
                    f"never match a running process; write {p.strip()!r}"
                )
            # Get-Process -Name matches ProcessName, which has no '.exe' (Microsoft Learn,
            # Get-Process -Name; Process.ProcessName): such a name would never be found,
            # and Aurora never stopped.
            if p.lower().endswith(".exe"):
                raise ValueError(
                    f"{p!r} is not a valid process name: write it without '.exe' "
                    f"({p[:-4]!r}), as Get-Process names it"
                )
        return v

    @field_validator("smartbins_registry", "insync_registry", "aurora_registry")
    @classmethod
    def _reg(cls, v: str) -> str:
        return _check(REGISTRY_PATH_RE, "registry path (HKLM:\\...)", v)

    @field_validator("insync_cfg_dir")
    @classmethod
    def _cfgdir(cls, v: str) -> str:
        return _folder(v)

    @field_validator("snfs_nameservers_file")
    @classmethod
    def _nsfile(cls, v: str) -> str:
        folder, _, name = v.rpartition("\\")
        _folder(folder + "\\")
        if segment_problem(name):
            raise ValueError(f"{v!r} is not a valid Windows file path: {segment_problem(name)}")
        return v


class Timing(_Strict):
    """How long the service waits for devices. Seconds."""

    reboot_timeout: float = Field(900, ge=1, le=86400, description="one client reboot, down and up")
    poll_interval: float = Field(2.0, ge=0.1, le=600)
    settle_time: float = Field(
        20,
        ge=0,
        le=3600,
        description="a restarted host counts as back once it has stayed up this long",
    )
    boot_tolerance: float = Field(
        2.0,
        ge=0,
        le=60,
        description="two readings of one host's boot may disagree by this much beyond their "
        "round trips (the clocks of one worker and the next); a restart is a later boot",
    )
    heartbeat_timeout: float = Field(30, ge=1, le=3600)
    operation_timeout: float = Field(120, ge=1, le=86400, description="one device operation")
    replication_timeout: float = Field(
        120, ge=1, le=7 * 86400, description="replication to report a state"
    )
    replication_settle: float = Field(
        1,
        ge=0,
        le=3600,
        description="how long a started replication must hold (master and backup both "
        "running) before the start counts: a job that fails in its first step ran a moment",
    )
    mount_timeout: float = Field(
        300,
        ge=0,
        le=3600,
        description="after a client's restart, how long to wait for its iSCSI session to "
        "the new side and its V: once it answers (the initiator logs in and StorNext mounts "
        "V: in services that start beside sshd/WinRM, not before them)",
    )
    connect_timeout: float = Field(10, ge=0.1, le=600)
    max_attempts: int = Field(5, ge=1, le=100, description="tries for an unreachable device")
    max_parallel_clients: int | None = Field(
        None,
        ge=1,
        le=5000,
        description="at most this many clients switch at once towards one side (where its "
        "bridges need a limit); none: every client at once, as the manual does",
    )
    client_batch_size: int = Field(
        25, ge=1, le=100, description="clients switched by one child workflow"
    )
    lost_side_timeout: float = Field(
        15, ge=1, le=3600, description="unplanned switch: the one try at a device of the lost side"
    )
    status_interval: float = Field(
        15,
        ge=1,
        le=3600,
        description="how often the pair's watch reads every device (amsm status for viewers)",
    )
    continue_after_events: int = Field(
        10_000,
        ge=200,
        le=40_000,
        description="a run that waits (a manual step, the fence) continues as new past this "
        "many history events (the server's limit is 51,200)",
    )
    fence_max_interval: float = Field(
        60,
        ge=1,
        le=86400,
        description="fencing: the longest wait between two tries at the lost side",
    )
    readiness_interval: float = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="the readiness watch (amsm readiness on) runs the site check this often: "
        "at least every minute, at most a week apart",
    )

    @model_validator(mode="after")
    def _replication_can_settle(self) -> Timing:
        # A start counts once it has held for replication_settle (activities/dsm.py);
        # a timeout no longer than that could never see a start count.
        if self.replication_timeout <= self.replication_settle:
            raise ValueError(
                f"replication_timeout ({self.replication_timeout:g} s) must be longer than "
                f"replication_settle ({self.replication_settle:g} s): a replication start "
                "counts only once it has held for replication_settle"
            )
        return self


class Objectives(_Strict):
    """What a run is held against (the run report, `amsm runs`, the console's runs page)."""

    time_to_serve: str | None = Field(
        None,
        description="from a switch's start until the new main side serves (its DSM main and "
        "the clients moved): at most this long (20m, 1h30m, 90s)",
    )

    @field_validator("time_to_serve", mode="before")
    @classmethod
    def _duration(cls, v: object) -> str | None:
        if v is None:
            return None
        secs = duration_seconds(v, "objectives.time_to_serve")
        if not 1 <= secs <= 86400:
            raise ValueError(
                f"objectives.time_to_serve: {v!r} is outside 1s to 24h, the bounds allowed"
            )
        return str(v).strip()

    @property
    def time_to_serve_seconds(self) -> float | None:
        if self.time_to_serve is None:
            return None
        return duration_seconds(self.time_to_serve, "objectives.time_to_serve")


# -- telling people (docs/operators/notifications.md) --------------------------------------
AUDIENCES = ("waiting", "escalation", "runs", "readiness")


class Notify(_Strict):
    """Who is told what, through Apprise (docs/operators/notifications.md). `config` is an
    Apprise YAML file (relative to the inventory) kept like the other secrets: on the
    worker only, not in Git, mode 0600; its URLs hold tokens and passwords."""

    config: str = Field(
        description="Apprise YAML config (tags: waiting, escalation, runs, readiness)"
    )
    console_url: str | None = Field(None, description="the web console's address, for links")
    remind_every: float = Field(900, description="a waiting step is told again this often")
    escalate_after: float = Field(2700, description="then the escalation tag is told, once")

    @field_serializer("remind_every", "escalate_after")
    def _written(self, v: float) -> str:
        return f"{int(v)}s"  # written back as it is read (a survey's inventory.json)

    @field_validator("remind_every", "escalate_after", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        seconds = duration_seconds(v)
        if not 60 <= seconds <= 7 * 86400:
            raise ValueError(f"{v!r} is out of range; allowed: 1m to 7d")
        return seconds

    @field_validator("console_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", v):
            raise ValueError(f"{v!r} is not a web address; write https://host[:port][/path]")
        return v.rstrip("/") if v else v

    @field_validator("config")
    @classmethod
    def _config(cls, v: str) -> str:
        if not v.strip() or not v.endswith((".yaml", ".yml")):
            raise ValueError(
                f"{v!r} is not an Apprise YAML file; name a .yaml file (e.g. secrets/notify.yaml)"
            )
        return v


def pair_workflow_id(pair: str) -> str:
    """The one id under which every big workflow of pair `pair` runs; its controls run
    under this id + "-control"."""
    return f"amsm-{pair}"


def control_workflow_id(pair: str) -> str:
    """The id under which pair `pair`'s controls run (workflows/control.py), one at a time."""
    return f"{pair_workflow_id(pair)}-control"


def fence_workflow_id(pair: str) -> str:
    """The usual id of pair `pair`'s fence (workflows/fence.py): one fence per pair."""
    return f"amsm-{pair}-fence"


# The workflow type of a scheduled run's own workflow (workflows/schedule.py).
SCHEDULE_TYPE = "pair-schedule"


def schedule_workflow_id(pair: str, schedule_id: str) -> str:
    """A scheduled run's own id under the pair's (workflows/schedule.py), never the pair's
    one-workflow id."""
    return f"{pair_workflow_id(pair)}-schedule-{schedule_id}"


def readiness_schedule_id(pair: str) -> str:
    """The id of pair `pair`'s readiness watch, a Temporal Schedule (amsm readiness on);
    each check it starts runs under this id and the time it was due."""
    return f"amsm-{pair}-readiness"


def site_queue(queue: str, side: Side) -> str:
    """Side `side`'s task queue next to the pair's queue `queue`: a site worker
    (`amsm worker --site X`) serves it from inside that site's network."""
    return f"{queue}-site-{side.lower()}"


class Schedule(_Strict):
    """Scheduled runs (`amsm schedule`, docs/operators/schedules.md). Durations with their
    unit (inventory/durations.py: 60m), held as seconds."""

    lead: float = Field(
        3600,
        ge=0,
        le=7 * 86400,
        description="the dry run and the site check run this long before a scheduled run",
    )
    window: float = Field(
        1800,
        ge=60,
        le=86400,
        description="a scheduled run that cannot start within this long after its time is "
        "dropped, never run late (`amsm schedule --window` sets one run's)",
    )
    horizon: float = Field(
        30 * 86400,
        ge=60,
        le=366 * 86400,
        description="how far ahead a run may be scheduled",
    )

    @field_validator("lead", "window", "horizon", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return duration_seconds(v)

    @field_serializer("lead", "window", "horizon")
    def _written(self, v: float) -> str:
        return f"{int(v)}s"  # written back as it is read (a survey's inventory.json)


class Identity(_Strict):
    """Signed acts (docs/operators/signed-acts.md)."""

    require_signed: bool = Field(
        False,
        description="refuse every act not signed with an operator's key (or the console's); "
        "without it an unsigned act is taken and marked unproven",
    )


# -- the console's directory login (docs/site/directory-login.md) ------------------------
# A DN (RFC 4514): type=value, comma-separated; enough to tell a DN from a name. A value
# may hold escaped characters ("cn=Smith\\, J,ou=people"), never a bare comma or
# backslash, nor a newline.
_RDN = r"[A-Za-z][A-Za-z0-9-]*=(?:[^,\\\0\n\r]|\\[^\0\n\r])+"
_DN_RE = re.compile(rf"^{_RDN}(, *{_RDN})*$")  # RFC 1779 let a space follow a comma
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
_LDAP_URL_RE = re.compile(r"^(ldaps?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?/?$")


class LdapSearchAccount(_Strict):
    """The account the console searches the directory with when it checks a person's
    groups again (the person's own password is not kept): its DN, and a file holding its
    password (relative to the inventory file; never the password itself)."""

    bind_dn: str
    password_file: str

    @field_validator("bind_dn")
    @classmethod
    def _dn(cls, v: str) -> str:
        return _check(_DN_RE, "DN (cn=amsm-console,ou=services,dc=example,dc=org)", v)


class ConsoleLdap(_Strict):
    """Directory login for the console: LDAP over TLS (ldaps://, or ldap:// with
    StartTLS; plain LDAP is refused: it carries passwords in the clear)."""

    url: str = Field(description="ldaps://HOST[:PORT], or ldap://HOST[:PORT] with start_tls")
    start_tls: bool = Field(False, description="ldap:// upgraded with StartTLS (RFC 4513 3)")
    ca_file: str = Field(description="the CA certificates (PEM) that sign the server's")
    user_template: str | None = Field(
        None, description="the DN a person binds as, {user} their login: uid={user},ou=..."
    )
    upn_suffix: str | None = Field(
        None, description="or Active Directory's user@SUFFIX (userPrincipalName) bind"
    )
    base_dn: str = Field(description="where groups (and, with upn_suffix, people) are searched")
    server: Literal["openldap", "active-directory"] = Field(
        description="how nested groups are read: active-directory's in-chain rule, or "
        "openldap's groupOfNames searched member by member"
    )
    groups: dict[str, Literal["operator", "viewer"]] = Field(
        min_length=1, description="a group's whole DN and the role it gives"
    )
    recheck: float = Field(
        300,
        ge=1,
        le=86400,
        description="a session's groups are read again when it acts this long after the "
        "last read (5m)",
    )
    search: LdapSearchAccount | None = Field(
        None,
        description="the account that reads groups again; without it a person logs in "
        "again to act after `recheck`",
    )

    @field_validator("recheck", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return duration_seconds(v)

    @field_serializer("recheck")
    def _written(self, v: float) -> str:
        return f"{int(v)}s"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check(_LDAP_URL_RE, "LDAP URL (ldaps://dc1.example.org or ldap://HOST:389)", v)

    @field_validator("base_dn")
    @classmethod
    def _base(cls, v: str) -> str:
        return _check(_DN_RE, "DN (dc=example,dc=org)", v)

    @field_validator("upn_suffix")
    @classmethod
    def _suffix(cls, v: str | None) -> str | None:
        return None if v is None else _check(_DOMAIN_RE, "domain (example.org)", v)

    @field_validator("user_template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if v.count("{user}") != 1 or not _DN_RE.fullmatch(v.replace("{user}", "x")):
            raise ValueError(
                f"{v!r} is not a DN with {{user}} once in it (uid={{user}},ou=people,dc=example,dc=org)"
            )
        return v

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if len(name) > 1024 or not _DN_RE.fullmatch(name):
                # A cn alone would match a group of that name anywhere under base_dn:
                # whoever may create a group anywhere there would give themselves a role.
                raise ValueError(
                    f"{name!r} is not a group's whole DN (cn=AMSM-Operators,ou=groups,"
                    "dc=example,dc=org): a cn alone would match a group of that name "
                    "anywhere under base_dn (docs/site/directory-login.md)"
                )
        if len({n.lower() for n in v}) != len(v):
            raise ValueError("a group is listed twice")
        return v

    @model_validator(mode="after")
    def _whole(self) -> ConsoleLdap:
        secure = self.url.startswith("ldaps://")
        if not secure and not self.start_tls:
            raise ValueError(
                f"url {self.url}: plain LDAP sends passwords in the clear; use ldaps://HOST "
                "or set start_tls: true (docs/site/directory-login.md)"
            )
        if secure and self.start_tls:
            raise ValueError("start_tls: ldaps:// is TLS already; StartTLS is for ldap:// only")
        if (self.user_template is None) == (self.upn_suffix is None):
            raise ValueError(
                "give one of user_template (OpenLDAP: uid={user},ou=people,...) and "
                "upn_suffix (Active Directory: example.org)"
            )
        return self


class ConsoleSettings(_Strict):
    """The web console's own settings (docs/operators/console.md)."""

    ldap: ConsoleLdap | None = Field(
        None, description="directory login (docs/site/directory-login.md)"
    )


# What `approvals:` may name (docs/operators/two-person.md): the gates of the step tables
# (shared/WORKFLOWS.md; tests/unit/test_approvals.py checks every gate of every kind is
# here) and the break-glass override of a control.
APPROVAL_KEYS = ("approve-overwrite", "approve-purge", "break-glass")
TWO_PERSON_DOCS = "docs/operators/two-person.md"


class Approval(_Strict):
    """How many distinct proven people a gate (or a break-glass override) needs."""

    required: int = Field(
        2, ge=1, le=5, description="how many different operators must approve, each signed"
    )
    not_initiator: bool = Field(
        False, description="the operator who started the run cannot be one of them"
    )


class _OperatorEntry(_Strict):
    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check(SAFE_NAME_RE, "user name", v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        public_key(v)
        return v


def operator_entries(entries: list[object]) -> tuple[list[object], dict[str, str]]:
    """The names of `operators:` and the keys of those listed as `{name, key}`; each
    name and each key once."""
    names: list[object] = []
    keys: dict[str, str] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            names.append(e)
            continue
        try:
            entry = _OperatorEntry.model_validate(e)
        except ValidationError as err:
            what = "; ".join(
                f"{'.'.join(map(str, x['loc'])) or 'entry'}: {x['msg']}" for x in err.errors()
            )
            raise ValueError(
                f"operators[{i}]: {what} (an operator is a name, or {{name, key}} with the "
                "`ed25519:...` line `amsm keys new` printed)"
            ) from None
        if entry.key in keys.values():
            raise ValueError(f"operators[{i}]: {entry.name}'s key is another operator's key too")
        if entry.name.lower() in keys:
            raise ValueError(f"operators[{i}]: {entry.name} is listed twice with a key")
        names.append(entry.name)
        keys[entry.name.lower()] = entry.key
    return names, keys


class Site(_Strict):
    production: bool = Field(
        False,
        description="the pair runs in production: `amsm check` then reports a Temporal "
        "frontend that accepts a write from a program without credentials as a problem "
        "(docs/site/production.md#lock-down)",
    )


class Inventory(_Strict):
    pair: str = Field(description="the pair's name; part of every workflow id")
    task_queue: str | None = None
    known_hosts: str = Field(description="known_hosts file that verifies every host key")
    credentials: dict[str, Credential]
    sides: dict[Side, SideConfig]
    control_point: ControlPoint
    browse: list[BrowseComponent] = Field(min_length=1)
    clients: list[SwitchableClient] = Field(default_factory=list)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    timing: Timing = Field(default_factory=Timing)
    operators: list[str] = Field(
        default_factory=list,
        description="who may start, confirm, approve, decide and use the controls: a name, "
        "or {name, key} with the public key `amsm keys new` printed "
        "(docs/operators/signed-acts.md)",
    )
    # Each operator's public key (`ed25519:<base64>`), by name in lower case: read from
    # the `{name, key}` entries of `operators`, and written back there (one home).
    operator_keys: dict[str, str] = Field(default_factory=dict, exclude=True)
    console_key: str | None = Field(
        None, description="the console's public key: it signs for the person logged in"
    )
    identity: Identity = Field(default_factory=lambda: Identity())
    site: Site = Field(default_factory=lambda: Site())
    viewers: list[str] = Field(default_factory=list, description="who may read only")
    objectives: Objectives = Field(default_factory=Objectives)
    timezone: str = Field(
        "UTC",
        description="the facility's IANA time zone (Europe/London): the local times of "
        "scheduled runs and blackout windows are read in it",
    )
    blackout: list[Blackout] = Field(
        default_factory=list,
        max_length=50,
        description="on-air windows: no switch starts, no client restarts "
        "(docs/operators/blackout.md)",
    )
    schedule: Schedule = Field(default_factory=Schedule)
    console: ConsoleSettings | None = Field(
        None, description="the web console's directory login (docs/site/directory-login.md)"
    )

    approvals: dict[str, Approval] = Field(
        default_factory=dict,
        description="two people for what cannot be undone: per gate (approve-overwrite, "
        "approve-purge) and break-glass, {required, not_initiator} "
        "(docs/operators/two-person.md)",
    )

    @field_validator("approvals")
    @classmethod
    def _approval_keys(cls, v: dict[str, Approval]) -> dict[str, Approval]:
        unknown = sorted(k for k in v if k not in APPROVAL_KEYS)
        if unknown:
            raise ValueError(
                f"approvals: no gate {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(APPROVAL_KEYS)} ({TWO_PERSON_DOCS})"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        zone(v)
        return v

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    notify: Notify | None = Field(None, description="who is told when a run waits (Apprise)")

    @field_validator("operators", "viewers")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [_check(SAFE_NAME_RE, "user name", n) for n in v]

    @model_validator(mode="before")
    @classmethod
    def _operator_keys(cls, data: object) -> object:
        """`operators:` entries are names or `{name, key}`: the names stay the list, the
        keys go to `operator_keys` (which the inventory never names itself)."""
        if not isinstance(data, dict):
            return data
        if "operator_keys" in data:
            raise ValueError("operator_keys: write each key beside its name in `operators:`")
        entries = data.get("operators")
        if not isinstance(entries, list):
            return data
        names, keys = operator_entries(entries)
        return {**data, "operators": names, "operator_keys": keys}

    @field_validator("console_key")
    @classmethod
    def _console_key(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                public_key(v)
            except ValueError as e:
                raise ValueError(f"console_key: {e}") from None
        return v

    @model_validator(mode="after")
    def _signers(self) -> Inventory:
        if self.identity.require_signed and not (self.operator_keys or self.console_key):
            raise ValueError(
                "identity.require_signed: no operator has a key and there is no console_key, "
                "so nobody could act; list {name, key} under operators "
                "(docs/operators/signed-acts.md)"
            )
        if self.console_key is not None and self.console_key in self.operator_keys.values():
            raise ValueError("console_key: it is an operator's key too; the console has its own")
        if self.approvals and not self.identity.require_signed:
            raise ValueError(
                "approvals: an approval counts only when it is proven by a key, so two-person "
                "approvals need identity: {require_signed: true} "
                f"({TWO_PERSON_DOCS})"
            )
        for gate, rule in self.approvals.items():
            others = len(self.operators) - (1 if rule.not_initiator else 0)
            if self.operators and rule.required > others:
                raise ValueError(
                    f"approvals.{gate}: {rule.required} approvals required, but only "
                    f"{others} operator(s) could give them "
                    f"({'the initiator is not one; ' if rule.not_initiator else ''}"
                    f"{TWO_PERSON_DOCS})"
                )
        return self

    @field_serializer("operators")
    def _written_operators(self, v: list[str]) -> list[object]:
        # Written back as read: a name, or {name, key} (a survey's inventory.json).
        return [
            {"name": n, "key": self.operator_keys[n.lower()]}
            if n.lower() in self.operator_keys
            else n
            for n in v
        ]

    def may_act(self, who: str) -> bool:
        return not self.operators or who.lower() in {o.lower() for o in self.operators}

    def may_read(self, who: str) -> bool:
        if not (self.operators or self.viewers):
            return True
        return who.lower() in {n.lower() for n in [*self.operators, *self.viewers]}

    @field_validator("pair")
    @classmethod
    def _pair(cls, v: str) -> str:
        return _check(re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$"), "pair name (a-z, 0-9, -)", v)

    @model_validator(mode="after")
    def _consistent(self) -> Inventory:
        if set(self.sides) != {"X", "Y"}:
            raise ValueError("`sides` must define both X and Y")
        problems = [
            *self._host_problems(),
            *self._side_problems(),
            *self._client_path_problems(),
        ]
        x, y = self.sides["X"], self.sides["Y"]
        shared = {p.lower() for p in x.portals} & {p.lower() for p in y.portals}
        if shared:
            problems.append(
                f"sides.X and sides.Y name the same iSCSI portal {', '.join(sorted(shared))}; "
                "each side's bridge has its own address on its media network"
            )
        names = [b.name for b in self.browse]
        if len(set(names)) != len(names):
            problems.append("browse: component names must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _host_problems(self) -> list[str]:
        """Each host named once, at an address of its own, with defined credentials."""
        seen: dict[str, tuple[str, Host]] = {}
        at: dict[tuple[str, int], tuple[str, str]] = {}  # address, port -> where, host
        problems: list[str] = []
        for where, host in self.all_hosts():
            # Host names are compared without regard to case (Windows and DNS do so):
            # ED-01 and ed-01 are one machine, and listing it twice would restart it twice
            # as often.
            key = host.host.lower()
            if key in seen:
                first, earlier = seen[key]
                if not (first.startswith("browse[") and where.startswith("browse[")):
                    problems.append(
                        f"host {host.host!r} appears twice ({first} and {where}); name each "
                        "host once (names are compared without regard to case)"
                    )
                # Several Browse components may live on one host: same host, same entry.
                elif earlier.model_dump() != host.model_dump():
                    problems.append(
                        f"host {host.host!r} appears twice with different settings "
                        f"({first} and {where})"
                    )
                continue
            seen[key] = (where, host)
            port = host.port
            addr = (host.address.lower(), port)
            if addr in at:
                first, other_host = at[addr]
                problems.append(
                    f"{where} ({host.host}) and {first} ({other_host}) have the same address "
                    f"{host.address}:{port}; each host has its own"
                )
            at[addr] = (where, host.host)
            if host.credentials not in self.credentials:
                problems.append(
                    f"{where}: credentials {host.credentials!r} is not defined under "
                    f"`credentials:` (defined: {', '.join(sorted(self.credentials)) or 'none'})"
                )
        return problems

    def _side_problems(self) -> list[str]:
        """The DSMs' credentials defined; each side with its own DSM, bridge, target and
        DSM pointer."""
        problems: list[str] = []
        for side in SIDES:
            dsm = self.sides[side].dsm
            if dsm.credentials is not None and dsm.credentials not in self.credentials:
                problems.append(f"sides.{side}.dsm: credentials {dsm.credentials!r} is not defined")
        x, y = self.sides["X"], self.sides["Y"]
        for what, a, b in (
            ("DSM", x.dsm.host, y.dsm.host),
            ("bridge", x.bridge.host, y.bridge.host),
            ("iSCSI target", x.iscsi_target, y.iscsi_target),
            ("Aurora DSM pointer", x.dsm_pointer, y.dsm_pointer),
        ):
            if a.lower() == b.lower():
                problems.append(
                    f"sides.X and sides.Y name the same {what} {a!r}; each side has its own"
                )
        both = {t.lower() for t in x.targets} & {t.lower() for t in y.targets}
        if both and x.iscsi_target.lower() != y.iscsi_target.lower():
            problems.append(
                f"sides.X and sides.Y name the same iSCSI target {', '.join(sorted(both))}; "
                "each side has its own"
            )
        return problems

    def _client_path_problems(self) -> list[str]:
        """Each client's iSCSI paths through its side's portals to its side's targets,
        a B path to a target of its own."""
        problems: list[str] = []
        for i, c in enumerate(self.clients):
            for side, paths in c.iscsi.items():
                s = self.sides[side]
                known = {p.lower() for p in s.portals}
                # A B path logs in to a target of its own: a second login to A's
                # target through the B portal is a second session to one target,
                # which the Microsoft initiator allows only with MPIO (Connect-IscsiTarget
                # -IsMultipathEnabled; Microsoft Learn, "Multipath I/O overview": MPIO
                # is a feature of Windows Server only), so on a client edition it fails,
                # and a session matched by target alone would count A's as B's (review H2).
                if paths.b is not None:
                    a_target = (paths.a_target or s.iscsi_target).lower()
                    if paths.b_target is None:
                        problems.append(
                            f"clients[{i}].iscsi.{side}.b_target: required with b: {c.host}'s "
                            f"B path on {side} names its own target (a second login to A's "
                            "target needs MPIO, which client editions of Windows lack)"
                        )
                    elif paths.b_target.lower() == a_target:
                        problems.append(
                            f"clients[{i}].iscsi.{side}.b_target: {c.host}'s B path names A's "
                            f"target {paths.b_target}; name the target the B portal serves "
                            "(a second login to one target needs MPIO, which client editions "
                            "of Windows lack)"
                        )
                for what, portal, target in (
                    ("a", paths.a, paths.a_target),
                    ("b", paths.b, paths.b_target),
                ):
                    if portal is not None and portal.lower() not in known:
                        problems.append(
                            f"clients[{i}].iscsi.{side}.{what}: {portal} is not one of "
                            f"{side}'s portals ({', '.join(s.portals)}); list it under "
                            f"sides.{side}.iscsi_portals"
                        )
                    if target is not None and not s.has_target(target):
                        problems.append(
                            f"clients[{i}].iscsi.{side}.{what}_target: {target} is not one "
                            f"of {side}'s targets ({', '.join(s.targets)}); list it under "
                            f"sides.{side}.iscsi_targets"
                        )
        return problems

    def warnings(self) -> list[str]:
        """What is allowed but unwise; `amsm inventory check` prints these."""
        out = []
        if not self.operators:
            out.append("no `operators:` listed: anyone who can reach Temporal may act on this pair")
        for side in SIDES:
            s = self.sides[side]
            if not s.iscsi_portals:
                out.append(
                    f"sides.{side}: no iscsi_portals; clients use the bridge's address "
                    f"{s.bridge.address} as {side}'s iSCSI portal (right only where that "
                    "address is on the media network)"
                )
            several = len(s.portals) > 1
            unassigned = [c.host for c in self.clients if side not in c.iscsi]
            if several and unassigned:
                shown = ", ".join(unassigned[:5]) + (", ..." if len(unassigned) > 5 else "")
                out.append(
                    f"sides.{side}: {len(s.portals)} iSCSI portals, and {len(unassigned)} "
                    f"client(s) without iscsi.{side} ({shown}) log in through the first, "
                    f"{s.portals[0]}; set each client's own TOE (docs/site/client-switch.md)"
                )
            if s.fsnameservers is None:
                out.append(
                    f"sides.{side}: no fsnameservers; amsm neither sets nor checks which "
                    f"K2 file system a client switched to {side} mounts as V: "
                    "(docs/site/client-switch.md)"
                )
        seen = set()
        for where, h in self.all_hosts():
            if h.host in seen:
                continue
            seen.add(h.host)
            if h.transport == "winrm" and h.winrm_settings.scheme == "http":
                out.append(
                    f"{where} ({h.host}): WinRM over plain HTTP (allow_http: true); "
                    "PowerShell and credentials cross the network unprotected"
                )
                if h.winrm_settings.auth == "basic":
                    # winrm/config/service AllowUnencrypted is false on a default service.
                    out.append(
                        f"{where} ({h.host}): Basic over HTTP is refused by a default WinRM "
                        "service (AllowUnencrypted=false) with 'credentials rejected'; the "
                        "host must set AllowUnencrypted=true, or use HTTPS or NTLM"
                    )
        return out

    # -- lookups -----------------------------------------------------------------
    @property
    def queue(self) -> str:
        return self.task_queue or f"amsm-{self.pair}"

    def site_queue(self, side: Side) -> str:
        """The task queue of the activities that act on `side`'s devices."""
        return site_queue(self.queue, side)

    @property
    def workflow_id(self) -> str:
        """The one id under which every big workflow of this pair runs."""
        return pair_workflow_id(self.pair)

    def all_hosts(self) -> list[tuple[str, Host]]:
        out: list[tuple[str, Host]] = []
        for side in SIDES:
            s = self.sides[side]
            out += [(f"sides.{side}.smartbins[{i}]", h) for i, h in enumerate(s.smartbins)]
            out += [(f"sides.{side}.nas.cifs", s.nas.cifs), (f"sides.{side}.nas.ftp", s.nas.ftp)]
            out.append((f"sides.{side}.bridge", s.bridge))
        out.append(("control_point", self.control_point))
        out += [(f"browse[{i}].host", b.host) for i, b in enumerate(self.browse)]
        out += [(f"clients[{i}]", c) for i, c in enumerate(self.clients)]
        return out

    def host(self, name: str) -> Host:
        for _, h in self.all_hosts():
            if h.host.lower() == name.lower():
                return h
        raise KeyError(name)

    def client(self, name: str) -> SwitchableClient:
        for c in self.clients:
            if c.host.lower() == name.lower():
                return c
        raise KeyError(name)

    def side_of_marker(self, text: str) -> Side | None:
        """Which side a Browse config file points at, from its content."""
        found = [s for s in SIDES if self.sides[s].side_marker.lower() in text.lower()]
        return found[0] if len(found) == 1 else None

    def side_of_target(self, iqn: str) -> Side | None:
        """The side that has target `iqn` (iscsi_target or iscsi_targets), or None."""
        for s in SIDES:
            if self.sides[s].has_target(iqn):
                return s
        return None

    def client_paths(self, client: SwitchableClient, side: Side) -> list[IscsiPath]:
        """The logins `client` keeps to `side`: path A and, where set, path B, each
        through the client's own portal (its `iscsi` entry for the side; without one,
        A through the side's first portal to its iscsi_target)."""
        s = self.sides[side]
        mine = client.iscsi.get(side)
        if mine is None:
            return [IscsiPath(name="A", portal=s.portals[0], target=s.iscsi_target)]
        out = [IscsiPath(name="A", portal=mine.a, target=mine.a_target or s.iscsi_target)]
        if mine.b is not None:
            # The inventory requires b_target with b (Inventory._check); the default
            # stays for a model built without that check.
            out.append(IscsiPath(name="B", portal=mine.b, target=mine.b_target or s.iscsi_target))
        return out


def control_approval_workflow_id(pair: str) -> str:
    """The id under which a control of pair `pair` waits for its break-glass override's
    approvals (workflows/control_approval.py), a child of the control, one at a time."""
    return f"{control_workflow_id(pair)}-approval"
