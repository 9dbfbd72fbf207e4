"""`amsm lab init`: a fresh lab directory, mirrored with X main.

Writes, under DIR:
- `inventory.yaml`: a valid `Inventory` (pair `lab`), every host on 127.0.0.1 with
  its own free port, credentials `lab-admin` = `keys/id_ed25519`; the transports are
  mixed (`winrm_plan`): the control point, the MediaFrame server, Y's SmartBins
  servers and every second client use `transport: winrm` (own port, credentials
  `lab-winrm`), most over HTTPS, the MediaFrame server over plain HTTP;
- `keys/id_ed25519` (+ `.pub`): the worker's client key, the only key the hosts accept;
- `keys/hosts/<host>.key`: one SSH host key per host, and `known_hosts` listing them;
- `winrm-ca.pem` and `keys/winrm/<host>.pem|.key`: the lab CA and each host's
  WinRM server certificate; `secrets/winrm-password`: the WinRM password (0600);
- `secrets/dsm-password`: the DSMs' password (credentials `lab-dsm`; 0600), which the
  SQLite3 ODBC driver cannot check (lab/dsm.py, "Logins");
- `secrets/console-operator`, `secrets/console-viewer`: the passwords of the web
  console's two accounts, `operator` and `viewer` (0600), whose Argon2 hashes are in
  `secrets/console-accounts.yaml` (console/accounts.py). The lab's inventory lists no
  `operators:` (anyone may act, as with the CLI), so `viewer` is capped at viewing there;
  `secrets/console-session-key` (the cookies' signing key) is not written here: the
  console makes it at its first start (console/main.py);
- `lab.db`: the devices' state; `dsm-x.db`, `dsm-y.db`: the DSMs.

Every host keeps its SSH listener; the inventory says which transport the worker uses.

Refuses a directory that already holds an inventory.yaml unless `force=True`.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
from pathlib import Path, PureWindowsPath
from typing import Any

import asyncssh
import yaml

from console.accounts import write_accounts
from inventory.load import InventoryError, parse_inventory
from inventory.models import SIDES, DeviceSettings, Side
from lab import LabError, write_random_secret
from lab.dsm import (
    DSM_PASSWORD_FILE,
    DSM_USER,
    create_dsm,
    dsm_path,
    initial_assets,
    write_dsm_password,
)
from lab.media import clip_paths
from lab.powershell import new_session
from lab.state import DB_NAME, LabState
from lab.winrm import CA_FILE, CERT_DIR, PASSWORD_FILE, write_password, write_pki

PAIR = "lab"
ADDRESS = "127.0.0.1"
CREDENTIALS = "lab-admin"
WINRM_CREDENTIALS = "lab-winrm"
DSM_CREDENTIALS = "lab-dsm"
CLIENT_KEY = "keys/id_ed25519"
HOST_KEY_DIR = "keys/hosts"
KNOWN_HOSTS = "known_hosts"
INVENTORY = "inventory.yaml"
CONTROL_POINT = "cp-01"
CONFIG_DIR = r"C:\Thomson\MediaFrame\Configuration"

# (component name, role, host, services, active config files)
BROWSE: list[tuple[str, str, str, list[str], list[str]]] = [
    (
        "mediaframe",
        "mediaframe",
        "browse-srv",
        ["GV Asset Manager", "GV Ask", "GV Metadata"],
        ["MediaFrame.exe.config"],
    ),
    ("k2-mdi", "k2-mdi", "mdi-k2", ["GV K2 MDI"], ["K2_MDI_Service.exe.config"]),
    ("news-mdi", "news-mdi", "mdi-news", ["News MDI"], ["News_MDI_Service.exe.config"]),
    ("ftp-mdi-1", "ftp-mdi", "mdi-ftp1", ["GV FTP MDI"], ["FTP_MDI.exe.config"]),
    ("ftp-mdi-2", "ftp-mdi", "mdi-ftp2", ["GV FTP MDI"], ["FTP_MDI.exe.config"]),
]

# A service that depends on a Browse service (Stop-Service -Force stops it too): the
# K2 MDI's per-K2 host monitor. (key name, display name)
BROWSE_DEPENDENTS = {"GV K2 MDI": ("GVK2MDIMonitor", "GV K2 MDI Host Monitor")}


def service_key(display: str) -> str:
    """The lab's key name of a Browse service: its display name without spaces."""
    return display.replace(" ", "")


# Master clips in SmartBins folders (an Aurora master clip is a folder), and WIP projects.
VOLUME_CLIPS = [
    ("News", "clip-001"),
    ("News", "clip-002"),
    ("News", "clip-003"),
    ("Sports", "clip-001"),
]
VOLUME_FILES = [path for smartbin, clip in VOLUME_CLIPS for path in clip_paths(smartbin, clip)] + [
    r"V:\WIP\Projects\evening-news.proj",
    r"V:\WIP\Projects\sports-desk.proj",
]


def iqn(side: Side, server: str = "A") -> str:
    """A side's target name; on a redundant lab, server "B" (the B K2 server's TOEs)
    has its own."""
    suffix = "" if server == "A" else "-b"
    return f"iqn.1999-06.com.grassvalley:k2-{side.lower()}{suffix}"


# A redundant K2 SAN (`--redundant`): per side, media networks A and B, each served by
# one K2 server with two TOEs (two portals), each server its own target; K2Config
# assigns each client one TOE on A and one on B (K2 Installation and Service Manual,
# "About iSCSI bandwidth" and "Failover behaviors"; K2-FACTS.md). That the B server's
# TOEs serve a target of their own is this lab's assumption (the manual does not name
# targets); a site says what its SAN has in sides.S.iscsi_targets. TEST-NET-2 addresses, never routed: network A
# 198.51.100.x, network B 198.51.101.x; X's TOEs .31/.32, Y's .131/.132.
TOES = 2


def redundant_portals(side: Side, network: str) -> list[str]:
    base = 31 if side == "X" else 131
    net = 100 if network == "A" else 101
    return [f"198.51.{net}.{base + i}" for i in range(TOES)]


def browse_config(base: str, side: Side) -> str:
    """A Browse config file pointing at `side` (it names that side's DSM, never the other)."""
    s = side.lower()
    return (
        f'<configuration><appSettings><add key="DsmServer" value="dsm-{s}" />'
        f'<add key="K2System" value="k2-{s}" /><add key="Service" value="{base}" />'
        "</appSettings></configuration>\n"
    )


def insync_cfg(master: Side) -> str:
    slave = "Y" if master == "X" else "X"
    return (
        f"[InSync]\nDirection=OneWay\nMode=Event\nMaster={master}\nSlave={slave}\n"
        f"Source=\\\\nas-ftp-{master.lower()}:10000\\V\n"
        f"Target=\\\\nas-ftp-{slave.lower()}:10000\\V\n"
    )


def winrm_plan(side_hosts: dict[Side, dict[str, Any]], clients: list[str]) -> dict[str, Any]:
    """Which hosts the worker reaches over WinRM, and how (the rest use SSH).

    The control point, the MediaFrame server, Y's SmartBins servers and every second
    client: HTTPS (lab CA) with NTLM or Basic, and the MediaFrame server over plain
    HTTP with Basic, so a switch drives both transports and every WinRM flavour.
    """
    https_ntlm = {"scheme": "https", "auth": "ntlm", "ca_file": CA_FILE}
    https_basic = {"scheme": "https", "auth": "basic", "ca_file": CA_FILE}
    http_basic = {"scheme": "http", "auth": "basic", "allow_http": True}
    mediaframe = next(host for _, role, host, _, _ in BROWSE if role == "mediaframe")
    plan: dict[str, Any] = {CONTROL_POINT: https_ntlm, mediaframe: http_basic}
    for i, name in enumerate(side_hosts["Y"]["smartbins"]):
        plan[name] = https_basic if i % 2 == 0 else https_ntlm
    for i, name in enumerate(clients):
        if i % 2 == 1:
            plan[name] = https_ntlm if i % 4 == 1 else https_basic
    return plan


def _media_content(path: str) -> str:
    p = PureWindowsPath(path)
    return f"{p.suffix.lstrip('.')} {p.parent.name}/{p.name}\n"


# Lab ports come from below the kernel's ephemeral range (32768-60999 on Linux), so an
# outgoing connection can never take a port between `lab init` and `lab serve`.
PORT_RANGE = (20000, 32000)
PORTS_VARIABLE = "AMSM_LAB_PORTS"  # LOW-HIGH: labs made side by side kept apart


def port_range() -> tuple[int, int]:
    """PORT_RANGE, or the part of it AMSM_LAB_PORTS names (e.g. `20000-25999`), so that
    labs made at the same moment by different processes (the tests on several cores)
    never choose the same free port before either serves it."""
    text = os.environ.get(PORTS_VARIABLE, "").strip()
    if not text:
        return PORT_RANGE
    low, sep, high = text.partition("-")
    if sep and low.strip().isdigit() and high.strip().isdigit():
        lo, hi = int(low), int(high) + 1
        if PORT_RANGE[0] <= lo < hi <= PORT_RANGE[1]:
            return lo, hi
    raise LabError(
        f"{PORTS_VARIABLE}={text!r}: LOW-HIGH within {PORT_RANGE[0]}-{PORT_RANGE[1] - 1} "
        "(below the kernel's ephemeral ports), e.g. 20000-25999"
    )


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1, outside the ephemeral range."""
    rng = random.SystemRandom()
    chosen: list[int] = []
    where = port_range()
    candidates = list(range(*where))
    rng.shuffle(candidates)
    for port in candidates:
        if len(chosen) == count:
            break
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((ADDRESS, port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < count:
        raise LabError(
            f"only {len(chosen)} free ports in {where[0]}-{where[1] - 1}; {count} needed"
        )
    return chosen


# Every lab host runs Windows with .NET Framework 4.8, as WMF 5.1 wants 4.5.2 or later:
# its version is the Release value of this key (Microsoft Learn, "Determine which .NET
# Framework versions are installed": 528049 is 4.8 on Windows other than 10 1903+).
DOTNET_KEY = "HKLM:\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
DOTNET_48 = {"Release": 528049, "Version": "4.8.03761"}


def _host_doc(name: str, kind: str, side: Side | None, port: int, boot_ms: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "side": side,
        "address": ADDRESS,
        "port": port,
        "services": {},
        "processes": [],
        "autostart": [],
        "registry": {DOTNET_KEY: dict(DOTNET_48)},
        "files": {},
        "mounted_v": None,
        "boot_time": boot_ms,
        "down_until": None,
    }


def _remove_old(d: Path) -> None:
    names = (DB_NAME, "dsm-x.db", "dsm-y.db", "dsm-x.instance.db", "dsm-y.instance.db")
    for name in (*names, "dsm-x.db.restoring", "dsm-y.db.restoring"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (d / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(d / HOST_KEY_DIR, ignore_errors=True)
    shutil.rmtree(d / CERT_DIR, ignore_errors=True)


def init_lab(
    directory: str | Path,
    editors: int = 2,
    ingest: int = 1,
    smartbins: int = 1,
    reboot_seconds: float = 5.0,
    force: bool = False,
    redundant: bool = False,
) -> Path:
    """Create a lab in `directory`; return the path of its inventory.yaml. `redundant`:
    each side a redundant K2 SAN (media networks A and B, a TOE per client on each).

    Refuses (LabError) an existing inventory.yaml without `force`, a path that is
    a file, a directory name an ODBC string cannot hold, and nonsensical counts.
    """
    if editors < 0 or ingest < 0 or smartbins < 1:
        raise LabError("a lab needs at least one SmartBins server per side and no negative counts")
    if not reboot_seconds > 0:
        raise LabError("reboot_seconds must be positive")
    d = Path(directory).expanduser().resolve()
    if d.exists() and not d.is_dir():
        raise LabError(f"{d} exists and is not a directory")
    if any(c in str(d) for c in ";{}\n"):
        raise LabError(f"{d}: a lab directory name cannot hold ';', braces or newlines (ODBC)")
    inventory_path = d / INVENTORY
    if inventory_path.exists() and not force:
        raise LabError(f"{d} already holds a lab ({INVENTORY}); use --force to replace it")
    try:
        d.mkdir(parents=True, exist_ok=True)
        _remove_old(d)
        return _write_lab(d, editors, ingest, smartbins, reboot_seconds, redundant)
    except OSError as e:
        raise LabError(f"cannot write the lab in {d}: {e.strerror or e}") from None


def _write_lab(
    d: Path, editors: int, ingest: int, smartbins: int, reboot_seconds: float, redundant: bool
) -> Path:
    devices = DeviceSettings()
    boot_ms = int(time.time() * 1000)

    # Names first, then one port each.
    side_hosts: dict[Side, dict[str, Any]] = {}
    names: list[str] = []
    for side in SIDES:
        info = _side_info(side, smartbins, redundant)
        side_hosts[side] = info
        names += [*info["smartbins"], info["nas_cifs"], info["nas_ftp"], info["bridge"]]
    names.append(CONTROL_POINT)
    names += [b[2] for b in BROWSE]
    clients = [(f"ED-{i:02d}", "edit") for i in range(1, editors + 1)]
    clients += [(f"IN-{i:02d}", "ingest") for i in range(1, ingest + 1)]
    names += [c[0] for c in clients]
    plan = winrm_plan(side_hosts, [c[0] for c in clients])
    all_ports = free_ports(len(names) + len(plan))
    ports = dict(zip(names, all_ports[: len(names)], strict=True))
    winrm_ports = dict(zip(plan, all_ports[len(names) :], strict=True))

    def host_entry(name: str, **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"host": name, "address": ADDRESS, "port": ports[name]}
        if name in plan:
            entry["transport"] = "winrm"
            entry["winrm"] = {**plan[name], "port": winrm_ports[name]}
            entry["credentials"] = WINRM_CREDENTIALS
        else:
            entry["credentials"] = CREDENTIALS
        return {**entry, **extra}

    # -- device state ------------------------------------------------------------------
    docs = _side_docs(side_hosts, ports, devices, boot_ms)
    docs.append(_control_point_doc(ports[CONTROL_POINT], devices, boot_ms))
    docs += _browse_docs(ports, boot_ms)
    for name, kind in clients:
        x = side_hosts["X"]
        docs.append(_client_doc(name, kind, x, clients, ports[name], devices, boot_ms, redundant))
    _winrm_services(docs, plan)

    topology = {
        "pair": PAIR,
        "control_point": CONTROL_POINT,
        "sides": side_hosts,
        "devices": devices.model_dump(),
    }
    volume = {path: _media_content(path) for path in VOLUME_FILES}
    LabState(d).create(topology, reboot_seconds, docs, {side: dict(volume) for side in SIDES})

    # -- DSMs ------------------------------------------------------------------------------
    assets = initial_assets()
    create_dsm(dsm_path(d, "X"), "dsm-x", "main", "running", "master", assets)
    create_dsm(dsm_path(d, "Y"), "dsm-y", "backup", "running", "backup", assets)

    # -- keys ---------------------------------------------------------------------------------
    _write_ssh_keys(d, names, ports)
    write_pki(d, names, ADDRESS)
    write_password(d)
    write_dsm_password(d)
    write_console_accounts(d)

    # -- inventory (last: its presence marks a complete lab) -------------------------------------
    text = _inventory_yaml(d, side_hosts, ports, host_entry, clients, reboot_seconds, redundant)
    try:
        parse_inventory(text, str(d / INVENTORY))
    except InventoryError as e:
        # A bug in this file, not an operator error: say exactly what is wrong.
        raise LabError(f"lab init wrote an invalid inventory: {e.explain()}") from None
    (d / INVENTORY).write_text(text, encoding="utf-8")
    return d / INVENTORY


def _side_info(side: Side, smartbins: int, redundant: bool) -> dict[str, Any]:
    """A side's hosts by role, its iSCSI target and portals, its SNFS name servers."""
    s = side.lower()
    info: dict[str, Any] = {
        "smartbins": [f"sb-{s}{i}" for i in range(1, smartbins + 1)],
        "nas_cifs": f"nas-cifs-{s}",
        "nas_ftp": f"nas-ftp-{s}",
        "bridge": f"bridge-{s}",
        "dsm": f"dsm-{s}",
        "iqn": iqn(side),
        # The bridge's address on the side's own media network (TEST-NET-2, never
        # routed): what clients register as the iSCSI portal.
        "portals": [f"198.51.100.{31 if side == 'X' else 131}"],
        # The side's SNFS name server (the bridge is also the file system manager,
        # as on a basic K2 SAN): what a client's fsnameservers file lists.
        "fsnameservers": [f"bridge-{s}"],
    }
    if redundant:
        a, b = redundant_portals(side, "A"), redundant_portals(side, "B")
        info["portals"] = [*a, *b]
        info["portal_targets"] = {
            **{p: iqn(side, "A") for p in a},
            **{p: iqn(side, "B") for p in b},
        }
    return info


def _side_docs(
    side_hosts: dict[Side, dict[str, Any]],
    ports: dict[str, int],
    devices: DeviceSettings,
    boot_ms: int,
) -> list[dict[str, Any]]:
    """Each side's SmartBins servers (X main: normal and running; on Y only the
    PseudoSmartBins host runs, in pseudo mode), NAS heads (AllSync on X's) and bridge."""
    docs: list[dict[str, Any]] = []
    for side in SIDES:
        info = side_hosts[side]
        for i, name in enumerate(info["smartbins"]):
            doc = _host_doc(name, "smartbins", side, ports[name], boot_ms)
            pseudo = side == "Y" and i == 0
            running = side == "X" or pseudo
            doc["services"][devices.smartbins_service] = "Running" if running else "Stopped"
            doc["registry"][devices.smartbins_registry] = {
                devices.smartbins_mode_value: "Pseudo" if pseudo else "Normal"
            }
            docs.append(doc)
        cifs = _host_doc(info["nas_cifs"], "nas-cifs", side, ports[info["nas_cifs"]], boot_ms)
        if side == "X":
            cifs["processes"].append(devices.allsync_process)
        ftp = _host_doc(info["nas_ftp"], "nas-ftp", side, ports[info["nas_ftp"]], boot_ms)
        ftp["services"]["K2FTP"] = "Running"
        bridge = _host_doc(info["bridge"], "bridge", side, ports[info["bridge"]], boot_ms)
        docs += [cifs, ftp, bridge]
    return docs


def _control_point_doc(port: int, devices: DeviceSettings, boot_ms: int) -> dict[str, Any]:
    """The Control Point PC: InSync running, direction X -> Y, its three cfg files."""
    cp = _host_doc(CONTROL_POINT, "control-point", None, port, boot_ms)
    cp["processes"].append(devices.insync_process)
    cp["registry"][devices.insync_registry] = {devices.insync_direction_value: "X"}
    cfg_dir = devices.insync_cfg_dir.rstrip("\\") + "\\"
    cp["files"][cfg_dir + "InsyncXtoY.cfg"] = insync_cfg("X")
    cp["files"][cfg_dir + "InsyncYtoX.cfg"] = insync_cfg("Y")
    cp["files"][cfg_dir + "Insync.cfg"] = insync_cfg("X")
    return cp


def _browse_docs(ports: dict[str, int], boot_ms: int) -> list[dict[str, Any]]:
    """The Browse hosts, running and pointing at X (the backup config file Y's)."""
    docs: list[dict[str, Any]] = []
    for _, _, host, services, files in BROWSE:
        doc = _host_doc(host, "browse", None, ports[host], boot_ms)
        # The inventory names Browse services as the guides do, by display name; the
        # key names differ (Get-Service -Name takes either and answers with the key).
        doc["services"] = {service_key(svc): "Running" for svc in services}
        doc["service_info"] = {service_key(svc): {"DisplayName": svc} for svc in services}
        for svc, (dep, display) in BROWSE_DEPENDENTS.items():
            if svc in services:
                doc["services"][dep] = "Running"
                doc["service_info"][dep] = {"DisplayName": display}
                doc["service_info"][service_key(svc)]["DependentServices"] = [dep]
        for f in files:
            base = f.removesuffix(".exe.config")
            doc["files"][f"{CONFIG_DIR}\\{f}"] = browse_config(base, "X")
            doc["files"][f"{CONFIG_DIR}\\{base}.backup.exe.config"] = browse_config(base, "Y")
        docs.append(doc)
    return docs


def _client_doc(
    name: str,
    kind: str,
    x: dict[str, Any],
    clients: list[tuple[str, str]],
    port: int,
    devices: DeviceSettings,
    boot_ms: int,
    redundant: bool,
) -> dict[str, Any]:
    """A switchable client on X: its Aurora program running, logged in to X's target
    (persistently) through X's portal(s), V: mounted from X, pointing at dsm-x."""
    doc = _host_doc(name, "client", None, port, boot_ms)
    process = "AuroraEdit" if kind == "edit" else "AuroraIngest"
    doc["client_kind"] = kind
    doc["processes"] = [process]
    doc["autostart"] = [process]
    doc["registry"][devices.aurora_registry] = {devices.aurora_dsm_value: "dsm-x"}
    logins = [(iqn("X"), p) for p in client_portals(x, clients, name)]
    doc["iscsi"] = {
        "portals": [p for _, p in logins],
        "discovered": [t for t, _ in logins],
        "sessions": [],
        "persistent": [{"iqn": t, "portal": p} for t, p in logins],
    }
    if redundant:  # B's target is the B server's
        doc["iscsi"]["discovered"][1] = iqn("X", "B")
        doc["iscsi"]["persistent"][1]["iqn"] = iqn("X", "B")
        logins[1] = (iqn("X", "B"), logins[1][1])
    for t, p in logins:
        new_session(doc, t, p, persistent=True)
    doc["files"][devices.snfs_nameservers_file] = "".join(f"{n}\n" for n in x["fsnameservers"])
    doc["mounted_v"] = "X"
    return doc


def _winrm_services(docs: list[dict[str, Any]], plan: dict[str, Any]) -> None:
    """The WinRM service settings of the hosts the worker reaches over WinRM."""
    for doc in docs:
        how = plan.get(doc["name"])
        if how is None:
            continue
        # Its WinRM service listens (the lab reads its WSMan: drive only there), and
        # was configured for what the worker uses: Basic (winrm set
        # winrm/config/service/auth @{Basic="true"}) and, over HTTP, unencrypted
        # messages (winrm set winrm/config/service @{AllowUnencrypted="true"}); a
        # default service refuses both (lab/winrm.py service_config).
        doc["winrm"] = {
            "basic": how["auth"] == "basic",
            "allow_unencrypted": how["scheme"] == "http",
        }


def _write_ssh_keys(d: Path, names: list[str], ports: dict[str, int]) -> None:
    """The worker's SSH key, every host's key, and the known_hosts file that lists them."""
    (d / HOST_KEY_DIR).mkdir(parents=True, exist_ok=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519", comment="amsm-lab worker")
    client_key.write_private_key(str(d / CLIENT_KEY))
    os.chmod(d / CLIENT_KEY, 0o600)
    client_key.write_public_key(str(d / f"{CLIENT_KEY}.pub"))
    known: list[str] = []
    for name in names:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=name)
        key_path = d / HOST_KEY_DIR / f"{name}.key"
        key.write_private_key(str(key_path))
        os.chmod(key_path, 0o600)
        public = key.export_public_key("openssh").decode("ascii").split()
        known.append(f"[{ADDRESS}]:{ports[name]} {public[0]} {public[1]}\n")
    (d / KNOWN_HOSTS).write_text("".join(known), encoding="ascii")


CONSOLE_ACCOUNTS = "secrets/console-accounts.yaml"


def client_portals(info: dict[str, Any], clients: list[tuple[str, str]], name: str) -> list[str]:
    """The portal(s) a lab client logs in through on a side: its TOE on network A and,
    on a redundant side, on network B (clients take the TOEs in turn); otherwise the
    side's one portal."""
    if not info.get("portal_targets"):
        return [info["portals"][0]]
    i = [c[0] for c in clients].index(name) % TOES
    return [info["portals"][i], info["portals"][TOES + i]]


def write_console_accounts(d: Path) -> None:
    """Two console accounts with fresh random passwords: `operator` and `viewer`."""
    accounts: dict[str, tuple[str, Any]] = {}
    for name in ("operator", "viewer"):
        path = d / "secrets" / f"console-{name}"
        write_random_secret(path)
        accounts[name] = (path.read_text(encoding="ascii").strip(), name)
    write_accounts(d / CONSOLE_ACCOUNTS, accounts)


def timing(reboot_seconds: float) -> dict[str, float]:
    """Timeouts scaled to the lab's reboot time, so tests wait seconds, not minutes."""
    return {
        "reboot_timeout": max(30.0, 20 * reboot_seconds),
        "poll_interval": min(2.0, max(0.1, reboot_seconds / 4)),
        "settle_time": min(5.0, max(0.5, reboot_seconds)),
        "mount_timeout": max(10.0, 20 * reboot_seconds),
        # One clock for the lab and the worker: below the shortest gap between two boots.
        "boot_tolerance": min(2.0, reboot_seconds / 4),
        "heartbeat_timeout": 10.0,
        "operation_timeout": 60.0,
        "replication_timeout": 30.0,
        "lost_side_timeout": 5.0,
        "fence_max_interval": 2.0,
    }


def _inventory_yaml(
    d: Path,
    side_hosts: dict[Side, dict[str, Any]],
    ports: dict[str, int],
    host_entry: Any,
    clients: list[tuple[str, str]],
    reboot_seconds: float,
    redundant: bool = False,
) -> str:
    sides: dict[str, Any] = {}
    for side in SIDES:
        info = side_hosts[side]
        sides[side] = {
            "dsm": {
                "host": info["dsm"],
                "profile": "lab",
                # No busy timeout here: the driver bounds every query itself (`Timeout=`,
                # activities/drivers/dsm_profiles.py).
                "odbc": f"Driver=SQLite3;Database={dsm_path(d, side)}",
                "credentials": DSM_CREDENTIALS,
            },
            "smartbins": [
                host_entry(name, pseudo_host=(i == 0)) for i, name in enumerate(info["smartbins"])
            ],
            "nas": {"cifs": host_entry(info["nas_cifs"]), "ftp": host_entry(info["nas_ftp"])},
            "bridge": host_entry(info["bridge"]),
            "iscsi_target": info["iqn"],
            "iscsi_portals": info["portals"],
            "fsnameservers": info["fsnameservers"],
        }
        if redundant:
            sides[side]["iscsi_targets"] = [iqn(side, "B")]

    def client_entry(name: str, kind: str) -> dict[str, Any]:
        entry = host_entry(name, kind=kind)
        if redundant:
            paths = {}
            for side in SIDES:
                a, b = client_portals(side_hosts[side], clients, name)
                paths[side] = {"a": a, "b": b, "b_target": iqn(side, "B")}
            entry["iscsi"] = paths
        return entry

    data = {
        "pair": PAIR,
        "known_hosts": KNOWN_HOSTS,
        "credentials": {
            CREDENTIALS: {"username": "Administrator", "key_file": CLIENT_KEY},
            WINRM_CREDENTIALS: {"username": "Administrator", "password_file": PASSWORD_FILE},
            DSM_CREDENTIALS: {"username": DSM_USER, "password_file": DSM_PASSWORD_FILE},
        },
        "sides": sides,
        "control_point": host_entry(CONTROL_POINT),
        "browse": [
            {
                "name": name,
                "role": role,
                "host": host_entry(host),
                "services": services,
                "config_files": files,
            }
            for name, role, host, services, files in BROWSE
        ],
        "clients": [client_entry(name, kind) for name, kind in clients],
        "timing": timing(reboot_seconds),
    }
    header = (
        "# The lab's pair, written by `amsm lab init`. Every host is a simulated Windows\n"
        "# host served by `amsm lab serve` on 127.0.0.1 over SSH, and over WinRM where it\n"
        "# says `transport: winrm` (HTTPS with the lab CA, or plain HTTP where it allows\n"
        "# it); the DSMs are SQLite files.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
