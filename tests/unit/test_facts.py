"""The drivers' facts over real answers: tests/facts/<fact>/<case>.json.

Each case holds what a Windows PowerShell 5.1 host answers to the statements a fact
sends (`command`, in the drivers' own words), as the bytes arrive: `stdout` and
`stderr` (CLIXML as powershell.exe writes it to a redirected stderr), in
`stdout_encoding`/`stderr_encoding` (UTF-8 by default), and `exit_code`; and what the fact must make of it (`expected`) or the
error it must raise (`expected_error`, a part or parts of the CommandFailed text). The driver
under the fact is a recorded answer, not a transport: the fact's own code and the
host driver's reading of the answer run as they do against a host.
(The layout follows pyinfra's tests/facts/.)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import ExecResult, HostDriver
from inventory.load import load_inventory
from inventory.models import Host, Inventory

FACTS = Path(__file__).resolve().parents[1] / "facts"
INVENTORY = Path(__file__).resolve().parent / "data" / "inventory.yaml"
CASES = sorted(FACTS.glob("*/*.json"))


class Recorded(HostDriver):
    """A host that gives the recorded answer, once it was asked exactly the case's
    statements; a case whose fact asks again (`then`: further exchanges of the same
    shape, in order) answers each in turn, and every one must be asked."""

    transport = "ssh"

    def __init__(self, case: dict[str, Any]) -> None:
        super().__init__(Host(host="HOST-01", address="192.0.2.1", credentials="admin"), 5)
        self.exchanges = [case, *case.get("then", [])]
        self.asked = 0

    async def _execute(self, script_text: str) -> ExecResult:
        assert self.asked < len(self.exchanges), "the fact asked more than the case holds"
        case = self.exchanges[self.asked]
        self.asked += 1
        assert script_text == ps.script(*case["command"]), "the fact sent other statements"
        encoding = case.get("stdout_encoding", "utf-8")
        return ExecResult(
            case["exit_code"],
            case["stdout"].encode(encoding),
            case["stderr"].encode(case.get("stderr_encoding", "utf-8")),
        )


def _inventory() -> Inventory:
    return load_inventory(INVENTORY)


async def _client_facts(drv: HostDriver, args: dict[str, Any]) -> Any:
    inv = _inventory()
    st = await clients_facts.client_facts(drv, inv.clients[0], inv)
    return {"side": st.side, "status": st.status}


async def _client_verify(drv: HostDriver, args: dict[str, Any]) -> Any:
    inv = _inventory()
    return await clients_facts.client_verify(drv, inv.clients[0], inv, args["to"])


async def _insync_facts(drv: HostDriver, args: dict[str, Any]) -> Any:
    inv = _inventory()
    running, main = await sync_tools_facts.insync_facts(drv, inv.devices)
    return {"running": running, "main": main}


async def _dependency_tree(drv: HostDriver, args: dict[str, Any]) -> Any:
    tree, status = await windows_facts.dependency_tree(drv, args["keys"])
    return {"tree": tree, "status": status}


async def _uptime(drv: HostDriver, args: dict[str, Any]) -> Any:
    return await windows_facts.uptime(drv)


async def _powershell_version(drv: HostDriver, args: dict[str, Any]) -> Any:
    return list(await windows_facts.powershell_version(drv))


async def _winrm_config(drv: HostDriver, args: dict[str, Any]) -> Any:
    return dataclasses.asdict(await windows_facts.winrm_config(drv))


async def _folder_entries(drv: HostDriver, args: dict[str, Any]) -> Any:
    listed = await media_facts.folder_entries(drv, args["folders"])
    return {
        folder: [{**dataclasses.asdict(e), "is_dir": e.is_dir, "is_link": e.is_link} for e in es]
        for folder, es in listed.items()
    }


async def _iscsi_discovery(drv: HostDriver, args: dict[str, Any]) -> Any:
    return dataclasses.asdict(await clients_facts.iscsi_discovery(drv))


FACT: dict[str, Callable[[HostDriver, dict[str, Any]], Awaitable[Any]]] = {
    "process_running": lambda drv, a: windows_facts.process_running(drv, a["name"]),
    "services": lambda drv, a: windows_facts.services(drv, a["names"]),
    "dependency_tree": _dependency_tree,
    "uptime": _uptime,
    "client_facts": _client_facts,
    "client_verify": _client_verify,
    "insync_facts": _insync_facts,
    "powershell_version": _powershell_version,
    "winrm_config": _winrm_config,
    "registry_values": lambda drv, a: windows_facts.registry_values(drv, a["keys"]),
    "iscsi_discovery": _iscsi_discovery,
    "folder_entries": _folder_entries,
    "insync_files": lambda drv, a: sync_tools_facts.insync_files_present(drv, _inventory().devices),
}


def test_every_fact_folder_has_a_reader_and_cases() -> None:
    folders = {p.name for p in FACTS.iterdir() if p.is_dir()}
    assert folders == set(FACT)
    assert all(list((FACTS / f).glob("*.json")) for f in folders)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_fact(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    drv = Recorded(case)
    read = FACT[path.parent.name]
    if "expected_error" in case:
        with pytest.raises(CommandFailed) as e:
            await read(drv, case.get("args", {}))
        assert e.value.host == "HOST-01"
        wanted = case["expected_error"]
        for part in [wanted] if isinstance(wanted, str) else wanted:
            assert part in str(e.value)
        assert drv.asked == len(drv.exchanges), "the fact did not ask every exchange"
        return
    assert await read(drv, case.get("args", {})) == case["expected"]
    assert drv.asked == len(drv.exchanges), "the fact did not ask every exchange"
