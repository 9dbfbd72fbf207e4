"""Seeded crash trials: SIGKILL a worker at random points of every workflow kind.

Two workers serve the pair; in each trial one of them is killed at a random moment
and a new one is started. Every run must end as expected, and the lab's journal of
device changes must show no operation that is not idempotent applied twice: each
client that changed side restarted exactly twice and connected its new target once,
each Browse config file was swapped at most once per run.

Two pairs run side by side, seeds AMSM_CRASH_SEED and AMSM_CRASH_SEED+1; re-run a
failure with AMSM_CRASH_SEED=<the seed of the first pair> (the failure message names it).
By default each pair runs the cycle of six runs once (every kind, both directions of a
switch): 12 trials in `make test`; AMSM_CRASH_TRIALS=N runs more (a longer soak).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter

from temporalio.client import Client

from lab.state import LabState
from tests.support.cli import cli_json
from tests.support.driving import drive
from tests.support.lab import AMSM, Lab

SEED = int(os.environ.get("AMSM_CRASH_SEED", "20261125"))
TRIALS = int(os.environ.get("AMSM_CRASH_TRIALS", "12"))

# A cycle of runs that leaves the pair where it began: (start args, main at the end,
# the side AllSync stops on, or None).
CYCLE: list[tuple[list[str], str, str | None]] = [
    (["switch", "--to", "Y"], "Y", "X"),
    (["switch", "--to", "X"], "X", "Y"),
    (["split", "--main", "X"], "X", "X"),
    (["restore", "--main", "X"], "X", None),
    (["split-switch", "--to", "Y", "--pilot", "ED-01"], "Y", "X"),
    (["split-switch", "--to", "X", "--pilot", "ED-02"], "X", "Y"),
]


class Workers:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.procs.append(
            subprocess.Popen(
                [str(AMSM), "worker"],
                env=self.lab.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def changes_since(lab: Lab, since: int) -> list[tuple[str, str, str]]:
    return [(h, c, s) for _, h, c, s in LabState(lab.dir).journal()[since:]]


async def run_trials(temporal: Client, lab: Lab, seed: int, trials: int) -> None:
    lab.retime(heartbeat_timeout=1.5, max_attempts=30)
    rng = random.Random(seed)
    workers = Workers(lab)
    workers.start()
    workers.start()
    try:
        for trial in range(trials):
            argv, main, allsync_off = CYCLE[trial % len(CYCLE)]
            where = f"trial {trial} ({' '.join(argv)}), AMSM_CRASH_SEED={seed}"
            before = await cli_json(temporal, lab, "status")
            sides_before = {c["host"]: c["side"] for c in before["clients"]}
            mark = len(LabState(lab.dir).journal())
            t0 = time.monotonic()
            run = (await cli_json(temporal, lab, "start", *argv))["run_id"]
            delay = rng.uniform(0.0, 4.0)

            async def killer(delay: float = delay) -> None:
                await asyncio.sleep(delay)
                workers.kill_one(rng)

            kill = asyncio.create_task(killer())
            final = await drive(
                temporal, lab, run, main,  # type: ignore[arg-type]
                stop_allsync_on=allsync_off,  # type: ignore[arg-type]
                extra={"move-editors": []}, timeout=180,
            )  # fmt: skip
            await kill
            print(f"{where}: kill at {delay:.1f} s, done in {time.monotonic() - t0:.1f} s")
            assert final["state"] == "completed", (where, final)
            status = await cli_json(temporal, lab, "status")
            expected_mode = "split" if argv[0] == "split" else "mirrored"
            assert status["mode"] == expected_mode, (where, status["reason"])
            if expected_mode == "mirrored":
                assert status["main"] == main, where
            sides_after = {c["host"]: c["side"] for c in status["clients"]}
            assert all(c["status"] == "online" for c in status["clients"]), (
                where,
                status["clients"],
            )

            changes = changes_since(lab, mark)
            restarts = Counter(h for h, c, _ in changes if c == "Restart-Computer")
            # A move records the new side's login once (iscsicli PersistentLoginTarget).
            connects = Counter(
                h for h, c, st in changes if c == "iscsicli" and "PersistentLoginTarget" in st
            )
            for host, side in sides_after.items():
                moved = int(side != sides_before[host])
                assert restarts[host] == 2 * moved, (where, host, restarts[host], moved)
                assert connects[host] == moved, (where, host, connects[host], moved)
            renames = Counter(h for h, c, _ in changes if c == "Rename-Item")
            for host, n in renames.items():
                # One config file per lab Browse host: a swap is exactly three renames.
                assert n in (0, 3), (where, host, n)
    finally:
        workers.stop()


async def test_seeded_sigkill_trials_across_every_workflow_kind(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    # Two pairs side by side (most of a trial is waiting), half of the trials each.
    labs = [await lab_factory(editors=2, ingest=1, reboot_seconds=0.3) for _ in range(2)]
    half = (TRIALS + 1) // 2
    await asyncio.gather(
        run_trials(temporal, labs[0], SEED, half),
        run_trials(temporal, labs[1], SEED + 1, TRIALS - half),
    )
