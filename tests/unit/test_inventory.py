"""Inventory validation: a good file loads; every problem is explained with its field path."""

from pathlib import Path

import pytest
import yaml

from amsm import main
from inventory.load import InventoryError, load_inventory, parse_inventory

DATA = Path(__file__).parent / "data" / "inventory.yaml"


def good() -> dict:
    return yaml.safe_load(DATA.read_text())


def problems(data: object) -> list[str]:
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return e.value.problems


def test_good_inventory_loads() -> None:
    inv = load_inventory(DATA)
    assert inv.pair == "demo"
    assert inv.sides["X"].pseudo_host.host == "sb-x1"
    assert inv.workflow_id == "amsm-demo" and inv.queue == "amsm-demo"
    # Two Browse components on one host is one host, not a duplicate.
    assert inv.host("mdi-01").address == "10.0.0.40"
    assert inv.side_of_target("IQN.1999-06.com.grassvalley:k2-y") == "Y"
    assert inv.side_of_marker('<add key="DsmServer" value="dsm-y" />') == "Y"


def test_missing_and_unknown_fields_name_their_path() -> None:
    d = good()
    del d["sides"]["Y"]["bridge"]
    d["control_point"]["colour"] = "red"
    found = problems(d)
    assert "sides.Y.bridge: required field is missing" in found
    assert any(p.startswith("control_point.colour: unknown field") for p in found)


def test_bad_values_say_what_is_allowed() -> None:
    d = good()
    d["clients"][0]["host"] = "ED 01; rm"
    d["clients"][1]["kind"] = "robot"
    d["sides"]["X"]["dsm"]["profile"] = "oracle"
    found = problems(d)
    assert any(p.startswith("clients[0].host:") and "not a valid host name" in p for p in found)
    assert any(p.startswith("clients[1].kind:") and "'edit'" in p for p in found)
    assert any(p.startswith("sides.X.dsm.profile:") and "'sqlserver'" in p for p in found)


def test_a_replication_timeout_the_start_could_never_settle_in_is_refused() -> None:
    d = good()
    d["timing"] = {"replication_timeout": 2, "replication_settle": 2}
    assert any(
        p.startswith("timing:")
        and "replication_timeout (2 s) must be longer than replication_settle (2 s)" in p
        for p in problems(d)
    ), problems(d)
    d["timing"] = {"replication_timeout": 3, "replication_settle": 2}
    parse_inventory(yaml.safe_dump(d), "inv.yaml")


def test_exactly_one_pseudo_host_per_side() -> None:
    d = good()
    d["sides"]["X"]["smartbins"][1]["pseudo_host"] = True
    found = problems(d)
    assert any(
        "sides.X" in p and "exactly one SmartBins server" in p and "sb-x2" in p for p in found
    )


def test_credentials_must_be_references_not_secrets() -> None:
    d = good()
    d["sides"]["X"]["dsm"]["odbc"] += ";PWD=hunter2"
    found = problems(d)
    assert any(
        p.startswith("sides.X.dsm.odbc:") and "must not hold credentials" in p for p in found
    )
    # Cross-field rules run once every field is valid on its own.
    d = good()
    d["clients"][0]["credentials"] = "nobody"
    assert any("clients[0]: credentials 'nobody' is not defined" in p for p in problems(d))


def test_duplicate_host_with_other_settings_is_refused() -> None:
    d = good()
    d["clients"][1]["host"] = "ED-01"
    assert any("'ED-01' appears twice" in p for p in problems(d))


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pair: demo\nsides: [\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(bad)
    assert "line" in e.value.problems[0] and "not valid YAML" in e.value.problems[0]


def test_inventory_check_command_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inventory", "check", str(DATA)]) == 0
    assert "ok: pair demo" in capsys.readouterr().out
    bad = tmp_path / "inv.yaml"
    bad.write_text("pair: Demo!\n")
    assert main(["inventory", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: " in out and "pair:" in out and "Traceback" not in out
    assert main(["inventory", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "file not found" in capsys.readouterr().out


def test_yaml_aliases_and_huge_files_are_refused() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(InventoryError) as e:
        parse_inventory(bomb, "bomb.yaml")
    assert "aliases (*name) are not allowed" in e.value.problems[0]
    with pytest.raises(InventoryError) as e:
        parse_inventory("#" * 1_000_001, "big.yaml")
    assert "larger than 1000000 bytes" in e.value.problems[0]


# -- issue 14: the same host twice ----------------------------------------------------------
def _data() -> dict:
    return yaml.safe_load((Path(__file__).parent / "data" / "inventory.yaml").read_text())


def _problems(data: dict) -> str:
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return "\n".join(e.value.problems)


def test_a_host_named_twice_in_another_case_is_refused() -> None:
    data = _data()
    first = dict(data["clients"][1])
    data["clients"].append({**first, "host": first["host"].lower()})
    assert "appears twice" in _problems(data)


def test_two_hosts_at_one_address_are_refused() -> None:
    data = _data()
    first = dict(data["clients"][1])
    data["clients"].append({**first, "host": "ED-99"})
    assert "have the same address" in _problems(data)


def test_one_dsm_bridge_or_target_on_both_sides_is_refused() -> None:
    data = _data()
    data["sides"]["Y"]["dsm"]["host"] = data["sides"]["X"]["dsm"]["host"].upper()
    data["sides"]["Y"]["iscsi_target"] = data["sides"]["X"]["iscsi_target"]
    found = _problems(data)
    assert "the same DSM" in found and "the same iSCSI target" in found


def test_signal_host_lists_hold_each_host_once() -> None:
    from workflows.models import OperatorSignal

    sig = OperatorSignal(step="move-editors", clients=["ED-01", "ed-01", "ED-02"])
    assert sig.clients == ["ED-01", "ED-02"]


def test_names_follow_windows_in_any_language_and_whole() -> None:
    d = good()
    d["control_point"]["host"] = "Genève-CP"
    d["browse"][0]["config_dir"] = "C:\\Programme\\Médias\\Konfiguration"
    d["browse"][0]["config_files"] = ["Straße_MDI.exe.config"]
    inv = parse_inventory(yaml.safe_dump(d), "inv.yaml")
    assert inv.control_point.host == "Genève-CP"
    for field, value in (
        (("control_point", "host"), "cp-01\n"),
        (("control_point", "address"), "10.0.0.5\n"),
        (("control_point", "credentials"), "admin\n"),
    ):
        d = good()
        d[field[0]][field[1]] = value
        assert problems(d), (field, value)
    for config_dir in ("C:\\Thomson.\\x", "C:\\CON\\x", "C:\\ok\n"):
        d = good()
        d["browse"][0]["config_dir"] = config_dir
        assert problems(d), config_dir


def test_iscsi_portals_default_to_the_bridge_and_are_one_sides_only() -> None:
    inv = parse_inventory(yaml.safe_dump(_data()), "inv.yaml")
    assert inv.sides["X"].portals == [inv.sides["X"].bridge.address]  # older inventories
    assert inv.sides["Y"].portals == ["192.168.20.31", "192.168.21.31"]
    assert inv.sides["Y"].fsnameservers == ["10.2.0.31"] and inv.sides["X"].fsnameservers is None
    warned = inv.warnings()
    assert any("sides.X: no iscsi_portals" in w for w in warned)
    assert any("sides.X: no fsnameservers" in w for w in warned)
    # Y's only warning: IN-01 has no portal of its own on Y (of Y's two).
    assert [w for w in warned if w.startswith("sides.Y")] == [
        next(w for w in warned if "without iscsi.Y (IN-01)" in w)
    ]
    data = _data()
    data["sides"]["X"]["iscsi_portals"] = ["192.168.21.31"]
    assert "the same iSCSI portal 192.168.21.31" in _problems(data)
    data = _data()
    data["sides"]["X"]["iscsi_portals"] = [data["sides"]["Y"]["bridge"]["address"]]
    data["sides"]["Y"]["iscsi_portals"] = []  # Y's default: its bridge's address
    assert "the same iSCSI portal" in _problems(data)


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("iscsi_portals", ["10.0.0.1", "10.0.0.1"], "listed twice"),
        ("iscsi_portals", ["10.0.0.1:3260"], "not a valid iSCSI portal address"),
        ("iscsi_portals", ["a'b"], "not a valid iSCSI portal address"),
        ("fsnameservers", [], "at least one name server"),
        ("fsnameservers", ["fsm 1"], "not a valid SNFS name server"),
    ],
)
def test_iscsi_portals_and_name_servers_are_checked(field: str, value: list, why: str) -> None:
    data = _data()
    data["sides"]["Y"][field] = value
    assert why in _problems(data)


def test_a_clients_iscsi_paths_default_to_the_sides_first_portal() -> None:
    inv = load_inventory(DATA)
    ed, ingest = inv.clients
    y = inv.sides["Y"]
    assert [(p.name, p.portal, p.target) for p in inv.client_paths(ed, "Y")] == [
        ("A", "192.168.20.31", y.iscsi_target),
        ("B", "192.168.21.31", "iqn.1999-06.com.grassvalley:k2-y-b"),
    ]
    # No `iscsi` for the side (old inventories): path A through the side's first portal.
    assert [(p.name, p.portal) for p in inv.client_paths(ingest, "Y")] == [("A", "192.168.20.31")]
    assert [(p.name, p.portal) for p in inv.client_paths(ed, "X")] == [
        ("A", inv.sides["X"].bridge.address)
    ]
    assert inv.side_of_target("IQN.1999-06.com.grassvalley:k2-y-B") == "Y"
    assert any(
        "sides.Y: 2 iSCSI portals, and 1 client(s) without iscsi.Y (IN-01)" in w
        for w in inv.warnings()
    )
    assert y.targets == [y.iscsi_target, "iqn.1999-06.com.grassvalley:k2-y-b"]


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        (
            {"Y": {"a": "192.168.99.1"}},
            "clients[1].iscsi.Y.a: 192.168.99.1 is not one of Y's portals",
        ),
        (
            {"Y": {"a": "192.168.20.31", "a_target": "iqn.2000-01.com.example:other"}},
            "is not one of Y's targets",
        ),
        (
            {"Y": {"a": "192.168.20.31", "b_target": "iqn.1999-06.com.grassvalley:k2-y-b"}},
            "b_target without b",
        ),
        ({"Y": {"a": "192.168.20.31", "b": "192.168.20.31"}}, "a and b are one portal"),
        # A B path names its own target: a second login to A's target needs MPIO
        # (review H2), which client editions of Windows lack.
        (
            {"Y": {"a": "192.168.20.31", "b": "192.168.21.31"}},
            "clients[1].iscsi.Y.b_target: required with b",
        ),
        (
            {
                "Y": {
                    "a": "192.168.20.31",
                    "b": "192.168.21.31",
                    "b_target": "iqn.1999-06.com.grassvalley:k2-y",
                }
            },
            "clients[1].iscsi.Y.b_target: IN-01's B path names A's target",
        ),
        ({"Y": {"a": "192.168.20.31:3260"}}, "not a valid iSCSI portal address"),
        ({"Z": {"a": "192.168.20.31"}}, "clients[1].iscsi.Z.[key]: allowed: 'X' or 'Y'"),
    ],
)
def test_a_clients_iscsi_paths_are_checked(paths: dict, why: str) -> None:
    data = _data()
    data["clients"][1]["iscsi"] = paths
    assert why in _problems(data)


def test_a_sides_further_targets_are_its_own() -> None:
    data = _data()
    data["sides"]["X"]["iscsi_targets"] = ["iqn.1999-06.com.grassvalley:k2-y-b"]
    assert "sides.X and sides.Y name the same iSCSI target" in _problems(data)
    data = _data()
    data["sides"]["Y"]["iscsi_targets"] = [data["sides"]["Y"]["iscsi_target"]]
    assert "iscsi_targets repeats iscsi_target" in _problems(data)


def test_an_aurora_process_named_with_exe_is_refused() -> None:
    """Get-Process -Name matches ProcessName, which has no '.exe': such a name would never
    be found, so Aurora would never be stopped. Refused when the inventory loads."""
    d = good()
    d.setdefault("devices", {})["aurora_processes"] = ["AuroraEdit", "AuroraIngest.EXE"]
    found = problems(d)
    (p,) = [p for p in found if p.startswith("devices.aurora_processes")]
    assert "'AuroraIngest.EXE' is not a valid process name" in p, p
    assert "without '.exe'" in p and "'AuroraIngest'" in p, p
    d["devices"]["aurora_processes"] = ["AuroraEdit", "Aurora.Ingest"]
    inv = parse_inventory(yaml.safe_dump(d), "inv.yaml")
    assert inv.devices.aurora_processes == ["AuroraEdit", "Aurora.Ingest"]


def test_an_aurora_process_named_with_a_space_around_it_is_refused() -> None:
    """Get-Process -Name compares the whole ProcessName: ' AuroraEdit' or 'AuroraEdit '
    would never match, so Aurora would never be stopped. Refused, naming the name to
    write; a space inside a name stays allowed."""
    d = good()
    for bad in (" AuroraEdit", "AuroraEdit "):
        d.setdefault("devices", {})["aurora_processes"] = [bad, "AuroraIngest"]
        found = problems(d)
        (p,) = [p for p in found if p.startswith("devices.aurora_processes")]
        assert f"{bad!r} is not a valid process name" in p, p
        assert "write 'AuroraEdit'" in p, p
    d["devices"]["aurora_processes"] = ["Aurora Edit", "AuroraIngest"]
    inv = parse_inventory(yaml.safe_dump(d), "inv.yaml")
    assert inv.devices.aurora_processes == ["Aurora Edit", "AuroraIngest"]
