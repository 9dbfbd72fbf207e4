"""What the lab answers to a site survey's facts (`amsm survey verify DIR --lab LABDIR`):
each host fact of the survey is read again, with the site's arguments, on the lab host
of the same role, and the two readings are compared by their shape (which properties,
of which types; a read against an error). A difference is where the lab is not the
model of that site's hosts it should be: a behaviour to add to the lab, with its source;
or where the lab's host holds other things than the site's (a service it has not), which
the reader tells apart.

The lab's hosts run the scripts in a transaction that is rolled back: nothing in the
lab changes. The DSMs are not compared (the lab's are SQLite, not SQL Server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from activities.drivers.host import ExecResult, HostDriver
from activities.surveys.facts import FACTS, read_host_fact
from activities.surveys.kinds import HostFact
from activities.surveys.replay import describe_error, read_fact_file
from inventory.load import load_inventory
from inventory.models import SIDES, Host, Inventory
from lab.powershell import run_script
from lab.state import LabState


class _Rollback(Exception):
    pass


class LabHost(HostDriver):
    """A lab host's document, answering a script as its listener would (the bytes of
    ScriptResult.wire), in a transaction rolled back afterwards."""

    def __init__(self, state: LabState, name: str, transport: str) -> None:
        super().__init__(Host(host=name, address="127.0.0.1", credentials="lab"), 5)
        self.transport = "winrm" if transport == "winrm" else "ssh"
        self.state = state

    async def _execute(self, script_text: str) -> ExecResult:
        answer: list[ExecResult] = []
        try:
            with self.state.transaction() as txn:
                result = run_script(script_text, txn.require_host(self.name), txn)
                answer.append(ExecResult(result.exit_status, *result.wire()))
                raise _Rollback
        except _Rollback:
            pass
        return answer[0]


def lab_hosts(inv: Inventory) -> dict[str, str]:
    """The lab host that stands for each role (the first of it)."""
    out: dict[str, str] = {}
    for side in SIDES:
        s = inv.sides[side]
        out.setdefault("smartbins", s.smartbins[0].host)
        out.setdefault("nas-cifs", s.nas.cifs.host)
        out.setdefault("nas-ftp", s.nas.ftp.host)
        out.setdefault("bridge", s.bridge.host)
    out["control-point"] = inv.control_point.host
    out["browse"] = inv.browse[0].host.host
    if inv.clients:
        out["client"] = inv.clients[0].host
    return out


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return None
    return type(value).__name__


def same_shape(a: Any, b: Any) -> bool:
    """Alike, where None (not there) and an empty list stand for anything."""
    if a is None or b is None or a == [] or b == []:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return same_shape(a[0], b[0])
    return bool(a == b or {a, b} <= {"int", "float"})


class LabModel:
    def __init__(self, lab_dir: Path) -> None:
        self.state = LabState(lab_dir)
        inv = load_inventory(lab_dir / "inventory.yaml")
        self.hosts = lab_hosts(inv)
        self.names = {h.host.lower(): h.host for _, h in inv.all_hosts()}

    async def disagreement(self, data: dict[str, Any], site: Inventory) -> str | None:
        """None when the lab reads the fact as the site's host did (in shape); else how
        they differ. A DSM's fact, or a role the lab has no host of, is not compared."""
        record, target, transport = read_fact_file(data, site)
        fact = FACTS.get(record.fact)
        # The lab's host of that name (a survey of a lab), else the first of its role.
        name = self.names.get(target.host.lower()) or self.hosts.get(target.role)
        if not isinstance(fact, HostFact) or name is None or record.withheld:
            return None
        drv = LabHost(self.state, name, transport)
        try:
            got: Any = await read_host_fact(fact, drv, site, target, record.args)
            error = None
        except Exception as e:
            got, error = None, describe_error(e)
        first = (error or "").splitlines()[0] if error else ""
        if record.expected_error is None and error is not None:
            return f"the lab ({name}) raises where the site read: {first}"
        if record.expected_error is not None and error is None:
            site_error = record.expected_error.splitlines()[0] if record.expected_error else ""
            return f"the lab ({name}) reads {got!r:.160} where the site raised: {site_error}"
        if error is None and not same_shape(shape(got), shape(record.expected)):
            return (
                f"the lab ({name}) reads {shape(got)!r:.200}; the site read "
                f"{shape(record.expected)!r:.200}"
            )
        return None
