"""What the site check reads on every Windows host, whatever its role: that it answers
over its transport (its SSH host key or WinRM certificate verified, its credentials
taken), its PowerShell, its clock, its WinRM service's settings, and its services."""

from __future__ import annotations

from activities.checks.report import READ_ERRORS, Report, not_read
from activities.drivers.errors import HostNotTrusted, LogonRefused
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import SESSIONS_PER_HOST, HostDriver
from activities.models import ANSWERS, CheckRole
from activities.surveys import probes
from inventory.models import Host, Inventory

# Beyond this the clock is worth a warning (seconds, after the round trip's share).
CLOCK_WARNING = 5.0
# Kerberos refuses tickets beyond its maximum clock skew, 5 minutes by default
# (Microsoft Learn, "Maximum tolerance for computer clock synchronization").
KERBEROS_SKEW = 300.0
# The PowerShell the drivers are written for: Windows PowerShell 5.1 (the JSON shapes,
# the CLIXML of its errors, Stop-Service -NoWait, the lab's model).
POWERSHELL = (5, 1)
# Workers that may drive one host at once: a pair served by two site workers (docs/site/production.md,
# "The worker") reaches the shared hosts from both, each with up to SESSIONS_PER_HOST
# WinRM shells (activities/drivers/winrm.py), each running one command at a time.
WORKERS_PER_HOST = 2
SHELLS_NEEDED = SESSIONS_PER_HOST * WORKERS_PER_HOST


def where(host: Host) -> str:
    if host.transport == "ssh":
        return f"ssh at {host.address}:{host.port}"
    return f"winrm at {host.address}:{host.winrm_settings.endpoint_port}"


def unanswered(inv: Inventory, role: CheckRole, host: Host, report: Report, e: Exception) -> None:
    """A host whose first read failed: what stopped it, named as the check it fails.
    Nothing else on it could be checked."""
    w = host.winrm_settings if host.transport == "winrm" else None
    if isinstance(e, HostNotTrusted) and e.what == "host-key":
        report.add(
            "host-key",
            f"the host key that {inv.known_hosts} lists for [{host.address}]:{host.port}",
            not_read(e),
            "if the host was reinstalled or its key replaced, check the new key on the host "
            "itself and put it in known_hosts; if not, something else answers at that address",
            warning=report.read_only,
        )
        return
    if isinstance(e, HostNotTrusted) and w is not None:
        report.add(
            "certificate",
            f"a certificate for {host.address} issued by "
            f"{w.ca_file or 'a CA of the default bundle'} (winrm.ca_file)",
            not_read(e),
            "give the host's HTTPS listener a certificate from that CA for its address (not "
            "expired), or name the CA that issued it in winrm.ca_file",
            warning=report.read_only,
        )
        return
    if isinstance(e, LogonRefused) and w is not None and w.auth == "basic":
        over_http = w.scheme == "http"
        report.add(
            "winrm-basic",
            "the WinRM service taking Basic (Auth/Basic true"
            + (", AllowUnencrypted true over HTTP" if over_http else "")
            + f") for credentials {host.credentials!r}",
            not_read(e),
            'on the host: winrm set winrm/config/service/auth @{Basic="true"}'
            + (
                ' and winrm set winrm/config/service @{AllowUnencrypted="true"}'
                if over_http
                else ""
            )
            + "; or use HTTPS with NTLM; a wrong password is refused the same way (401)",
            warning=report.read_only,
        )
        return
    report.add(
        ANSWERS[role],
        f"an answer over {where(host)} with credentials {host.credentials!r}",
        not_read(e),
        "make the host reachable from the worker and its credentials valid "
        "(docs/site/transports.md); nothing else on it could be checked",
        warning=report.read_only,
    )


def powershell(version: tuple[int, int], report: Report) -> None:
    report.ran("powershell")
    if version >= POWERSHELL:
        return
    major, minor = version
    report.add(
        "powershell",
        f"Windows PowerShell {POWERSHELL[0]}.{POWERSHELL[1]} or later ($PSVersionTable.PSVersion)",
        f"PowerShell {major}.{minor}",
        "install Windows Management Framework 5.1 on the host: the drivers' PowerShell is "
        "written for 5.1 (what it prints, and how)",
        warning=report.read_only,
    )


async def clock(host: Host, drv: HostDriver, report: Report) -> None:
    try:
        read = await windows_facts.clock(drv)
    except READ_ERRORS as e:
        # The clock stops no step (a warning at most): its read failing says so too.
        report.add(
            "clock",
            "the host's clock (Win32_OperatingSystem.LocalDateTime)",
            not_read(e),
            "see the host's error",
            warning=True,
        )
        return
    clock_offset(host, read, report)


def clock_offset(host: Host, clock: windows_facts.HostClock, report: Report) -> None:
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


async def winrm_service(host: Host, drv: HostDriver, report: Report) -> None:
    """On a host the worker reaches over WinRM: its shell and operation quotas against
    what the workers may use at once, and Basic (over HTTP: unencrypted) where the
    inventory uses it."""
    if host.transport != "winrm":
        return
    w = host.winrm_settings
    config = await report.read(
        "winrm-quota",
        "the WinRM service's settings on the WSMan: drive",
        windows_facts.winrm_config(drv),
        "see the host's error (the WSMan: drive needs the WinRM service running)",
        warning=report.read_only,
    )
    if config is None:
        return
    # (setting, its value, its folder on the WSMan: drive, Windows' default)
    quotas = (
        ("MaxShellsPerUser", config.max_shells_per_user, r"WSMan:\localhost\Shell", 30),
        (
            "MaxConcurrentOperationsPerUser",
            config.max_concurrent_operations_per_user,
            r"WSMan:\localhost\Service",
            1500,
        ),
    )
    for name, value, folder, default in quotas:
        if value < SHELLS_NEEDED:
            report.add(
                "winrm-quota",
                f"{name} at least {SHELLS_NEEDED} ({SESSIONS_PER_HOST} shells per worker, "
                f"each running one command; {WORKERS_PER_HOST} site workers)",
                f"{name} {value}",
                f"on the host: Set-Item {folder}\\{name} {default} (Windows' default); "
                f"beyond {name} the service refuses the worker's commands",
                warning=report.read_only,
            )
    if w.auth != "basic":
        return
    report.ran("winrm-basic")
    off = [n for n, on in (("Auth/Basic", config.basic),) if not on]
    if w.scheme == "http" and not config.allow_unencrypted:
        off.append("AllowUnencrypted")
    if off:
        report.add(
            "winrm-basic",
            f"Basic over {w.scheme.upper()} taken (inventory: auth basic, scheme {w.scheme})",
            " and ".join(f"{n} false" for n in off),
            "the service refuses the worker's logon with these off; set them true "
            "(winrm set winrm/config/service ...) or use HTTPS with NTLM",
            warning=report.read_only,
        )


async def ssh_shell(host: Host, drv: HostDriver, report: Report) -> None:
    """On a host the worker reaches over SSH: the shell sshd runs the drivers' command
    line through. Win32-OpenSSH uses cmd.exe /c, the line the drivers build, unless
    HKLM\\SOFTWARE\\OpenSSH holds a DefaultShell; then it runs `"<shell>" -c "<command>"`
    (PowerShell/Win32-OpenSSH wiki, "DefaultShell"; w32-doexec.c)."""
    if host.transport != "ssh":
        return
    read = await report.read(
        "ssh-shell",
        "sshd's default shell (DefaultShell under HKLM:\\SOFTWARE\\OpenSSH)",
        probes.ssh_default_shell(drv),
        warning=report.read_only,
    )
    if read is None:
        return
    shell = read["shell"]
    if probes.runs_cmd(shell):
        return
    report.add(
        "ssh-shell",
        "sshd running the drivers' command line through cmd.exe /c (no DefaultShell under "
        "HKLM:\\SOFTWARE\\OpenSSH)",
        f'DefaultShell {shell}: sshd runs "{shell}" {read["option"] or "-c"} "<command>"',
        "on the host: remove DefaultShell (and DefaultShellCommandOption) under "
        "HKLM:\\SOFTWARE\\OpenSSH and restart sshd; or reach the host over WinRM "
        "(transport: winrm in the inventory)",
        warning=report.read_only,
    )


async def services(
    check: str, drv: HostDriver, names: list[str], report: Report, what: str
) -> None:
    found = await report.read(
        check, f"{what}: {', '.join(names)}", windows_facts.find_services(drv, names)
    )
    if found is None:
        return
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
        if svc is not None and svc.start_type == "Disabled":
            # Stopped for good: the steps that start it again would fail (Start-Service
            # cannot start a disabled service).
            report.add(
                check,
                f"{what} {name!r} able to start (StartType Automatic or Manual)",
                "StartType Disabled: Start-Service cannot start it",
                f"on the host: Set-Service -Name {svc.key} -StartupType Automatic",
            )
