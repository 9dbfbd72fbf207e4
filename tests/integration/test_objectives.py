"""Time to serve held against the inventory's objective, after a real switch on the lab:
`amsm runs` (text and --json) and `amsm report` state it, and the worker process exports
`amsm_time_to_serve_seconds{pair,kind}` on its metrics endpoint."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from temporalio.client import Client

from records.report import minutes
from tests.support.cli import cli, cli_json
from tests.support.driving import drive
from tests.support.lab import AMSM, free_port
from tests.support.waiting import wait_for


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def sample(text: str, name: str, pair: str, kind: str) -> float | None:
    """The value of `name{...pair=..., kind=...}` in a Prometheus text page, or None."""
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
        if m and f'pair="{pair}"' in m.group(1) and f'kind="{kind}"' in m.group(1):
            return float(m.group(2))
    return None


async def test_time_to_serve_against_its_objective_in_runs_report_and_metrics(
    temporal: Client, lab_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0, reboot_seconds=0.3)
    lab.edit_inventory(objectives={"time_to_serve": "20m"})
    pair = lab.inventory.pair
    port = free_port()
    with open(tmp_path / "worker.log", "wb") as out:
        worker = subprocess.Popen(
            [str(AMSM), "worker", "--metrics", f"127.0.0.1:{port}"],
            env=lab.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown = await drive(temporal, lab, run, "Y")
        assert shown["state"] == "completed", shown

        rc, text = await cli(temporal, lab, "report", run, "--json")
        assert rc == 0, text
        serving = json.loads(text)["serving"]
        secs = serving["seconds"]
        assert secs is not None and 0 < secs < 1200, serving
        want = f"time to serve {minutes(secs)}, objective 20 min: met"
        assert serving["objective"] == {"seconds": 1200.0, "met": True, "text": want}, serving
        rc, text = await cli(temporal, lab, "report", run)
        assert rc == 0 and f"| Objective | {want} |" in text, text

        listed = await cli_json(temporal, lab, "runs")
        assert listed["objective_s"] == 1200, listed
        row = next(r for r in listed["runs"] if r["run_id"] == run)
        assert (row["time_to_serve_s"], row["objective_met"]) == (round(secs, 1), True), row
        assert (row["objective_s"], row["objective_text"]) == (1200, want), row
        rc, text = await cli(temporal, lab, "runs")
        assert rc == 0 and "objective: time to serve at most 20 min" in text, text
        line = next(x for x in text.splitlines() if x.startswith(run))
        assert line.endswith(f"{minutes(round(secs, 1))}, met"), line

        # The same run against an objective it misses (the inventory is read per command).
        lab.edit_inventory(objectives={"time_to_serve": "1s"})
        row = next(r for r in (await cli_json(temporal, lab, "runs"))["runs"] if r["run_id"] == run)
        late = minutes(round(secs, 1) - 1)
        assert row["objective_met"] is False and row["objective_s"] == 1, row
        rc, text = await cli(temporal, lab, "runs")
        line = next(x for x in text.splitlines() if x.startswith(run))
        assert line.endswith(f", missed by {late}"), line

        # The worker that ran the switch recorded its time to serve once.
        name = "amsm_time_to_serve_seconds"

        async def counted() -> bool:
            return sample(scrape(port), f"{name}_count", pair, "switch") == 1

        await wait_for(counted, "the worker's histogram counts the switch")
        page = scrape(port)
        total = sample(page, f"{name}_sum", pair, "switch")
        # The worker measures the steps' ends on the checklist's clock, to the second.
        assert total is not None and abs(total - secs) <= 1.0, (total, secs)
        assert f"# TYPE {name} histogram" in page, page[:2000]
        # In buckets fit for minutes (the worker's own; the SDK's are for milliseconds).
        buckets = [x for x in page.splitlines() if x.startswith(f"{name}_bucket")]
        assert any('le="1200"' in x for x in buckets) and any('le="30"' in x for x in buckets), (
            buckets
        )
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
