"""`amsm console`'s command line (console/main.py): what it takes, what it refuses."""

from __future__ import annotations

import pytest

from client.session import EXIT_USAGE, CliError
from console.main import listen_address, main, split_inventories
from lab.init import init_lab


def test_inventory_repeats_and_the_rest_is_left_for_the_parser() -> None:
    paths, rest = split_inventories(
        ["--inventory", "a.yaml", "--listen", "0.0.0.0:9000", "--inventory=b.yaml"]
    )
    assert paths == ["a.yaml", "b.yaml"] and rest == ["--listen", "0.0.0.0:9000"]


def test_listen_takes_host_and_port() -> None:
    assert listen_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert listen_address("[::1]:8443") == ("::1", 8443)
    for bad in ("8080", "host:", "host:0", "host:70000", ":80", "host:http"):
        with pytest.raises(CliError, match="HOST:PORT") as e:
            listen_address(bad)
        assert e.value.code == EXIT_USAGE


def test_the_same_pair_twice_is_a_usage_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    inv = str(init_lab(tmp_path / "lab", editors=1, ingest=0))
    assert main(["--inventory", inv, "--inventory", inv]) == EXIT_USAGE
    assert "pair lab is given twice" in capsys.readouterr().err
