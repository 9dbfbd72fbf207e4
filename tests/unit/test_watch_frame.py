"""`amsm watch` draws the run as `amsm show` prints it: one renderer of a run on the
terminal (client/render.py render_run over workflows/view.py render_text), the watch's
frame adding only each switching client's stage under its step."""

from __future__ import annotations

import argparse
import asyncio
import io

import pytest
from rich.console import Console

from api.show import RunView
from client.commands import show as show_command
from client.commands import watch
from client.render import render_run
from workflows.models import Checklist, ClientProgress, StepState
from workflows.switch import switch_steps


def running_switch() -> Checklist:
    steps = [StepState(id=s.id, kind=s.kind, title=s.title) for s in switch_steps("X", "Y")]
    for s in steps[:10]:
        s.status = "done"
    steps[4].operator, steps[4].note = "jo", "closed InSync"
    steps[10].status = "running"
    steps[10].clients = [
        ClientProgress(host="ED-01", status="done", seconds=4.0),
        ClientProgress(host="ED-02", status="switching", workflow_id="b-1"),
        ClientProgress(host="IN-01", status="failed", error="IN-01: no answer"),
    ]
    return Checklist(
        workflow="switch", pair="lab", title="Switch X -> Y (lab)", run_id="abc-123",
        initiator="jo", steps=steps, state="running",
    )  # fmt: skip


def drawn(view: RunView, stages: dict[str, str]) -> list[str]:
    """The watch's frame as rich writes it on a wide terminal."""
    out = io.StringIO()
    Console(file=out, width=500).print(watch.frame(view, stages))
    return [line.rstrip() for line in out.getvalue().splitlines()]


def shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], view: RunView
) -> str:
    """What `amsm show RUN` prints for VIEW (its API call answering VIEW)."""

    async def answer(*_: object) -> RunView:
        return view

    monkeypatch.setattr(show_command, "show", answer)
    args = argparse.Namespace(run="abc-123", json=False)
    assert asyncio.run(show_command.run(None, None, args)) == 0  # type: ignore[arg-type]
    return capsys.readouterr().out


def test_the_watch_frame_is_the_show_checklist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    c = running_switch()
    c.steps[10].clients[1].status = "done"  # type: ignore[index]
    view = RunView(checklist=c)
    printed = shown(monkeypatch, capsys, view).rstrip("\n").splitlines()
    # No client switching: the frame is what `amsm show` prints, line for line.
    assert drawn(view, {}) == [line.rstrip() for line in printed]
    assert any(line.startswith("[~] 11 switch-clients") for line in printed)
    assert "        clients: 2 done, 0 pending, 1 failed, 3 in all" in printed


def test_the_watch_frame_adds_only_the_stages_of_switching_clients(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    view = RunView(checklist=running_switch())
    printed = [x.rstrip() for x in shown(monkeypatch, capsys, view).rstrip("\n").splitlines()]
    step = printed.index(next(x for x in printed if " switch-clients " in x))
    added = "          ED-02: logging in to the iSCSI target"
    lines = drawn(view, {"ED-02": "logging in to the iSCSI target"})
    assert lines == [*printed[: step + 1], added, *printed[step + 1 :]]
    # A client whose child has not answered yet is said to be switching, never left out.
    assert "          ED-02: switching" in drawn(view, {})
    assert render_run(view) == "\n".join(printed)  # show asks no stage: no line added
