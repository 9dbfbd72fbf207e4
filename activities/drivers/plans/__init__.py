"""Plans: what an operation would change on a device, given the facts it read, as a pure
function, one module per device family. A plan holds its changes (each on one host, in
the words of the dry run and of the real run), what is already as wanted, and the
interlock that refuses it, if any.

The drivers' operations (activities/drivers/operations/, activities/drivers/dsm.py) read
the facts, ask the plan, refuse by its refusal (or stop at what blocks it), make its
changes and answer its `done`;
the dry run (workflows/preview.py) asks the same plans of the devices as a run would
leave them and prints their `would`. So "already X: nothing to do" and every interlock's
decision have one home.

Pure: no I/O, no device library, nothing from operations/ or the transports (the
workflows import these modules; tests/unit/test_rooms.py pins it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from activities.drivers.refusals import Refusal

# What the dry run says after what is already so.
NOTHING_TO_DO = "nothing to do"


@dataclass(frozen=True)
class Change:
    """One change on one host: `would` as the dry run says it ("set DSM dsm-x to
    backup"), `done` as the operation answers once made ("DSM dsm-x set to backup")."""

    host: str
    would: str
    done: str


@dataclass(frozen=True)
class Blocked:
    """What a device reads that stops an operation before it changes anything, and that
    no override passes (not an interlock of inventory/rules.py: the device must be put
    right first): the host, the sentence (the driver's error, the dry run's refusal) and
    the name the dry run gives it (`REFUSED by <name>: <why>`)."""

    host: str
    why: str
    name: str


@dataclass(frozen=True)
class Plan:
    """What an operation would do, in order: its changes and, as plain sentences, what
    is already as wanted ("DSM dsm-x is already backup"); `refusal`: the interlock that
    refuses it (the driver refuses by it, unless overridden where the rule allows; the
    dry run names it); `blocked`: what a device reads that stops it after the
    interlocks, before any change (the driver raises it; the dry run names it)."""

    items: tuple[Change | str, ...] = ()
    refusal: Refusal | None = None
    blocked: Blocked | None = None

    @property
    def changes(self) -> list[Change]:
        return [c for c in self.items if isinstance(c, Change)]

    @property
    def already(self) -> list[str]:
        return [a for a in self.items if isinstance(a, str)]

    @property
    def nothing_to_do(self) -> bool:
        return not self.changes

    @property
    def hosts(self) -> list[str]:
        """The hosts it would change, each once, in order."""
        return list(dict.fromkeys(c.host for c in self.changes))

    @property
    def would(self) -> str:
        """The dry run's sentence: what it would change, and what is already so."""
        if not self.changes:
            return f"{'; '.join(self.already)}: {NOTHING_TO_DO}"
        said: list[str] = []
        first = True
        for x in self.items:
            if isinstance(x, Change):
                said.append(f"would {x.would}" if first else x.would)
                first = False
            else:
                said.append(x)
        return "; ".join(said)

    @property
    def done(self) -> str:
        """The operation's answer once it made the changes."""
        return "; ".join(x.done if isinstance(x, Change) else x for x in self.items)

    def then(self, other: Plan) -> Plan:
        """This plan and `other` in one (the first refusal, the first block)."""
        return Plan(
            self.items + other.items,
            self.refusal or other.refusal,
            self.blocked or other.blocked,
        )


def nothing(already: str) -> Plan:
    return Plan((already,))


def change(host: str, would: str, done: str, refusal: Refusal | None = None) -> Plan:
    return Plan((Change(host, would, done),), refusal)


def together(plans: Iterable[Plan]) -> Plan:
    """Several plans of one step (one per server or component), in order."""
    out = Plan()
    for p in plans:
        out = out.then(p)
    return out
