"""The drivers' facts over real answers: tests/facts/<fact>/<case>.json.

Each case holds what a Windows PowerShell 5.1 host answers to the statements a fact
sends (`command`, in the drivers' own words), as the bytes arrive: `stdout` and
`stderr` (CLIXML as powershell.exe writes it to a redirected stderr), in
`stdout_encoding`/`stderr_encoding` (UTF-8 by default), and `exit_code`; and what the fact must make of it (`expected`) or the
error it must raise (`expected_error`, a part or parts of the CommandFailed text). The driver
under the fact is a recorded answer, not a transport: the fact's own code and the
host driver's reading of the answer run as they do against a host.
(The layout follows pyinfra's tests/facts/.)

A site's real answers are cases too: with AMSM_SURVEY=DIR (a folder `amsm survey DIR`
wrote), every DIR/facts/<fact>/<host>.json is replayed through the fact that read it,
against the inventory the survey wrote beside them, and must read as it did at the site
(docs/site/survey-check-readiness.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.drivers.errors import CommandFailed
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.drivers.operations import clients as clients_ops
from activities.drivers.operations import windows as windows_ops
from activities.surveys.facts import FACTS as SURVEY_FACTS
from activities.surveys.facts import read_host_fact
from activities.surveys.models import Exchange, SurveyTarget
from activities.surveys.replay import ReplayedHost, read_survey_inventory, replay
from inventory.load import load_inventory, parse_inventory
from inventory.models import Inventory

FACTS = Path(__file__).resolve().parents[1] / "facts"
SURVEY = os.environ.get("AMSM_SURVEY")
SURVEY_CASES = sorted(Path(SURVEY).glob("facts/*/*.json")) if SURVEY else []
INVENTORY = Path(__file__).resolve().parent / "data" / "inventory.yaml"
CASES = sorted(FACTS.glob("*/*.json"))


class Recorded(ReplayedHost):
    """A host that gives the recorded answer, once it was asked exactly the case's
    statements; a case whose fact asks again (`then`: further exchanges of the same
    shape, in order) answers each in turn, and every one must be asked. (The replay of
    `amsm survey verify`: a fact that sends other statements raises Mismatch.)"""

    def __init__(self, case: dict[str, Any]) -> None:
        fields = set(Exchange.model_fields)
        exchanges = [case, *case.get("then", [])]
        super().__init__(
            "HOST-01",
            "ssh",
            [Exchange(**{k: v for k, v in e.items() if k in fields}) for e in exchanges],
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


def _with_pointers(pointers: dict[str, str]) -> Inventory:
    """The test inventory with `sides.S.aurora_dsm_pointer` set as `pointers` says."""
    data = yaml.safe_load(INVENTORY.read_text())
    for side, pointer in pointers.items():
        data["sides"][side]["aurora_dsm_pointer"] = pointer
    return parse_inventory(yaml.safe_dump(data), str(INVENTORY))


async def _dsm_pointer(drv: HostDriver, args: dict[str, Any]) -> Any:
    inv = _with_pointers(args.get("pointers", {}))
    return await clients_facts.check_dsm_pointer(drv, inv.clients[0], inv, args["to"])


async def _write_filters(drv: HostDriver, args: dict[str, Any]) -> Any:
    return dataclasses.asdict(await clients_facts.write_filters(drv))


async def _mount_state(drv: HostDriver, args: dict[str, Any]) -> Any:
    return dataclasses.asdict(await clients_facts.mount_state(drv, _inventory(), args["to"]))


async def _iscsi_persistent_logins(drv: HostDriver, args: dict[str, Any]) -> Any:
    return [dataclasses.asdict(lg) for lg in await clients_facts.persistent_logins(drv)]


def _survey_probe(name: str) -> Callable[[HostDriver, dict[str, Any]], Awaitable[Any]]:
    """A probe of `amsm survey` (activities/surveys/probes.py), read on a client."""

    async def read(drv: HostDriver, args: dict[str, Any]) -> Any:
        inv = _inventory()
        target = SurveyTarget(pair=inv.pair, host=inv.clients[0].host, role="client")
        return await read_host_fact(SURVEY_FACTS[name], drv, inv, target, args)  # type: ignore[arg-type]

    return read


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
    "dsm_pointer": _dsm_pointer,
    "write_filters": _write_filters,
    "mount_state": _mount_state,
    "set_uwf": lambda drv, a: clients_ops.set_uwf(drv, a["enabled"]),
    "start_services": lambda drv, a: windows_ops.start_services(drv, a["names"]),
    "iscsi_persistent_logins": _iscsi_persistent_logins,
    "folder_entries": _folder_entries,
    "insync_files": lambda drv, a: sync_tools_facts.insync_files_present(drv, _inventory().devices),
    **{
        n: _survey_probe(n)
        for n in (
            "write_filter_state",
            "fsnameservers",
            "dsm_pointer_value",
            "ssh_default_shell",
            "dsm_pointer_views",
        )
    },
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


@pytest.mark.parametrize("path", SURVEY_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_survey_fact(path: Path) -> None:
    """A site's answer (AMSM_SURVEY=DIR) reads as it did when the survey read it."""
    inv = read_survey_inventory(path.parents[2])
    problem = await replay(json.loads(path.read_text(encoding="utf-8")), inv)
    if problem is not None and problem.startswith("not replayed"):
        pytest.skip(problem)
    assert problem is None
