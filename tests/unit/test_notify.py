"""Telling people, the pure parts (docs/operators/notifications.md): the inventory's
`notify` section and its clear refusals, the config file's mode, and the words of a
message (workflows/notify.py), which name the step, the command and the console's page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from activities.models import NotifyPlan
from activities.notify import config_problem, send
from inventory.load import InventoryError, load_inventory
from workflows.models import Checklist, ClientProgress, StepState
from workflows.notify import commands, readiness_message, waiting_message

DATA = Path(__file__).parent / "data" / "inventory.yaml"
PLAN = NotifyPlan(console_url="https://amsm.example", remind_every=900, escalate_after=2700)


def with_notify(tmp_path: Path, notify: object) -> Path:
    data = yaml.safe_load(DATA.read_text())
    data["notify"] = notify
    p = tmp_path / "inventory.yaml"
    p.write_text(yaml.safe_dump(data))
    for f in ("known_hosts",):
        (tmp_path / f).write_text("")
    return p


def test_the_notify_section_reads_durations_and_a_console_address(tmp_path: Path) -> None:
    n = {"config": "secrets/notify.yaml", "console_url": "https://amsm.example/", "remind_every": "10m", "escalate_after": "1h"}  # fmt: skip
    inv = load_inventory(with_notify(tmp_path, n))
    assert inv.notify is not None
    assert (inv.notify.remind_every, inv.notify.escalate_after) == (600, 3600)
    assert inv.notify.console_url == "https://amsm.example"
    assert load_inventory(with_notify(tmp_path, {"config": "n.yml"})).notify.remind_every == 900  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("notify", "said"),
    [
        ({"config": "n.yaml", "remind_every": "soon"}, "notify.remind_every: 'soon' is not a duration; write it with its unit: 20m, 1h30m, 90s or 1d"),
        ({"config": "n.yaml", "escalate_after": "10s"}, "notify.escalate_after: '10s' is out of range; allowed: 1m to 7d"),
        ({"config": "n.yaml", "console_url": "amsm.example"}, "notify.console_url: 'amsm.example' is not a web address"),
        ({"config": "https://hooks.example/TOKEN"}, "notify.config: 'https://hooks.example/TOKEN' is not an Apprise YAML file"),
        ({"config": "n.yaml", "tags": ["x"]}, "notify.tags"),
    ],
)  # fmt: skip
def test_a_bad_notify_section_is_refused_clearly(tmp_path: Path, notify: object, said: str) -> None:
    with pytest.raises(InventoryError) as e:
        load_inventory(with_notify(tmp_path, notify))
    assert said in str(e.value), str(e.value)
    assert "Traceback" not in str(e.value)


def test_a_config_readable_by_others_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    p = tmp_path / "notify.yaml"
    p.write_text("urls:\n  - json://127.0.0.1:9/x\n")
    p.chmod(0o640)
    assert config_problem(p) == (f"notify config {p}: readable by others (mode 640); chmod 600 {p}")
    r = send(p, "waiting", "s", "b")
    assert not r.delivered and "chmod 600" in (r.error or "")
    p.chmod(0o600)
    assert config_problem(p) is None
    assert "cannot read it" in (config_problem(tmp_path / "missing.yaml") or "")


def checklist(*steps: StepState) -> Checklist:
    return Checklist(
        workflow="switch", pair="studio-a", title="Switch X -> Y", run_id="r-1",
        initiator="ann", steps=list(steps),
    )  # fmt: skip


def test_a_waiting_message_names_the_step_the_command_and_the_page() -> None:
    gate = StepState(id="approve-overwrite", kind="gate", title="Y's database will be overwritten by X's", status="awaiting-approval")  # fmt: skip
    subject, body = waiting_message(PLAN, checklist(gate), gate, "2026-12-07T02:00:00+00:00", "escalation")  # fmt: skip
    assert subject == "ESCALATION: amsm studio-a: switch step approve-overwrite still waits for an approval"  # fmt: skip
    assert body.splitlines() == [
        "Pair studio-a, run r-1 (Switch X -> Y), started by ann.",
        "Step approve-overwrite: Y's database will be overwritten by X's",
        "It still waits for an approval, since 2026-12-07T02:00:00+00:00.",
        "What approving it does: Y's database will be overwritten by X's",
        "To act on it: amsm approve r-1 approve-overwrite",
        "In the console: https://amsm.example/pairs/studio-a/run",
    ]


def test_a_failed_client_is_retried_or_skipped_by_its_own_command() -> None:
    step = StepState(
        id="switch-clients", kind="auto", title="Switch the clients", status="running",
        clients=[ClientProgress(host="ED-01", status="failed", error="no V:")],
    )  # fmt: skip
    assert commands(checklist(step), step) == [
        "amsm retry r-1 switch-clients --client ED-01",
        'amsm skip r-1 switch-clients --client ED-01 --reason "..."',
    ]
    _, body = waiting_message(PLAN.model_copy(update={"console_url": None}), checklist(step), step, "t", "waiting")  # fmt: skip
    assert "Client ED-01: no V:" in body and "console" not in body


def test_readiness_names_the_problems_and_the_check() -> None:
    subject, body = readiness_message(PLAN, "studio-a", False, 2, ["dsm-x: answers: no"], "t0")
    assert subject == "amsm studio-a: NOT ready (2 problem(s))"
    assert "- dsm-x: answers: no" in body and "amsm check" in body
    assert readiness_message(PLAN, "studio-a", True, 0, [], "t1")[0] == "amsm studio-a: ready again"


def test_the_consoles_run_page_lists_the_deliveries() -> None:
    """console/templates/_run.html, drawn as the run page draws it (console/site.py)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    import console.site as site
    from workflows.models import Delivery

    env = Environment(
        loader=FileSystemLoader(site.HERE / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.globals.update(stage=site.views.stage, expected=site.gates.expected, quote=site.quote)
    c = checklist(StepState(id="stop-insync", kind="manual", title="Stop InSync", status="done"))
    c.state = "completed"
    c.deliveries = [
        Delivery(at="t1", audience="waiting", kind="waiting", subject="s", step="stop-insync", delivered=True),
        Delivery(at="t2", audience="runs", kind="run", subject="s", delivered=False, error="no <answer>"),
    ]  # fmt: skip
    c.deliveries_total = 7
    html = env.get_template("_run.html").render(
        checklist=c, pair="studio-a", snap=None, can_act=False, csrf="", st=None
    )
    assert "<h2>Told (the last 2 of 7)</h2>" in html, html
    assert "t1 waiting (waiting stop-insync): delivered" in html
    assert "t2 runs (run): NOT delivered: no &lt;answer&gt;" in html


def test_the_cli_the_console_and_the_workflows_do_not_load_apprise() -> None:
    """Only the worker sends (activities/notify.py loads Apprise when it does)."""
    import subprocess
    import sys

    code = (
        "import sys, client.cli, console.app, workflows.registry, api.notify;"
        "sys.exit('apprise' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=DATA.parents[3]).returncode == 0
