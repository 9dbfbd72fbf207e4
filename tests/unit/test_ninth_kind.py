"""A ninth kind is its module and a line in the list of kinds (issue 26): `split-copy`
(tests/support/ninth_kind.py, a copy of split under another name), added with the hook
that stands for that line, shows in the CLI, the console's starts and start form, the dry
run, the worker's registry and the report, with no other change."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.models import Capabilities, DryRunFacts
from client.cli import build_parser
from client.commands.report import report_of_file
from client.commands.start import workflow_input
from console import actions, views
from inventory.status import (
    AllSyncStatus,
    BrowseStatus,
    ClientStatus,
    DsmStatus,
    InSyncStatus,
    PairStatus,
    ServiceState,
    SmartBinsStatus,
)
from records.history import load_history_file, parse_history, readable
from records.report import build_report
from records.report_render import render_markdown
from tests.support.ninth_kind import KIND, SplitCopyWorkflow
from workflows import registry
from workflows.kinds import KINDS, added
from workflows.models import SplitInput
from workflows.preview import dry_run

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


class _Inv:
    pair = "p"


@pytest.fixture
def ninth() -> Iterator[None]:
    with added(KIND, SplitCopyWorkflow):
        yield


def mirrored_x() -> PairStatus:
    return PairStatus(
        pair="p",
        read_at="2026-12-01T04:00:00+00:00",
        dsm={
            "X": DsmStatus(  # type: ignore[misc]
                host="dsm-x", side="X", mode="main", replication="running", role="master",
                asset_count=120,
            ),
            "Y": DsmStatus(  # type: ignore[misc]
                host="dsm-y", side="Y", mode="backup", replication="running", role="backup",
                asset_count=118,
            ),
        },
        smartbins=[SmartBinsStatus(host="sb-x1", side="X", pseudo_host=True),
                   SmartBinsStatus(host="sb-y1", side="Y", pseudo_host=True)],
        browse=[BrowseStatus(name="mediaframe", role="server", host="browse-srv", side="X",
                             running=True, services=[ServiceState(name="MF", status="Running")])],
        clients=[ClientStatus(host=f"ED-{i:02}", kind="editor", side="X", status="online")
                 for i in range(1, 3)],
        insync=InSyncStatus(host="cp-01", running=True, main="X"),
        allsync=AllSyncStatus(running_on=["X"]),
    )  # fmt: skip


def facts() -> DryRunFacts:
    return DryRunFacts(
        iscsi_port=3260,
        bridges={"X": "bridge-x", "Y": "bridge-y"},
        portals={"X": ["10.1.0.1"], "Y": ["10.2.0.1"]},
        nas={"X": "nas-x", "Y": "nas-y"},
        insync_process="InSync.exe",
        reached={f"ED-{i:02}": {"X": ["10.1.0.1"], "Y": ["10.2.0.1"]} for i in range(1, 3)},  # type: ignore[misc]
    )


def test_the_hook_adds_the_kind_for_the_block_only() -> None:
    assert "split-copy" not in KINDS
    with added(KIND, SplitCopyWorkflow):
        assert KINDS["split-copy"] is KIND
        assert SplitCopyWorkflow in registry.workflows()
        with pytest.raises(ValueError), added(KIND, SplitCopyWorkflow):
            pass
    assert "split-copy" not in KINDS and SplitCopyWorkflow not in registry.workflows()


def test_the_cli_offers_it_with_its_help_and_starts_it(ninth: None) -> None:
    parser = build_parser()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["start", "--help"])
    assert "split-copy" in out.getvalue() and KIND.help in out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["start", "split-copy", "--help"])
    assert "--main" in out.getvalue() and "the side that stays main" in out.getvalue()
    args = parser.parse_args(["start", "split-copy", "--main", "x", "--operator", "ann"])
    inp, what = workflow_input(_Inv(), args)  # type: ignore[arg-type]
    assert inp == SplitInput(pair="p", main="X", initiator="ann")
    assert what == "split-copy, X stays main"


def test_the_cli_knows_it_not_without_the_line() -> None:
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        build_parser().parse_args(["start", "split-copy", "--main", "X"])


def test_the_console_offers_it_and_starts_it_from_its_form(ninth: None) -> None:
    got = {s.label: s for s in views.starts(mirrored_x(), busy=False)}
    start = got["Start split-copy with X main"]
    assert start.offered and start.refused is None and not start.form and start.hosts is None
    # Its precondition is the split's: the other side refuses, in the kind's own words.
    assert got["Start split-copy with Y main"].refused == ("X is main, not Y (mirrored, X main)")
    inp, what = actions.start_input(_Inv(), "ann", {"kind": "split-copy", "side": "x"})  # type: ignore[arg-type]
    assert inp == SplitInput(pair="p", main="X", initiator="ann")
    assert what == "split-copy, X stays main"


def test_its_dry_run_walks_its_table_as_the_split_would(ninth: None) -> None:
    inp = SplitInput(pair="p", main="X", initiator="ann")
    copy = dry_run("split-copy", inp, mirrored_x(), facts(), Capabilities(), [])
    original = dry_run("split", inp, mirrored_x(), facts(), Capabilities(), [])
    assert copy.checklist.workflow == "split-copy"
    assert (
        copy.checklist.title
        == "DRY RUN (nothing changed): Split copy: X stays main, Y independent (p)"
    )
    assert [s.id for s in copy.checklist.steps] == [s.id for s in KIND.steps("X")]
    assert [(d.id, d.would, d.refused) for d in copy.steps] == [
        (d.id, d.would, d.refused) for d in original.steps
    ]
    assert copy.refused is None
    refused = dry_run("split-copy", SplitInput(pair="p", main="Y"), mirrored_x(), facts(),
                      Capabilities(), [])  # fmt: skip
    assert refused.refused == "split-copy with Y main refused: X is main, not Y (mirrored, X main)"


async def test_the_report_reads_its_row(ninth: None) -> None:
    path = HISTORIES / "split-main-x.json"
    run = parse_history(await readable(load_history_file(str(path)), None, str(path)), path.name)
    original = build_report(run)
    copy = build_report(run.model_copy(update={"workflow_type": "split-copy"}))
    assert copy.workflow_type == "split-copy"
    assert copy.direction == original.direction == "X stays main, Y independent"
    assert copy.serving == original.serving and copy.serving.seconds is not None
    assert [(s.id, s.status) for s in copy.steps] == [(s.id, s.status) for s in original.steps]
    assert "split-copy" in render_markdown(copy)
    # The committed history's own report is untouched by the ninth kind.
    assert (await report_of_file(str(path))).model_dump() == original.model_dump()


def test_a_namespace_without_the_kinds_options_still_starts_it(ninth: None) -> None:
    args = argparse.Namespace(kind="split-copy", main="Y", operator="jo")
    inp, _ = workflow_input(_Inv(), args)  # type: ignore[arg-type]
    assert inp == SplitInput(pair="p", main="Y", initiator="jo")
