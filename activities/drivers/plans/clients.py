"""Plans of a client step (workflows/base.py switch_clients, the dry run's client steps):
which clients it switches, and the clients it leaves because their side is unknown, from
the pair as read. One home for the choice and its sentence: the workflows and the dry
run ask these, never a copy.

A client is given as (host, side it is on, its status): the pair's read
(inventory/status.py ClientStatus), which a plan does not import."""

from __future__ import annotations

from collections.abc import Iterable

Client = tuple[str, str | None, str]  # host, the side it is on (None: unknown), status


def to_switch(clients: Iterable[Client], side: str, moved: Iterable[str] = ()) -> list[str]:
    """The clients on `side`, in the order read, but those already `moved` (by an earlier
    step of the run: the pilots; names compared without case, as Windows does)."""
    skip = {h.lower() for h in moved}
    return [host for host, on, _ in clients if on == side and host.lower() not in skip]


def side_unknown(clients: Iterable[Client]) -> str:
    """What a client step adds about the clients it does not switch because their side is
    unknown (a client that did not answer the read): '' when there are none."""
    lost = [f"{host} ({status})" for host, on, status in clients if on is None]
    return f"; not switched (side unknown): {', '.join(lost)}" if lost else ""
