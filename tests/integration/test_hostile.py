"""Hostile values reach PowerShell and SQL only as literals, or are refused."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from activities.context import DeviceContext
from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.operations import media as media_ops
from inventory.load import InventoryError, parse_inventory
from tests.support.lab import Lab

HOSTILE = [
    "a'; Restart-Computer -Force; '",
    "$(Restart-Computer -Force)",
    "`Restart-Computer`",
    "x\u2019; Restart-Computer; \u2018",
    '"; Restart-Computer; "',
    "..\\..\\Windows",
]


@pytest.mark.parametrize("side", ["X", "Y"])  # sb-x1 over SSH, sb-y1 over WinRM
async def test_hostile_values_are_passed_literally(lab_factory, side: str) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    host = lab.inventory.sides[side].pseudo_host  # type: ignore[index]
    assert host.transport == ("ssh" if side == "X" else "winrm")
    drv = a.host(host)
    before = await windows_facts.boot(drv)
    for value in HOSTILE:
        with pytest.raises(CommandFailed) as e:
            await windows_facts.services(drv, [value])
        # The device looked for a service with exactly that name, quotes and all.
        assert f"Cannot find any service with service name '{value}'." in str(e.value)
        await drv.run(ps.set_registry("HKLM:\\SOFTWARE\\GVG\\SmartBins", "Note", value))
        got = ps.parse_json_object(
            await drv.run_one(ps.get_registry("HKLM:\\SOFTWARE\\GVG\\SmartBins", ["Note"]))
        )
        assert got["Note"] == value
    assert not (await windows_facts.boot(drv)).after(
        before.latest, 0.05
    )  # nothing was executed: no restart
    for bad in ("a\nRestart-Computer", "a\rb", "nul\x00"):
        with pytest.raises(ps.UnsafeValue):
            await drv.run(ps.start_service(bad))


async def test_hostile_clip_names_never_reach_a_delete(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory(editors=1, ingest=0)
    a = DeviceContext(lab.inventory, lab.inventory_path)
    drv = a.host(lab.inventory.sides["Y"].pseudo_host)
    main = a.host(lab.inventory.sides["X"].pseudo_host)
    before = await media_facts.master_clips(drv)
    hostile = [
        "..\\..\\PDR",
        "News\\..\\..\\x.vmf",
        "News\\clip.vmf'; Remove-Item V:\\ -Recurse; '",
        "News",
        "News\\clip-001.vmf\n",
        "News\\NUL.vmf",
    ]
    # Each is refused on its own (named in the outcome); nothing reaches a delete.
    out = await media_ops.purge_orphans(
        drv, "Y", "X", [media_facts.ClipRecord(c, ()) for c in hostile], main
    )
    assert set(out.refused) == set(hostile) and not out.deleted
    assert await media_facts.master_clips(drv) == before


async def test_sql_values_are_bound_parameters(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab: Lab = await lab_factory(editors=1, ingest=0)
    d = DeviceContext(lab.inventory, lab.inventory_path).dsm("Y")
    count = (await asyncio.to_thread(d.read)).asset_count
    with pytest.raises(CommandFailed):
        await asyncio.to_thread(d.set_mode, "main'; DELETE FROM assets; --")  # type: ignore[arg-type]
    st = await asyncio.to_thread(d.read)
    assert st.asset_count == count and st.mode == "backup"


def test_hostile_names_in_the_inventory_are_refused() -> None:
    from pathlib import Path

    data = yaml.safe_load(
        (Path(__file__).parents[1] / "unit" / "data" / "inventory.yaml").read_text()
    )
    data["browse"][0]["services"] = ["GV K2 MDI'; Restart-Computer; '"]
    data["browse"][1]["config_dir"] = "C:\\Thomson\\..\\..\\Windows$(x)"
    data["devices"] = {"insync_registry": "HKLM:\\SOFTWARE\\GVG\\InSync'; rm"}
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    found = "\n".join(e.value.problems)
    assert "browse[0].services" in found and "browse[1].config_dir" in found
    assert "devices.insync_registry" in found
