"""`lab init`, the lab's DSMs and replicator, the operator's hands and the lab CLI."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from inventory.load import load_inventory
from lab import LabError
from lab.cli import cmd_serve
from lab.dsm import replicate_once
from lab.hands import set_allsync, set_insync
from lab.init import PORTS_VARIABLE, free_ports, init_lab, iqn, port_range
from lab.state import LabState


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lab")
    init_lab(d, editors=3, ingest=2, smartbins=2, reboot_seconds=0.3)
    return d


def dsm(d: Path, side: str) -> sqlite3.Connection:
    """The DSM's replicated database (its assets)."""
    return sqlite3.connect(d / f"dsm-{side.lower()}.db", isolation_level=None)


def instance(d: Path, side: str) -> sqlite3.Connection:
    """The DSM's instance file (mode, replication, jobs, the databases' catalog)."""
    return sqlite3.connect(d / f"dsm-{side.lower()}.instance.db", isolation_level=None)


def dsm_row(d: Path, side: str) -> tuple[str, str, str]:
    with instance(d, side) as conn:
        row = conn.execute("SELECT mode, replication, replication_role FROM dsm").fetchone()
    return tuple(row)


def asset_names(d: Path, side: str) -> list[str]:
    with dsm(d, side) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM assets ORDER BY id")]


# -- init ------------------------------------------------------------------------------------
def test_inventory_is_valid_and_complete(lab_dir: Path) -> None:
    inv = load_inventory(lab_dir / "inventory.yaml")
    assert inv.pair == "lab"
    hosts = [h for _, h in inv.all_hosts()]
    assert {h.address for h in hosts} == {"127.0.0.1"}
    assert len({h.port for h in hosts}) == len(hosts) == 2 * (2 + 3) + 1 + 5 + 5
    assert [c.host for c in inv.clients] == ["ED-01", "ED-02", "ED-03", "IN-01", "IN-02"]
    assert [c.kind for c in inv.clients] == ["edit"] * 3 + ["ingest"] * 2
    assert inv.sides["X"].pseudo_host.host == "sb-x1"
    assert inv.sides["Y"].iscsi_target == iqn("Y")
    odbc = inv.sides["X"].dsm.odbc
    assert odbc == f"Driver=SQLite3;Database={lab_dir.resolve()}/dsm-x.db"
    assert inv.credentials["lab-admin"].key_file == "keys/id_ed25519"
    assert inv.timing.reboot_timeout == 30 and inv.timing.poll_interval == pytest.approx(0.1)
    k2 = next(b for b in inv.browse if b.role == "k2-mdi")
    assert k2.host.host == "mdi-k2" and k2.config_files == ["K2_MDI_Service.exe.config"]


def test_keys_and_known_hosts(lab_dir: Path) -> None:
    inv = load_inventory(lab_dir / "inventory.yaml")
    lines = (lab_dir / "known_hosts").read_text().splitlines()
    assert len(lines) == len(inv.all_hosts())
    for line, (_, host) in zip(lines, inv.all_hosts(), strict=True):
        assert line.startswith(f"[127.0.0.1]:{host.port} ssh-ed25519 AAAA")
    assert (lab_dir / "keys" / "id_ed25519").stat().st_mode & 0o077 == 0
    assert (lab_dir / "keys" / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")


def test_initial_state_is_mirrored_x_main(lab_dir: Path) -> None:
    _, docs = LabState(lab_dir).read()
    inv = load_inventory(lab_dir / "inventory.yaml")
    assert docs["sb-x1"]["services"] == {"SmartBins": "Running"}
    assert docs["sb-x2"]["registry"][r"HKLM:\SOFTWARE\GVG\SmartBins"] == {"Mode": "Normal"}
    assert docs["sb-y1"]["services"] == {"SmartBins": "Running"}
    assert docs["sb-y1"]["registry"][r"HKLM:\SOFTWARE\GVG\SmartBins"] == {"Mode": "Pseudo"}
    assert docs["sb-y2"]["services"] == {"SmartBins": "Stopped"}
    assert docs["nas-cifs-x"]["processes"] == ["AllSync"]
    assert docs["nas-cifs-y"]["processes"] == []
    assert docs["nas-ftp-y"]["services"] == {"K2FTP": "Running"}
    cp = docs["cp-01"]
    assert cp["processes"] == ["K2InSync"]
    assert cp["registry"][r"HKLM:\SOFTWARE\GVG\InSync"] == {"MasterSystem": "X"}
    assert cp["files"][r"C:\Insync.cfg"] == cp["files"][r"C:\InsyncXtoY.cfg"]
    assert cp["files"][r"C:\InsyncXtoY.cfg"] != cp["files"][r"C:\InsyncYtoX.cfg"]
    cfg = r"C:\Thomson\MediaFrame\Configuration"
    for host, base in [
        ("browse-srv", "MediaFrame"),
        ("mdi-k2", "K2_MDI_Service"),
        ("mdi-news", "News_MDI_Service"),
        ("mdi-ftp1", "FTP_MDI"),
    ]:
        files = docs[host]["files"]
        assert "dsm-x" in files[rf"{cfg}\{base}.exe.config"]
        assert "dsm-y" not in files[rf"{cfg}\{base}.exe.config"]
        assert "dsm-y" in files[rf"{cfg}\{base}.backup.exe.config"]
        assert set(docs[host]["services"].values()) == {"Running"}
    ed = docs["ED-01"]
    assert ed["processes"] == ["AuroraEdit"] and docs["IN-02"]["processes"] == ["AuroraIngest"]
    assert ed["registry"][r"HKLM:\SOFTWARE\GVG\Aurora"] == {"DsmServer": "dsm-x"}
    x_portal = inv.sides["X"].portals[0]
    assert x_portal != inv.sides["X"].bridge.address  # the media network, not control
    assert ed["iscsi"]["portals"] == [x_portal] and ed["iscsi"]["discovered"] == [iqn("X")]
    assert [(s["iqn"], s["persistent"]) for s in ed["iscsi"]["sessions"]] == [(iqn("X"), True)]
    assert ed["iscsi"]["persistent"] == [{"iqn": iqn("X"), "portal": x_portal}]
    assert ed["files"][inv.devices.snfs_nameservers_file] == "bridge-x\n"
    assert ed["mounted_v"] == "X"
    with LabState(lab_dir).transaction() as txn:
        x, y = txn.volume_files("X"), txn.volume_files("Y")
    assert x == y and any(p.startswith("V:\\VibrantAVIFiles\\") for p in x)


def test_a_kept_connection_survives_a_failed_transaction(tmp_path: Path) -> None:
    init_lab(tmp_path, editors=1, ingest=0)
    state = LabState(tmp_path)
    try:
        with pytest.raises(LabError), state.transaction() as txn:
            txn.require_host("ED-01")["boot_time"] = 1
            txn.require_host("no-such-host")
        # Rolled back: the same thread's next transaction works and sees no change.
        with state.transaction() as txn:
            assert txn.require_host("ED-01")["boot_time"] != 1
            txn.require_host("ED-01")["boot_time"] = 2
        # Committed for every other connection (another process's, say).
        assert LabState(tmp_path).read()[1]["ED-01"]["boot_time"] == 2
    finally:
        state.close()


def test_initial_dsms(lab_dir: Path) -> None:
    assert dsm_row(lab_dir, "X") == ("main", "running", "master")
    assert dsm_row(lab_dir, "Y") == ("backup", "running", "backup")
    assert asset_names(lab_dir, "X") == asset_names(lab_dir, "Y")
    assert len(asset_names(lab_dir, "X")) == 120


def test_init_refuses_an_existing_lab_unless_forced(tmp_path: Path) -> None:
    init_lab(tmp_path, editors=1, ingest=0)
    with pytest.raises(LabError, match="already holds a lab"):
        init_lab(tmp_path)
    before = (tmp_path / "known_hosts").read_text()
    init_lab(tmp_path, editors=1, ingest=0, force=True)
    assert (tmp_path / "known_hosts").read_text() != before
    load_inventory(tmp_path / "inventory.yaml")


def test_init_refuses_a_file_and_bad_counts(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(LabError, match="not a directory"):
        init_lab(f)
    with pytest.raises(LabError):
        init_lab(tmp_path / "d", smartbins=0)


# -- the replicator --------------------------------------------------------------------------
@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    init_lab(tmp_path, editors=0, ingest=0)
    return tmp_path


def repl(d: Path) -> list[str]:
    return replicate_once(d / "dsm-x.db", d / "dsm-y.db")


def test_replication_overwrites_the_backup(fresh: Path) -> None:
    assert repl(fresh) == []
    with dsm(fresh, "X") as x:
        x.execute("INSERT INTO assets (name, created) VALUES ('made-on-x', '2025-01-01T00:00:00Z')")
    with dsm(fresh, "Y") as y:
        y.execute("INSERT INTO assets (name, created) VALUES ('only-on-y', '2025-01-01T00:00:00Z')")
    assert repl(fresh)
    assert asset_names(fresh, "Y") == asset_names(fresh, "X")
    assert "made-on-x" in asset_names(fresh, "Y") and "only-on-y" not in asset_names(fresh, "Y")


def test_stopping_the_master_stops_the_backup(fresh: Path) -> None:
    with instance(fresh, "X") as x:
        x.execute("UPDATE dsm SET replication = 'stopped', replication_role = 'none'")
    repl(fresh)
    assert dsm_row(fresh, "Y") == ("backup", "stopped", "none")


def test_replication_fails_in_split_mode_and_from_a_backup(fresh: Path) -> None:
    with instance(fresh, "Y") as y:
        y.execute("UPDATE dsm SET mode = 'main'")
    repl(fresh)
    assert dsm_row(fresh, "X") == ("main", "failed", "master")
    assert dsm_row(fresh, "Y") == ("main", "stopped", "none")


def test_the_master_copies_only_onto_a_backup_that_runs_as_backup_itself(fresh: Path) -> None:
    with instance(fresh, "X") as x:
        x.execute(
            "UPDATE dsm SET mode = 'backup', replication = 'stopped', replication_role = 'none'"
        )
    with instance(fresh, "Y") as y:
        y.execute(
            "UPDATE dsm SET mode = 'main', replication = 'running', replication_role = 'master'"
        )
    with dsm(fresh, "Y") as y:
        y.execute("DELETE FROM assets WHERE id > 100")
    # Nothing makes X a backup but X itself (a SQL Server DSM's own backup job).
    assert repl(fresh) == []
    assert dsm_row(fresh, "X") == ("backup", "stopped", "none")
    assert len(asset_names(fresh, "X")) == 120
    with instance(fresh, "X") as x:
        x.execute("UPDATE dsm SET replication = 'running', replication_role = 'backup'")
    repl(fresh)
    assert dsm_row(fresh, "X") == ("backup", "running", "backup")
    assert len(asset_names(fresh, "X")) == 100


# -- hands and CLI --------------------------------------------------------------------------------
def test_hands(fresh: Path) -> None:
    assert set_insync(fresh, running=False) == "InSync stopped on cp-01"
    assert set_insync(fresh, running=False) == "InSync was already stopped on cp-01"
    assert set_allsync(fresh, "X", running=False) == "AllSync stopped on nas-cifs-x"
    assert set_allsync(fresh, "y", running=True) == "AllSync started on nas-cifs-y"
    _, docs = LabState(fresh).read()
    assert docs["cp-01"]["processes"] == []
    assert docs["nas-cifs-x"]["processes"] == [] and docs["nas-cifs-y"]["processes"] == ["AllSync"]
    with pytest.raises(LabError, match="no side"):
        set_allsync(fresh, "Z", running=True)


def test_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from amsm import main

    d = str(tmp_path)
    assert main(["lab", "init", "--dir", d, "--editors", "1"]) == 0
    assert "created a mirrored pair" in capsys.readouterr().out
    assert main(["lab", "init", "--dir", d]) == 1
    err = capsys.readouterr().err
    assert "already holds a lab" in err and "Traceback" not in err
    assert main(["lab", "insync", "stop", "--dir", d]) == 0
    assert capsys.readouterr().out.strip() == "InSync stopped on cp-01"
    assert main(["lab", "fault", "ED-01", "slow-reboot", "2", "--dir", d]) == 0
    assert capsys.readouterr().out.strip() == "ED-01: restarts take 2 s"
    assert main(["lab", "fault", "nobody", "unreachable", "--dir", d]) == 1
    assert "no lab host or DSM named 'nobody'" in capsys.readouterr().err
    assert main(["lab", "fault", "dsm-x", "no-reboot", "--dir", d]) == 1
    assert (
        "a DSM fault is one of replication-fails, job-missing, unreachable, restoring, clear"
        in capsys.readouterr().err
    )
    assert main(["lab", "ingest", "--side", "Y", "--clip", "bad/name", "--dir", d]) == 1
    assert "clip name 'bad/name'" in capsys.readouterr().err
    missing = argparse.Namespace(dir=str(tmp_path / "nowhere"))
    assert cmd_serve(missing) == 1
    assert "holds no lab" in capsys.readouterr().err


def test_labs_take_their_ports_from_the_slice_they_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PORTS_VARIABLE, "21000-21049")
    assert port_range() == (21000, 21050)
    ports = free_ports(20)
    assert len(set(ports)) == 20 and all(21000 <= p <= 21049 for p in ports)
    with pytest.raises(LabError, match="only .* free ports in 21000-21049; 60 needed"):
        free_ports(60)
    for bad in ("21000", "x-y", "19000-21000", "25000-24000", "30000-40000"):
        monkeypatch.setenv(PORTS_VARIABLE, bad)
        with pytest.raises(LabError, match=f"{PORTS_VARIABLE}=.*LOW-HIGH within 20000-31999"):
            port_range()
