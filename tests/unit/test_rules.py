"""The rules table, `amsm rules`, the CLI's checking of --override/--reason, the drivers'
second check of absolute rules, and the override records."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from activities.drivers import errors
from activities.drivers.errors import InterlockRefused
from activities.drivers.interlocks import Overrides
from activities.models import ForcedRule
from amsm import main
from client.commands.report import report_of_file
from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from inventory import rules
from inventory.rules import BY_NAME, OVERRIDABLE, RULES, override_refusal
from records.report_render import render_html, render_markdown
from workflows.overrides import Override, override_problem, records

OVERRIDABLE_RULES = {
    "control-alongside-run",
    "insync-direction-only-while-stopped",
    "browse-switch-only-stopped",
    "client-switch-needs-bridge",
    "client-switch-not-under-write-filter",
    "no-switch-in-blackout",
}
ABSOLUTE_RULES = {
    "replication-only-from-main",
    "replication-only-to-backup-peer",
    "purge-only-on-backup-volume",
    "one-workflow-per-pair",
    "main-only-when-not-replicated-onto",
}


def amsm(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(list(argv))
        except SystemExit as e:  # argparse's own usage errors
            rc = int(e.code or 0)
    return rc, out.getvalue()


# -- the table ------------------------------------------------------------------------------
def test_every_rule_once_with_what_it_protects() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert {r.name for r in RULES if r.overridable} == OVERRIDABLE_RULES
    assert {r.name for r in RULES if not r.overridable} == ABSOLUTE_RULES
    for r in RULES:
        assert r.protects and r.enforced and not r.protects.endswith(".")


def test_the_drivers_rule_names_are_the_tables() -> None:
    for const in (n for n in dir(errors) if n.startswith("RULE_")):
        assert getattr(errors, const) == getattr(rules, const) in BY_NAME


def test_override_refusal_explains_unknown_and_absolute() -> None:
    assert override_refusal("browse-switch-only-stopped") is None
    assert "unknown rule 'nope'" in (override_refusal("nope") or "")
    text = override_refusal("purge-only-on-backup-volume") or ""
    assert (
        "cannot be overridden" in text and BY_NAME["purge-only-on-backup-volume"].protects in text
    )


# -- amsm rules -------------------------------------------------------------------------------
def test_amsm_rules_lists_every_rule_without_a_server() -> None:
    rc, out = amsm("--address", "127.0.0.1:1", "rules")
    assert rc == EXIT_OK
    for r in RULES:
        assert r.name in out and r.protects in out
    rc, out = amsm("rules", "--json")
    data = json.loads(out)["rules"]
    assert {(d["name"], d["overridable"]) for d in data} == {(r.name, r.overridable) for r in RULES}
    assert all(d["protects"] and d["enforced"] for d in data)


# -- the CLI's checks: before anything connects (no inventory, no server here) ---------------
NO_INVENTORY = ("--inventory", "/nonexistent/inventory.yaml", "--address", "127.0.0.1:1")


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--override", "browse-switch-only-stopped"], EXIT_USAGE, "needs --reason TEXT"),
        (["--override", "browse-switch-only-stopped", "--reason", "  "], EXIT_USAGE, "not blank"),
        (["--override", "nope", "--reason", "x"], EXIT_USAGE, "no such rule"),
        (["--reason", "why"], EXIT_USAGE, "--reason goes with --override"),
        (
            ["--override", "replication-only-to-backup-peer", "--reason", "x"],
            EXIT_FAIL,
            "rule 'replication-only-to-backup-peer' cannot be overridden",
        ),
        (
            [
                "--override",
                "browse-switch-only-stopped",
                "--override",
                "one-workflow-per-pair",
                "--reason",
                "x",
            ],
            EXIT_FAIL,
            "rule 'one-workflow-per-pair' cannot be overridden",
        ),
    ],
)
def test_bad_overrides_are_refused_before_anything_starts(
    argv: list[str], code: int, says: str
) -> None:
    rc, out = amsm(*NO_INVENTORY, "browse", "switch", "--to", "Y", "mdi-k2", *argv)
    assert rc == code and says in out, out
    assert "Traceback" not in out
    if "no such rule" in says:
        assert all(r in out for r in OVERRIDABLE)


def test_every_control_takes_override() -> None:
    for argv in (
        ["dsm", "set-main", "X"],
        ["replication", "start", "Y"],
        ["smartbins", "set-backup", "X"],
        ["browse", "stop"],
        ["clients", "switch", "--to", "Y", "ED-01"],
        ["insync", "set-main", "Y"],
        ["insync", "start"],
        ["allsync", "stop", "X"],
        ["reboot", "ED-01"],
    ):
        rc, out = amsm(*NO_INVENTORY, *argv, "--override", "nope", "--reason", "x")
        assert rc == EXIT_USAGE and "no such rule" in out, (argv, out)


# -- the drivers' second check --------------------------------------------------------------
def test_a_driver_forces_only_an_overridable_rule_it_was_given() -> None:
    ov = Overrides.of(["browse-switch-only-stopped", "purge-only-on-backup-volume"])
    said = ov.refuse("mdi-k2", "browse-switch-only-stopped", "running: X", "it was running")
    assert said == "rule 'browse-switch-only-stopped' overridden: it was running"
    assert [(f.rule, f.host, f.refusal) for f in ov.forced] == [
        ("browse-switch-only-stopped", "mdi-k2", "running: X")
    ]
    # Named, but absolute: still refused.
    with pytest.raises(InterlockRefused) as e:
        ov.refuse("sb-y1", "purge-only-on-backup-volume", "on the main side", "forced")
    assert e.value.rule == "purge-only-on-backup-volume"
    # Not named: refused.
    with pytest.raises(InterlockRefused):
        ov.refuse("cp-01", "insync-direction-only-while-stopped", "running", "forced")
    assert len(ov.forced) == 1


# -- the workflow's check and its records -------------------------------------------------
def test_override_problem_and_records() -> None:
    assert override_problem([Override(rule="client-switch-needs-bridge", reason="fw")]) is None
    assert "needs a reason" in (
        override_problem([Override(rule="client-switch-needs-bridge", reason=" ")]) or ""
    )
    assert "cannot be overridden" in (
        override_problem([Override(rule="replication-only-from-main", reason="x")]) or ""
    )
    asked = [
        Override(rule="browse-switch-only-stopped", reason="hung"),
        Override(rule="client-switch-needs-bridge", reason="fw"),
        Override(rule="control-alongside-run", reason="urgent"),
    ]
    forced = [ForcedRule(rule="browse-switch-only-stopped", host="mdi-k2", refusal="running")]
    recs = records(asked, "ann", forced, "the switch run r1 is running")
    assert [(r.rule, r.operator, r.used, r.overrode) for r in recs] == [
        ("browse-switch-only-stopped", "ann", True, ["mdi-k2: running"]),
        ("client-switch-needs-bridge", "ann", False, []),
        ("control-alongside-run", "ann", True, ["the switch run r1 is running"]),
    ]
    assert recs[1].outcome == "not needed: the rule did not refuse"
    assert recs[0].sentence() == (
        "override of browse-switch-only-stopped by ann (hung): used: forced mdi-k2: running"
    )


# -- a control's report, from its committed history (no server) -------------------------------
CONTROL_HISTORY = Path(__file__).parents[1] / "histories" / "control-browse-switch-override.json"


async def test_the_report_of_a_control_lists_its_overrides() -> None:
    report = await report_of_file(str(CONTROL_HISTORY))
    assert report.workflow_type == "control" and report.initiator == "ann"
    assert report.title == "control browse-switch Y mdi-k2"
    assert report.result == "completed: 1 Browse component(s) point at Y"
    [o] = report.overrides
    assert (o.rule, o.operator, o.reason, o.used) == (
        "browse-switch-only-stopped",
        "ann",
        "test browse-switch-only-stopped",
        True,
    )
    md = render_markdown(report)
    assert "## Overrides" in md and "| browse-switch-only-stopped | ann |" in md
    html = render_html(report)
    assert '<section class="overrides"><h2>Overrides</h2>' in html
    assert "browse-switch-only-stopped" in html
