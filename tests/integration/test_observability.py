"""The worker's structured logs and Prometheus metrics, from a real worker process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import urllib.request

from temporalio.client import Client

from lab.faults import set_fault
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.lab import AMSM, free_port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


async def test_json_logs_name_run_step_and_host_and_metrics_count_activities(
    temporal: Client, lab_factory, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0, reboot_seconds=0.3)
    lab.retime(reboot_timeout=2, max_attempts=1)
    set_fault(lab.dir, "ED-01", "no-reboot")
    port = free_port()
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(AMSM), "worker", "--log-format", "json", "--metrics", f"127.0.0.1:{port}"],
            env=lab.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]

        def client_failed(s: dict) -> bool:
            return any(
                c["status"] == "failed" for c in step(s, "switch-clients").get("clients") or []
            )

        await drive(temporal, lab, run, "Y", until=client_failed, timeout=90)
        for _ in range(50):
            text = scrape(port)
            if 'outcome="failed"' in text:
                break
            await asyncio.sleep(0.2)
        # The SDK's own metrics and amsm's, on the same endpoint.
        assert "temporal_activity_execution_latency" in text or "temporal_request" in text, text[
            :2000
        ]
        counted = [
            line
            for line in text.splitlines()
            if line.startswith("amsm_activities") and 'activity="client_prepare_restart"' in line
        ]
        assert any('outcome="failed"' in line for line in counted), counted
        assert any(line.startswith("amsm_activity_seconds") for line in text.splitlines())
        rc, out_text = await cli(temporal, lab, "abort", run, "--reason", "test over")
        assert rc == 0, out_text
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()[:2000]
    failed = [x for x in lines if x.get("activity") == "client_prepare_restart"]
    assert failed, lines
    f = failed[0]
    assert f["host"] == "ED-01" and f["step"] == "client-switch: reconfigure, restart 1/2", f
    assert f["run_id"] and f["workflow_id"].endswith("-switch-clients-1"), f
    assert f["workflow_type"] == "client-batch" and f["level"] == "WARNING", f
    assert "did not come back" in f["msg"] and "{'activity_id'" not in f["msg"], f
    # Workflow lines carry their run; a confirmation names its step.
    confirms = [x for x in lines if x.get("workflow_type") == "switch" and "confirm" in x["msg"]]
    assert confirms and all(x["run_id"] == run for x in confirms), confirms
    assert any(x.get("step") == "stop-insync" for x in confirms), confirms
