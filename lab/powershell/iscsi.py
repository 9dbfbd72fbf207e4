"""iSCSI: the initiator's portals, targets, sessions and persistent logins; the
module's cmdlets (Windows 8 / Server 2012 on) and iscsicli.exe."""

from __future__ import annotations

import zlib
from typing import Any

from lab.powershell.errors import CmdletError
from lab.powershell.session import Session, World
from lab.powershell.syntax import Command

ISCSI_PORT = 3260
SESSION_PROPERTIES = ("TargetNodeAddress", "IsConnected", "IsPersistent", "SessionIdentifier")
# The iSCSI module (learn.microsoft.com/powershell/module/iscsi) came with Windows 8 and
# Windows Server 2012 (its first reference is the wps.620 docset: NT 6.2). A host
# document's `windows` (NT version, default "10.0") older than that has none of them.
ISCSI_MODULE_SINCE = (6, 2)
ISCSI_MODULE = frozenset(
    {
        "Get-IscsiSession", "Get-IscsiTarget", "Get-IscsiTargetPortal", "New-IscsiTargetPortal",
        "Update-IscsiTargetPortal", "Connect-IscsiTarget", "Disconnect-IscsiTarget",
        "Register-IscsiSession", "Unregister-IscsiSession", "Get-IscsiConnection",
    }
)  # fmt: skip
# Get-IscsiConnection: one MSFT_iSCSIConnection per connection of a session, with the
# portal it goes to (TargetAddress, TargetPortNumber) and the initiator's own address and
# port (learn.microsoft.com/powershell/module/iscsi/get-iscsiconnection).
CONNECTION_PROPERTIES = (
    "ConnectionIdentifier", "InitiatorAddress", "InitiatorPortNumber", "TargetAddress",
    "TargetPortNumber",
)  # fmt: skip


# The Microsoft software initiator as the iSCSI WMI classes name it (an HBA's instance
# name; the software initiator is the first instance of its iSCSIPrt miniport), and the
# initiator port "all ports" (ISCSI_ALL_INITIATOR_PORTS, (ULONG)-1; Microsoft Learn,
# RemoveIScsiPersistentTargetW) that a login made through the default initiator keeps.
SOFTWARE_INITIATOR = "ROOT\\ISCSIPRT\\0000_0"
ALL_INITIATOR_PORTS = 4294967295
# iscsicli.exe, the iSCSI initiator's command line (in System32 since Windows Vista /
# Server 2008): the one verb the drivers run, RemovePersistentTarget <Initiator Name>
# <TargetName> <Initiator Port Number> <Target Portal Address> <Target Portal Socket>
# (its own usage text), which calls RemoveIScsiPersistentTarget and so reaches a
# persistent login whether or not a session is up (the iSCSI cmdlets reach one only
# through a session: Unregister-IscsiSession -SessionIdentifier).
ISCSICLI = "iscsicli"
ISCSICLI_VERBS = {
    "removepersistenttarget": ("RemovePersistentTarget", 5),
    # PersistentLoginTarget <TargetName> <ReportToPNP> <TargetPortalAddress>
    # <TargetPortalSocket> <InitiatorInstance> <Port number> <Security Flags> <Login Flags>
    # <Header Digest> <Data Digest> <Max Connections> <DefaultTime2Wait>
    # <DefaultTime2Retain> <Username> <Password> <AuthType> <Key> <Mapping Count> (its
    # usage text; Microsoft's iscsicli.c sample: 18 arguments with no mapping).
    "persistentlogintarget": ("PersistentLoginTarget", 18),
}
# iscsicli's `*` for an argument (Microsoft's iscsicli.c sample, RemovePersistentTarget):
# a NULL initiator, ISCSI_ALL_INITIATOR_PORTS, a NULL portal ("Both empty and NULL portal
# have the same effect"); RemoveIScsiPersistentTarget takes a null portal as every portal.
ISCSICLI_ANY = "*"
ISCSICLI_BANNER = "Microsoft iSCSI Initiator Version 10.0 Build 17763"


def has_iscsi_module(doc: dict[str, Any]) -> bool:
    major, _, minor = str(doc.get("windows", "10.0")).partition(".")
    return (int(major), int(minor or 0)) >= ISCSI_MODULE_SINCE


def iscsi_doc(doc: dict[str, Any]) -> dict[str, Any]:
    iscsi: dict[str, Any] = doc.setdefault("iscsi", {})
    for key in ("portals", "discovered", "sessions", "persistent"):
        iscsi.setdefault(key, [])
    return iscsi


def new_session(doc: dict[str, Any], iqn: str, portal: str, persistent: bool) -> dict[str, Any]:
    """A session in the identifier's shape Get-IscsiSession shows
    (`fffffa800d008430-4000013700000001`: initiator, then a counter)."""
    iscsi = iscsi_doc(doc)
    iscsi["counter"] = int(iscsi.get("counter", 0)) + 1
    base = zlib.crc32(str(doc["name"]).lower().encode()) & 0xFFFFFFFF
    session = {
        "iqn": iqn,
        "portal": portal,
        "id": f"ffffe000{base:08x}-40000137{iscsi['counter']:08x}",
        "persistent": persistent,
    }
    iscsi["sessions"].append(session)
    return session


def offers(bridge: dict[str, Any], client: dict[str, Any]) -> bool:
    """Whether the bridge's target answers this client's SendTargets. A target returns
    only the targets the initiator may access (RFC 7143 Appendix C, SendTargets); a K2
    bridge serves the clients the K2 System Configuration assigned to it (K2-FACTS.md).
    A bridge document's `iscsi_clients` lists them (absent: every client)."""
    allowed = bridge.get("iscsi_clients")
    if allowed is None:
        return True
    return str(client.get("name", "")).lower() in {str(a).lower() for a in allowed}


def portal_side(world: World, portal: str) -> str | None:
    """The side whose bridge answers at this iSCSI portal address."""
    for side in ("X", "Y"):
        if portal.lower() in (p.lower() for p in world.portals(side)):
            return side
    return None


def _no_cim(cls: str, key: str, value: str) -> str:
    # How the iSCSI module's CDXML cmdlets report an object that is not there.
    return (
        f"No matching {cls} objects found by CIM query for instances of the "
        f"ROOT/Microsoft/Windows/Storage/{cls} class on the CIM server: SELECT * FROM "
        f"{cls} WHERE (({key} LIKE '{value}')). Verify query parameters and retry."
    )


def _list_view(obj: dict[str, Any]) -> str:
    """An object as the console's list view prints it (Format-List)."""
    width = max(len(k) for k in obj)
    lines = [""] + [f"{k.ljust(width)} : {v}" for k, v in obj.items()] + [""]
    return "\n".join(lines)


def persistent_logins(host: dict[str, Any]) -> list[dict[str, Any]]:
    """The persistent logins as MSiSCSIInitiator_PersistentLoginClass instances, with
    the embedded MSiSCSIInitiator_Portal as Windows PowerShell 5.1's ConvertTo-Json
    writes a CIM instance at its default depth (2): its CIM properties, then the
    .NET ones (CimClass, CimInstanceProperties, CimSystemProperties) as their
    ToString()."""
    out = []
    for login in iscsi_doc(host)["persistent"]:
        portal = str(login.get("portal", ""))
        out.append(
            {
                "TargetName": login["iqn"],
                # A login made with no initiator instance lists none (LoginIScsiTarget:
                # InitiatorInstance is optional); the lab's logins name the
                # software initiator unless the host's file says otherwise.
                "InitiatorInstance": str(login.get("initiator", SOFTWARE_INITIATOR)),
                "InitiatorPortNumber": ALL_INITIATOR_PORTS,
                "TargetPortal": {
                    "Address": portal,
                    "Port": ISCSI_PORT,
                    "SymbolicName": "",
                    "PSComputerName": None,
                    "CimClass": "ROOT/wmi:MSiSCSIInitiator_Portal",
                    "CimInstanceProperties": f'Address = "{portal}"\nPort = {ISCSI_PORT}',
                    "CimSystemProperties": (
                        "Microsoft.Management.Infrastructure.CimSystemProperties"
                    ),
                },
            }
        )
    return out


class IscsiCmdlets(Session):
    """The iSCSI module's cmdlets and iscsicli.exe, on the host document's `iscsi`."""

    # A client document's `iscsi`: `portals` (registered target portals, kept across
    # boots, as the initiator keeps them), `discovered` (targets found through them),
    # `sessions` ({iqn, portal, id, persistent}) and `persistent` (the logins the
    # initiator makes again at every boot: {iqn, portal}). See lab/state.py `boot`.
    def _iscsi(self) -> dict[str, Any]:
        return iscsi_doc(self.host)

    def _iscsicli(self, commands: tuple[Command, ...]) -> str:
        if commands[0].args["verb"] == "PersistentLoginTarget":
            return self._iscsicli_persistent_login(commands)
        return self._iscsicli_remove(commands)

    def _iscsicli_persistent_login(self, commands: tuple[Command, ...]) -> str:
        """iscsicli PersistentLoginTarget calls LoginIScsiTarget with IsPersistent TRUE
        (Microsoft's iscsicli.c sample: PersistentLoginTarget and LoginTarget differ only
        in that flag, and only LoginTarget prints a session id), which "either
        establishes a single login session with a target, or creates a persistent login
        to a target ... the specified initiator should log in to the target each time
        the initiator is started, typically at system boot" (Microsoft Learn,
        LoginIScsiTargetW, Remarks). So the lab records the login and makes no session:
        the next boot makes it (state.iscsi_login). The target must be one the initiator
        has discovered (LoginIScsiTargetW: "The target must already exist in the list of
        discovered targets"); `*` for the portal leaves it to the initiator (a null
        TargetPortal: any portal to the target). The portal is not contacted now. It
        prints what the sample prints before the call, then the status's text; a failure
        exits non-zero, which does not stop the script (a native command)."""
        args = [str(a) for a in commands[0].args["args"]]
        target, address, socket = args[0], args[2], args[3]
        iscsi = self._iscsi()
        portal = "" if address == ISCSICLI_ANY else address
        said = (
            f"{ISCSICLI_BANNER}\n\nLoginTarget to {target} on <no init instance> to "
            f"{portal or '<no portal>'}/{socket if portal else 0}\n"
        )
        if target.lower() not in (d.lower() for d in iscsi["discovered"]) or (
            portal and socket.strip() != str(ISCSI_PORT)
        ):
            self.ok = False
            return said + "The target name is not found or is marked as hidden from login. "
        iscsi["persistent"].append({"iqn": target, "portal": portal})
        return said + "The operation completed successfully. "

    def _iscsicli_remove(self, commands: tuple[Command, ...]) -> str:
        """iscsicli RemovePersistentTarget removes the persistent login whose initiator,
        target, initiator port and portal (address and socket) are exactly those given,
        session or not (RemoveIScsiPersistentTargetW, Microsoft Learn); it prints its
        banner and the outcome, and exits with the status (0 when it worked), which
        does not stop a script under $ErrorActionPreference = 'Stop' (a native
        command's exit code is no PowerShell error: about_Preference_Variables). A
        live session stays until the restart; only the login is gone."""
        args = [str(a) for a in commands[0].args["args"]]
        initiator, target, port, address, socket = args
        iscsi = self._iscsi()
        found = None
        gone = []
        for login in iscsi["persistent"]:
            if (
                initiator.lower()
                in (str(login.get("initiator", SOFTWARE_INITIATOR)).lower(), ISCSICLI_ANY)
                and port.strip() in (str(ALL_INITIATOR_PORTS), ISCSICLI_ANY)
                and str(login["iqn"]).lower() == target.lower()
                and (
                    address == ISCSICLI_ANY
                    or (
                        str(login.get("portal", "")).lower() == address.lower()
                        and socket.strip() == str(ISCSI_PORT)
                    )
                )
            ):
                gone.append(login)
        if address != ISCSICLI_ANY:
            gone = gone[:1]
        found = gone[0] if gone else None
        if found is None:
            # No such login: iscsicli prints the failing status's text (the lab takes
            # ISDSC_TARGET_NOT_FOUND's; its exact wording is assumed) and exits non-zero.
            self.ok = False
            return f"{ISCSICLI_BANNER}\n\nThe target name is not found or is marked as hidden from login. "
        iscsi["persistent"] = [p for p in iscsi["persistent"] if not any(p is g for g in gone)]
        for s in iscsi["sessions"]:
            if str(s["iqn"]).lower() == target.lower() and not any(
                str(p["iqn"]).lower() == target.lower() for p in iscsi["persistent"]
            ):
                s["persistent"] = False
        return f"{ISCSICLI_BANNER}\n\nThe operation completed successfully. "

    def _get_iscsi_session(self, commands: tuple[Command, ...]) -> str:
        objects = [
            {
                "TargetNodeAddress": s["iqn"],
                "IsConnected": True,
                "IsPersistent": bool(s.get("persistent")),
                "SessionIdentifier": s["id"],
            }
            for s in self._iscsi()["sessions"]
        ]
        return self._select(commands, objects)

    def _get_iscsi_connection(self, commands: tuple[Command, ...]) -> str:
        """One connection per session (the Microsoft initiator's default: MC/S only
        when asked), to the portal the session was made through; the initiator's
        address is the host's own, its port an ephemeral one."""
        objects = [
            {
                "ConnectionIdentifier": f"{s['id'].split('-')[0]}-{i + 1:x}",
                "InitiatorAddress": str(self.host.get("address") or "0.0.0.0"),
                "InitiatorPortNumber": 49152 + i,
                "TargetAddress": str(s.get("portal", "")),
                "TargetPortNumber": ISCSI_PORT,
            }
            for i, s in enumerate(self._iscsi()["sessions"])
        ]
        return self._select(commands, objects)

    def _get_iscsi_target(self, commands: tuple[Command, ...]) -> str:
        """The targets discovered through the registered portals, logged in to or not
        (learn.microsoft.com/powershell/module/iscsi/get-iscsitarget)."""
        iscsi = self._iscsi()
        connected = {str(s["iqn"]).lower() for s in iscsi["sessions"]}
        objects = [
            {"NodeAddress": t, "IsConnected": t.lower() in connected} for t in iscsi["discovered"]
        ]
        return self._select(commands, objects)

    def _get_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        objects = [
            {"TargetPortalAddress": p, "TargetPortalPortNumber": ISCSI_PORT}
            for p in self._iscsi()["portals"]
        ]
        return self._select(commands, objects)

    def _discover(self, cmdlet: str, portal: str, port: int) -> None:
        """SendTargets to a portal: its targets become discovered; a portal nobody
        answers at fails the cmdlet (RefreshIScsiSendTargetPortal, Microsoft Learn)."""
        side = portal_side(self.world, portal)
        bridge = self.world.bridge(side) if side else None
        iqn = self.world.portal_target(portal)
        if port != ISCSI_PORT or iqn is None or not self.world.portal_answers(portal):
            # A portal nobody answers at: "Connection Failed." (0xEFFF0003), K2-FACTS.md.
            raise CmdletError(cmdlet, "Connection Failed.")
        found: list[str] = self._iscsi()["discovered"]
        # SendTargets through a portal lists the targets reachable through it (RFC 7143
        # Appendix C): here the one its K2 server serves (lab topology `portal_targets`).
        if (bridge is None or offers(bridge, self.host)) and iqn.lower() not in (
            d.lower() for d in found
        ):
            found.append(iqn)

    def _new_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        """New-IscsiTargetPortal registers the portal and discovers its targets
        (learn.microsoft.com/powershell/module/iscsi/new-iscsitargetportal); it prints
        the MSFT_iSCSITargetPortal it made (the drivers drop it into Out-Null)."""
        args = commands[0].args
        portal: str = args["TargetPortalAddress"]
        iscsi = self._iscsi()
        if portal.lower() in (p.lower() for p in iscsi["portals"]):
            # Strict: the drivers add only an absent portal (they read the list first).
            raise CmdletError("New-IscsiTargetPortal", "The target portal already exists.")
        self._discover("New-IscsiTargetPortal", portal, args["TargetPortalPortNumber"])
        iscsi["portals"].append(portal)
        return ""

    def _update_iscsi_portal(self, commands: tuple[Command, ...]) -> str:
        """Update-IscsiTargetPortal discovers a registered portal's targets again
        (learn.microsoft.com/powershell/module/iscsi/update-iscsitargetportal)."""
        args = commands[0].args
        portal: str = args["TargetPortalAddress"]
        if portal.lower() not in (p.lower() for p in self._iscsi()["portals"]):
            raise CmdletError(
                "Update-IscsiTargetPortal",
                _no_cim("MSFT_iSCSITargetPortal", "TargetPortalAddress", portal),
            )
        self._discover("Update-IscsiTargetPortal", portal, args["TargetPortalPortNumber"])
        return ""

    def _session(self, cmdlet: str, session_id: str) -> dict[str, Any]:
        for s in self._iscsi()["sessions"]:
            if str(s["id"]).lower() == session_id.lower():
                session: dict[str, Any] = s
                return session
        raise CmdletError(cmdlet, _no_cim("MSFT_iSCSISession", "SessionIdentifier", session_id))

    def _register_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Register-IscsiSession: the session's login is made again at every boot
        (learn.microsoft.com/powershell/module/iscsi/register-iscsisession)."""
        s = self._session("Register-IscsiSession", commands[0].args["SessionIdentifier"])
        s["persistent"] = True
        self._iscsi()["persistent"].append({"iqn": s["iqn"], "portal": s["portal"]})
        return ""

    def _unregister_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Unregister-IscsiSession removes the session's persistent login, "to prevent
        it from automatically reconnection on restart"; the session itself stays
        (learn.microsoft.com/powershell/module/iscsi/unregister-iscsisession)."""
        s = self._session("Unregister-IscsiSession", commands[0].args["SessionIdentifier"])
        s["persistent"] = False
        iscsi = self._iscsi()
        iscsi["persistent"] = [
            p for p in iscsi["persistent"] if str(p.get("iqn", "")).lower() != s["iqn"].lower()
        ]
        return ""

    def _disconnect_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Disconnect-IscsiTarget ends the sessions to the target but leaves a
        persistent login registered: the initiator logs in again at the next boot (only
        Unregister-IscsiSession removes it; learn.microsoft.com/powershell/module/iscsi/
        disconnect-iscsitarget). A session whose disks are in use cannot be logged out
        (LogoutIScsiTarget, Microsoft Learn: the service first makes sure every device
        of the session can be removed): SNFS holds them while V: is mounted from them."""
        iqn: str = commands[0].args["NodeAddress"]
        iscsi = self._iscsi()
        if not any(s["iqn"].lower() == iqn.lower() for s in iscsi["sessions"]):
            raise CmdletError(
                "Disconnect-IscsiTarget", f"No iSCSI session to target '{iqn}' exists."
            )
        side = self.world.target_side(iqn)
        if side is not None and self.host.get("mounted_v") == side:
            raise CmdletError(
                "Disconnect-IscsiTarget",
                "The session cannot be logged out since a device on that session is "
                "currently being used.",
            )
        iscsi["sessions"] = [s for s in iscsi["sessions"] if s["iqn"].lower() != iqn.lower()]
        return ""

    def _connect_iscsi(self, commands: tuple[Command, ...]) -> str:
        """Connect-IscsiTarget -NodeAddress logs in to a target the initiator has
        discovered through a registered portal (New-IscsiTargetPortal; LoginIScsiTarget:
        "The target must already exist in the list of discovered targets"), through a
        portal that serves it; -IsPersistent $true registers the login for every boot.
        It prints the MSFT_iSCSISession it made
        (learn.microsoft.com/powershell/module/iscsi/connect-iscsitarget)."""
        args = commands[0].args
        iqn: str = args["NodeAddress"]
        portal: str = args["TargetPortalAddress"]
        iscsi = self._iscsi()
        if iqn.lower() not in (d.lower() for d in iscsi["discovered"]):
            raise CmdletError(
                "Connect-IscsiTarget",
                "The target name is not found or is marked as hidden from login.",
            )
        served = self.world.portal_target(portal)
        if (
            served is None
            or served.lower() != iqn.lower()
            or not self.world.portal_answers(portal)
            or args["TargetPortalPortNumber"] != ISCSI_PORT
        ):
            # The login goes through exactly the portal named (-TargetPortalAddress);
            # one that does not answer, or serves another target, fails it.
            raise CmdletError("Connect-IscsiTarget", "The target portal could not be reached.")
        if any(s["iqn"].lower() == iqn.lower() for s in iscsi["sessions"]):
            raise CmdletError(
                "Connect-IscsiTarget", "The target has already been logged in via an iSCSI session."
            )
        session = new_session(self.host, iqn, portal, bool(args["IsPersistent"]))
        if args["IsPersistent"]:
            iscsi["persistent"].append({"iqn": iqn, "portal": portal})
        if len(commands) > 1:
            return ""  # | Out-Null
        return _list_view(
            {
                "AuthenticationType": "NONE",
                "InitiatorNodeAddress": f"iqn.1991-05.com.microsoft:{str(self.host['name']).lower()}",
                "IsConnected": True,
                "IsPersistent": session["persistent"],
                "NumberOfConnections": 1,
                "SessionIdentifier": session["id"],
                "TargetNodeAddress": iqn,
            }
        )
