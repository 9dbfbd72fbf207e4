"""Plans of a Browse component's operations (activities/drivers/operations/browse.py):
its services stopped or started, and its config files swapped to point at a side."""

from __future__ import annotations

from collections.abc import Mapping

from activities.drivers.plans import Plan, change, nothing
from activities.drivers.refusals import browse_switch_running


def stop(name: str, host: str, services: Mapping[str, str | None], order: list[str]) -> Plan:
    """Browse `name` on `host` stopped: its services `order` whose status `services`
    gives (and first the services that depend on them, which the operation finds)."""
    todo = [n for n in order if services.get(n) != "Stopped"]
    if not todo:
        return nothing(f"Browse {name} already stopped")
    return change(
        host, f"stop Browse {name} on {host}", f"Browse {name} stopped ({', '.join(todo)})"
    )


def start_todo(services: Mapping[str, str | None], order: list[str]) -> list[str]:
    """The services of a component that a start must start."""
    return [n for n in order if services.get(n) != "Running"]


def switch(
    name: str, host: str, running: list[str], now: str | None, to: str, was: str | None = None
) -> Plan:
    """Browse `name` on `host` (its services `running`, pointing at `now`; None: its
    files not read yet, as the operation reads them one by one) switched to `to`.
    Refused while any service runs (overridable), whichever side it points at."""
    refusal = browse_switch_running(name, running)
    if now == to:
        return Plan((f"Browse {name} already points at {to}",), refusal)
    return change(
        host,
        f"switch Browse {name} on {host} (from {was or now or 'no one side'}) to {to}",
        f"Browse {name} switched to {to}",
        refusal,
    )


def start(name: str, host: str, services: Mapping[str, str | None], order: list[str]) -> Plan:
    """Browse `name` on `host` started: its services `order` whose status `services`
    gives (then the dependents its stop recorded, which the operation finds)."""
    todo = start_todo(services, order)
    if not todo:
        return nothing(f"Browse {name} already running")
    return change(
        host, f"start Browse {name} on {host}", f"Browse {name} started ({', '.join(todo)})"
    )


def already_active(to: str, read: list[tuple[str | None, bool | None]]) -> Plan | None:
    """Browse made Active on `to` in one go (stop, switch, start): nothing to do when
    every component, read as (the side it points at, whether it runs), points at `to`
    and runs (a pair without Browse components included, as the move always answered);
    else None, and the stop, switch and start plans say what."""
    if all(side == to and running for side, running in read):
        return nothing(f"Browse already Active on {to}")
    return None
