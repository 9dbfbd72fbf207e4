"""The order the suite's files are handed to pytest-xdist's test processes.

`make test` runs two processes, each taking a whole file at a time (`--dist loadfile`).
xdist by default hands out the files with the most tests first, so the few files with one
long test (the crash trials, the two benchmarks: three minutes each under load) came last
and one process ran them alone while the other had finished: the suite's tail. Longest
first is the classic rule for keeping parallel workers equally busy (LPT scheduling), so
the Makefile passes `--no-loadscope-reorder` and this order is the collection's.

HEAVIEST: the integration files by their measured time (sum of setup, call and teardown,
`--durations=0` of a whole run, 2026-12-07), heaviest first. A file not listed comes after
them (other integration files in their usual order), and the unit tests and the history
replays, many short tests, come last and fill the processes' ends evenly.
"""

from __future__ import annotations

HEAVIEST = (
    "tests/integration/test_web_console.py",
    "tests/integration/test_floods.py",  # split from test_hardening.py (400 s together)
    "tests/integration/test_crash_trials.py",
    "tests/integration/test_bench_console.py",
    "tests/integration/test_bench.py",
    "tests/integration/test_hardening.py",
    "tests/integration/test_failures.py",
    "tests/integration/test_network_faults.py",
    "tests/integration/test_drivers.py",
    "tests/integration/test_winrm.py",
    "tests/integration/test_workflows.py",
    "tests/integration/test_blackout.py",
    "tests/integration/test_client_boot.py",
    "tests/integration/test_schedule.py",
    "tests/integration/test_iscsi_paths.py",
    "tests/integration/test_worker_crash.py",
    "tests/integration/test_unplanned.py",
    "tests/integration/test_client_resume.py",
    "tests/integration/test_notify.py",
    "tests/integration/test_network_runs.py",  # new, measured alone: 70-100 s
)


def rank(path: str) -> tuple[int, int]:
    """Sort key of a test file's path relative to the project: (group, place)."""
    if path in HEAVIEST:
        return 0, HEAVIEST.index(path)
    if path.startswith("tests/integration/"):
        return 1, 0
    return 2, 0
