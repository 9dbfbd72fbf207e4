"""`amsm console`'s command line (console/main.py): what it takes, what it refuses."""

from __future__ import annotations

import argparse
import stat

import pytest

from api.refusal import EXIT_USAGE, Refused
from console.main import (
    kept_session_key,
    listen_address,
    main,
    parser,
    proxy_of,
    session_key,
    split_inventories,
)
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
        with pytest.raises(Refused, match="HOST:PORT") as e:
            listen_address(bad)
        assert e.value.code == EXIT_USAGE


def test_the_same_pair_twice_is_a_usage_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    inv = str(init_lab(tmp_path / "lab", editors=1, ingest=0))
    assert main(["--inventory", inv, "--inventory", inv]) == EXIT_USAGE
    assert "pair lab is given twice" in capsys.readouterr().err


def test_the_session_key_is_kept_beside_the_accounts_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "console-session-key"
    key = kept_session_key(path)
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert kept_session_key(path) == key  # the next start reads the same one
    assert [p.name for p in tmp_path.iterdir()] == ["console-session-key"]  # no temp left


def test_a_kept_session_key_readable_by_others_or_short_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "console-session-key"
    kept_session_key(path)
    path.chmod(0o644)
    with pytest.raises(Refused, match=f"{path}: readable by others .*chmod 600 {path}") as e:
        kept_session_key(path)
    assert e.value.code == EXIT_USAGE
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(Refused, match=f"{path}: the key is 5 characters, 32 or more") as e:
        kept_session_key(path)
    assert e.value.code == EXIT_USAGE


def test_a_session_key_that_cannot_be_made_is_a_usage_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "missing-dir" / "console-session-key"
    with pytest.raises(Refused, match=f"{path}: cannot create it .*--session-key-file") as e:
        kept_session_key(path)
    assert e.value.code == EXIT_USAGE


def test_without_session_key_file_the_key_is_the_one_beside_the_accounts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    accounts = tmp_path / "console-accounts.yaml"
    args = argparse.Namespace(session_key_file=None)
    key = session_key(args, str(accounts))
    assert (tmp_path / "console-session-key").read_text().strip() == key
    given = tmp_path / "given"
    given.write_text("k" * 40)
    assert session_key(argparse.Namespace(session_key_file=str(given)), str(accounts)) == "k" * 40


def test_a_trusted_proxy_alone_is_believed_for_addresses_and_a_header_needs_one() -> None:
    def parsed(*argv: str) -> argparse.Namespace:
        return parser().parse_args(list(argv))

    assert proxy_of(parsed()) is None
    alone = proxy_of(parsed("--trusted-proxy", "10.0.0.5"))
    assert alone is not None and alone.header is None
    both = proxy_of(parsed("--trusted-proxy", "10.0.0.5", "--proxy-user-header", "X-User"))
    assert both is not None and both.header == "X-User"
    with pytest.raises(Refused, match="--proxy-user-header needs --trusted-proxy") as e:
        proxy_of(parsed("--proxy-user-header", "X-User"))
    assert e.value.code == EXIT_USAGE
    with pytest.raises(Refused, match="--trusted-proxy: '10.0.0.300' is not an address"):
        proxy_of(parsed("--trusted-proxy", "10.0.0.300"))
