"""Two site workers (`amsm worker --site X` and `--site Y`) carry a switch between them:
each side's device activities run on that side's queue, by that side's worker."""

from __future__ import annotations

import signal
import subprocess

from temporalio.client import Client

from inventory.models import site_queue
from records.history import decode_value
from tests.support.cli import cli_json
from tests.support.driving import drive
from tests.support.lab import AMSM, Lab


def site_worker(lab: Lab, site: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(AMSM), "worker", "--site", site],
        env=lab.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_each_side_s_activities_run_on_its_site_worker(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    workers = [site_worker(lab, "X"), site_worker(lab, "Y")]
    try:
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        final = await drive(temporal, lab, run, "Y", timeout=120)
        assert final["state"] == "completed", final
        history = await temporal.get_workflow_handle(
            lab.inventory.workflow_id, run_id=run
        ).fetch_history()
    finally:
        for w in workers:
            w.send_signal(signal.SIGINT)
        for w in workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
    queue = lab.inventory.queue
    scheduled: dict[int, tuple[str, str | None, str]] = {}
    ran_by: dict[int, str] = {}
    for e in history.events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            a = e.activity_task_scheduled_event_attributes
            inp = decode_value(a.input)
            side = inp.get("side") if isinstance(inp, dict) else None
            scheduled[e.event_id] = (a.activity_type.name, side, a.task_queue.name)
        elif e.HasField("activity_task_started_event_attributes"):
            s = e.activity_task_started_event_attributes
            ran_by[s.scheduled_event_id] = s.identity
    sided = {k: v for k, v in scheduled.items() if v[1] is not None}
    # A switch acts on both sides: X's DSM and SmartBins to backup, Y's to main, ...
    assert {side for _, side, _ in sided.values()} == {"X", "Y"}, scheduled
    for eid, (activity, side, tq) in scheduled.items():
        if side is None:
            assert tq == queue, (activity, tq)
            continue
        assert tq == site_queue(queue, side), (activity, side, tq)
        assert f"amsm-worker-site-{side}-" in ran_by[eid], (activity, side, ran_by[eid])


async def test_a_site_other_than_x_or_y_is_refused(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    done = subprocess.run(
        [str(AMSM), "worker", "--site", "Z"], env=lab.env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice: 'Z'" in done.stderr, done.stderr
