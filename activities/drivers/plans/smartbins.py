"""Plans of a SmartBins server's operation (activities/drivers/operations/smartbins.py):
its mode, running or stopped; and a side's servers as main or backup."""

from __future__ import annotations

from dataclasses import dataclass

from activities.drivers.plans import Plan, change, nothing, together


@dataclass(frozen=True)
class Server:
    """A SmartBins server as read: whether its service runs, its mode (Normal | Pseudo)."""

    host: str
    running: bool | None
    mode: str | None
    pseudo_host: bool = False


def smartbins_set(host: str, running: bool | None, now: str | None, mode: str, run: bool) -> Plan:
    """SmartBins on `host` (running or not, in mode `now`) put in `mode`, running or
    stopped (a stopped server's mode does not matter)."""
    state = f"running in {mode.lower()} mode" if run else "stopped"
    if running == run and (now == mode or not run):
        return nothing(f"SmartBins on {host} already {state}")
    verb = f"run SmartBins on {host} in {mode.lower()} mode" if run else f"stop SmartBins on {host}"
    return change(host, verb, f"SmartBins on {host} {state}")


def side_main(servers: list[Server]) -> Plan:
    """Every SmartBins server of a side: normal mode, running."""
    return together(smartbins_set(s.host, s.running, s.mode, "Normal", True) for s in servers)


def side_backup(servers: list[Server]) -> Plan:
    """Every server of a side stopped, then its PseudoSmartBins host in pseudo mode and
    running (the others first, so two servers never run in pseudo mode together)."""
    others = [s for s in servers if not s.pseudo_host]
    pseudo = [s for s in servers if s.pseudo_host]
    return together(
        [smartbins_set(s.host, s.running, s.mode, "Normal", False) for s in others]
        + [smartbins_set(s.host, s.running, s.mode, "Pseudo", True) for s in pseudo]
    )
