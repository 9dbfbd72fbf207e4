"""A ninth kind end to end: `split-copy` (tests/support/ninth_kind.py), added to the list
of kinds the way a line in workflows/kinds.py adds one, runs on the lab through the CLI,
the worker, its dry run and its report with no other change in the house."""

from __future__ import annotations

from temporalio.client import Client

from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.ninth_kind import KIND, SplitCopyWorkflow
from tests.support.worker import running_worker
from workflows.kinds import added


async def test_a_ninth_kind_runs_from_its_module_and_a_line(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=2, ingest=1)
    with added(KIND, SplitCopyWorkflow):
        async with running_worker(temporal, lab):
            rc, out = await cli(temporal, lab, "start", "split-copy", "--main", "Y")
            assert rc == 1 and "X is main, not Y" in out

            dry = await cli_json(temporal, lab, "start", "split-copy", "--main", "X", "--dry-run")
            assert dry["dry_run"] and dry["workflow"] == "split-copy" and dry["refused"] is None
            assert [s["id"] for s in dry["steps"]] == [s.id for s in KIND.steps("X")]

            run = (await cli_json(temporal, lab, "start", "split-copy", "--main", "X"))["run_id"]
            final = await drive(
                temporal, lab, run, "X", stop_allsync_on="X",
                extra={"move-editors": ["--client", "ED-02"]},
            )  # fmt: skip
            assert final["state"] == "completed", final
            assert final["workflow"] == "split-copy"
            assert (
                final["title"] == f"Split copy: X stays main, Y independent ({lab.inventory.pair})"
            )
            assert [s["id"] for s in final["steps"]] == [s.id for s in KIND.steps("X")]
            assert [c["host"] for c in step(final, "move-editors")["clients"]] == ["ED-02"]
            status = await cli_json(temporal, lab, "status")
            assert status["mode"] == "split"

            rc, report = await cli(temporal, lab, "report", run)
            assert rc == 0, report
            assert "split-copy" in report and "X stays main, Y independent" in report
