"""The soak benchmark's pure parts: /proc parsing and the growth verdicts, by hand."""

from __future__ import annotations

from typing import Any

import pytest

from bench import soak

# Two lines of /proc/net/tcp: a listener on 0x5DC0 (24000), and a connection from
# 0xA7F8 (43000) to 0x5DC1 (24001), established; the last field shown is the inode.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:5DC0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 0100007F:A7F8 0100007F:5DC1 01 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: 0100007F:5DC1 0100007F:A7F8 08 00000000:00000000 00:00000000 00000000     0        0 333 1
"""


def test_proc_net_tcp_gives_ports_and_states() -> None:
    t = soak.parse_proc_net_tcp(PROC_NET_TCP)
    assert t["111"] == (24000, 0, "listen")
    assert t["222"] == (43000, 24001, "established")
    assert t["333"] == (24001, 43000, "close-wait")


def test_connections_per_host_from_either_side() -> None:
    ports = {24001: ("k2-x-01", "ssh"), 24002: ("k2-x-02", "winrm")}
    sockets = [(43000, 24001, "established"), (43000, 24002, "established"), (24000, 0, "listen")]
    assert soak.per_host(sockets, ports, "remote") == {
        "ssh": {"k2-x-01": 1},
        "winrm": {"k2-x-02": 1},
    }
    lab = [(24001, 43000, "close-wait"), (24002, 0, "listen"), (24001, 43001, "established")]
    assert soak.per_host(lab, ports, "local") == {"ssh": {"k2-x-01": 2}, "winrm": {}}


def test_fd_kinds() -> None:
    assert soak.fd_kind("socket:[123]") == "socket"
    assert soak.fd_kind("pipe:[9]") == "pipe"
    assert soak.fd_kind("anon_inode:[eventfd]") == "anon_inode:[eventfd]"
    assert soak.fd_kind("/tmp/lab/dsm-x.db") == "file"


def test_the_reference_switch_goes_the_same_way_as_the_last() -> None:
    ways = ["Y", "X"] * 5  # 10 switches, the last to X
    assert soak.reference_index(ways, 5) == 5  # the 6th switch, to X
    assert soak.reference_index(ways[:9], 5) == 4  # 9 switches, the last to Y: the 5th
    assert soak.reference_index(ways[:3], 5) == 0  # shorter than the warm-up: the 1st
    assert soak.reference_index(ways[:4], 5) == 1  # the 2nd, the latest to X before the 4th
    assert soak.reference_index(ways[:1], 5) == 0  # one switch: itself


def _sample(n: int, rss: float, fds: int, events: int = 246, **kw: Any) -> dict[str, Any]:
    return {
        "switch": n,
        "to": "Y" if n % 2 else "X",
        "rss_mb": rss,
        "fds": fds,
        "sockets": fds - 100,
        "ssh_max_per_host": kw.get("ssh", 1),
        "winrm_max_per_host": kw.get("winrm", 2),
        "ssh_connections": 40,
        "winrm_connections": 20,
        "lab_connections": kw.get("lab", 60),
        "parent_events": events,
    }


def _verdicts(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = soak.judge(samples, soak.Bounds(), warmup=5)
    return {v["bound"].split(",")[0].split(" (")[0]: v for v in out}


def test_a_steady_worker_meets_every_bound() -> None:
    samples = [_sample(n, 140.0 + (n % 3), 230 + (n % 2)) for n in range(1, 11)]
    v = _verdicts(samples)
    assert all(x["met"] for x in v.values()), v
    # Switch 10 is measured from switch 6 (the first at or after the 5th going to X).
    assert "switch 10 over switch 6" in soak.judge(samples, soak.Bounds(), 5)[0]["bound"]


def test_growth_past_each_bound_fails_it() -> None:
    samples = [_sample(n, 140.0 + 5 * n, 230 + 2 * n) for n in range(1, 11)]
    v = _verdicts(samples)
    assert v["worker RSS growth"]["value"] == pytest.approx(20.0)  # 190 - 170: on the bound
    assert v["worker RSS growth"]["met"]
    samples[-1]["rss_mb"] += 0.5
    samples[-1]["fds"] += 1  # 8 + 1 over switch 6
    samples[-1]["sockets"] += 1
    samples[3].update(ssh_max_per_host=3, winrm_max_per_host=9)
    samples[-1]["lab_connections"] = 60 + 9  # the lab holds 9 the worker forgot
    samples[7]["parent_events"] = int(246 * 1.2)
    v = _verdicts(samples)
    failed = {k for k, x in v.items() if not x["met"]}
    assert failed == {
        "worker RSS growth",
        "worker open fds growth",
        "worker sockets growth",
        "SSH connections to one host",
        "WinRM connections to one host",
        "lab connections no worker holds",
        "a run's parent history events over its direction's first",
    }


def test_slope() -> None:
    assert soak.slope_per_switch([100.0, 101.0, 102.0, 103.0]) == pytest.approx(1.0)
    assert soak.slope_per_switch([5.0]) is None
