"""The order the suite's files are handed to pytest-xdist's test processes.

`make test` runs four processes, each taking a whole file at a time (`--dist loadfile`).
xdist by default hands out the files with the most tests first, so the few files with one
long test (the crash trials, the two benchmarks: three minutes each under load) came last
and one process ran them alone while the other had finished: the suite's tail. Longest
first is the classic rule for keeping parallel workers equally busy (LPT scheduling), so
the Makefile passes `--no-loadscope-reorder` and this order is the collection's.

HEAVIEST: the integration files by their measured time (sum of setup, call and teardown,
`--durations=0` of a whole run with two processes on two CPUs, 2026-12-07), heaviest
first. A file not listed comes after
them (other integration files in their usual order), and the unit tests and the history
replays, many short tests, come last and fill the processes' ends evenly.
"""

from __future__ import annotations

HEAVIEST = (
    "tests/integration/test_floods.py",  # 169 s
    "tests/integration/test_web_console.py",  # 155 s
    "tests/integration/test_console_holds.py",  # 117 s
    "tests/integration/test_bench_console.py",  # 104 s
    "tests/integration/test_hardening.py",  # 79 s
    "tests/integration/test_crash_trials.py",  # 73 s
    "tests/integration/test_network_faults.py",  # 69 s
    "tests/integration/test_blackout.py",  # 66 s
    "tests/integration/test_failures.py",  # 62 s
    "tests/integration/test_workflows.py",  # 51 s
    "tests/integration/test_drivers.py",  # 48 s
    "tests/integration/test_two_person.py",  # 47 s
    "tests/integration/test_network_runs.py",  # 45 s
    "tests/integration/test_bench.py",  # 45 s
    "tests/integration/test_client_boot.py",  # 43 s
    "tests/integration/test_schedule.py",  # 40 s
    "tests/integration/test_unplanned.py",  # 39 s
    "tests/integration/test_worker_crash.py",  # 36 s
    "tests/integration/test_storms.py",  # 33 s
    "tests/integration/test_controls.py",  # 31 s
    "tests/integration/test_winrm.py",  # 30 s
    "tests/integration/test_client_resume.py",  # 30 s
    "tests/integration/test_dry_run.py",  # 29 s
    "tests/integration/test_notify.py",  # 25 s
    "tests/integration/test_plans.py",  # 25 s
    "tests/integration/test_lockdown.py",  # 24 s
)


def rank(path: str) -> tuple[int, int]:
    """Sort key of a test file's path relative to the project: (group, place)."""
    if path in HEAVIEST:
        return 0, HEAVIEST.index(path)
    if path.startswith("tests/integration/"):
        return 1, 0
    return 2, 0
