"""`amsm survey DIR`: the read-only site survey. Starts the `pair-survey` workflow (its own
id, beside any run), shows the hosts read so far while it runs, then writes what the
workers brought back into DIR: one fact file per fact and host (DIR/facts/<fact>/
<host>.json, the project's facts format), survey.md and survey.json (the register's
verdicts), and inventory.json (the inventory without its ODBC strings, for the replay).
Exit 0 when no assumption is contradicted and every host was surveyed, 1 otherwise.

`amsm survey verify DIR`: replays every fact file of DIR through this amsm's facts (no
server, no device) and names each one that does not read as it did at the survey.

The CLI holds no device credentials: the workers scanned every answer for the secrets
they hold before sending it; the files are checked once more here for the shapes of a
credential (a file that shows one is not written, and the survey says so)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities.surveys.models import ANSWER_BOUND, HostSurvey, SurveyResult
from activities.surveys.replay import fact_file, read_survey_inventory, replay
from api.survey import host_answers, start_survey
from client.runs import result_with_progress
from client.session import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError, default_operator, emit
from inventory.models import Inventory, odbc_keywords
from workflows.survey import PairSurveyWorkflow

# What a credential looks like in a file: an ODBC or connection-string password, a
# private key. A file that shows one is not written (fail closed).
CREDENTIAL_SHAPES = (
    re.compile(r"(?i)\b(pwd|password)\s*="),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)
# Of a DSM's ODBC string, inventory.json keeps only these attributes: the driver (the
# register's odbc-driver entry judges it) and the database (the sqlserver profile's
# replicated database when sqlserver.database is not set); never its server, options or
# anything a site added. (The inventory refuses credentials in the string.)
ODBC_KEPT = ("driver", "database")


def add(sub: Any) -> None:
    s = sub.add_parser(
        "survey",
        usage="amsm survey [--json] DIR\n       amsm survey verify [--lab LABDIR] [--json] DIR",
        help="read every host, change nothing, and keep what each answered (amsm survey DIR; "
        "amsm survey verify DIR)",
        description="Read every host of the pair with every fact the drivers read, plus the "
        "survey's probes; write the answers as fact files into DIR with survey.md and "
        "survey.json (each site assumption verified, contradicted or not read). "
        "`amsm survey verify DIR` replays DIR's answers through this amsm's parsers.",
    )
    s.add_argument(
        "words", nargs="+", metavar="DIR", help="the survey's folder (after `verify`: to replay)"
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument(
        "--lab",
        metavar="LABDIR",
        help="verify: also read each host fact on the lab host of the same role and name "
        "where the lab answers otherwise than the site (a lab made by amsm lab init)",
    )
    s.set_defaults(handler=run, reads=True, local=verify, offline=is_verify, check=check_args)


def is_verify(args: argparse.Namespace) -> bool:
    return len(args.words) == 2


def check_args(args: argparse.Namespace) -> None:
    words = args.words
    if len(words) > 2 or (len(words) == 2 and words[0] != "verify"):
        raise CliError(
            f"amsm survey takes DIR or `verify DIR`, not {' '.join(words)!r}", EXIT_USAGE
        )
    folder = Path(words[-1])
    if args.lab is not None and not is_verify(args):
        raise CliError("--lab is for amsm survey verify DIR", EXIT_USAGE)
    if args.lab is not None and not (Path(args.lab) / "lab.db").is_file():
        raise CliError(f"{args.lab}: not a lab (no lab.db; amsm lab init makes one)", EXIT_USAGE)
    if is_verify(args):
        if not (folder / "facts").is_dir() or not (folder / "inventory.json").is_file():
            raise CliError(
                f"{folder}: not a survey folder (it needs facts/ and inventory.json, "
                "as amsm survey DIR writes them)",
                EXIT_USAGE,
            )
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CliError(
            f"{folder}: exists and is not an empty folder; give a new folder for the survey",
            EXIT_USAGE,
        )


async def run(temporal: Client, inv: Inventory, args: argparse.Namespace) -> int:
    check_args(args)
    folder = Path(args.words[-1])
    handle = await start_survey(temporal, inv, default_operator())
    result = await follow(handle, inv, quiet=args.json)
    answers = await host_answers(temporal, handle)
    hosts = [
        answers.get(h.host.lower())
        or HostSurvey(host=h.host, role=h.role, side=h.side, error=h.error or "no answers kept")
        for h in result.hosts
    ]
    summary = write_survey(folder, inv, result, hosts)
    emit(args, summary, render(summary, folder))
    return EXIT_OK if summary["ok"] else EXIT_FAIL


async def follow(
    handle: WorkflowHandle[Any, SurveyResult], inv: Inventory, quiet: bool
) -> SurveyResult:
    """The result; meanwhile `hosts read / all` on stderr, as `amsm check` shows it."""

    async def progress() -> str | None:
        try:
            p = await handle.query(PairSurveyWorkflow.progress)
        except Exception:
            return None  # not started yet, or just ended: the next poll says
        return f"surveying pair {inv.pair}: {p.done}/{p.total} hosts read" if p.total else None

    result: SurveyResult = await result_with_progress(
        handle,
        progress,
        lambda r: f"surveying pair {inv.pair}: {len(r.hosts)}/{len(r.hosts)} hosts read",
        f"the survey of pair {inv.pair}",
        quiet,
    )
    return result


# -- writing DIR ----------------------------------------------------------------------------
def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def site_inventory(inv: Inventory) -> dict[str, Any]:
    """The inventory as the replay needs it; of each DSM's ODBC string only its Driver=
    and Database= (ODBC_KEPT), so that it still reads as an inventory."""
    data = inv.model_dump(mode="json")
    for side in data["sides"].values():
        kept = [
            text
            for key, _, text in odbc_keywords(side["dsm"]["odbc"])
            if key.casefold() in ODBC_KEPT
        ]
        side["dsm"]["odbc"] = ";".join(t.strip() for t in kept)
    return data


def credential_shape(text: str) -> str | None:
    for shape in CREDENTIAL_SHAPES:
        if shape.search(text):
            return f"it shows a credential's shape ({shape.pattern})"
    return None


def write_survey(
    folder: Path, inv: Inventory, result: SurveyResult, hosts: list[HostSurvey]
) -> dict[str, Any]:
    written: list[str] = []
    not_written: list[dict[str, str]] = []
    withheld: list[str] = []
    truncated: list[str] = []

    def put(rel: str, text: str) -> None:
        why = credential_shape(text)
        if why is not None:
            not_written.append({"file": rel, "why": why})
            return
        path = folder / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise CliError(f"{path}: cannot write it ({e.strerror or e})") from None
        written.append(rel)

    for h in hosts:
        for r in h.facts:
            name = safe_name(h.host) + (f"--{safe_name(r.variant)}" if r.variant else "")
            rel = f"facts/{r.fact}/{name}.json"
            if r.withheld:
                withheld.append(rel)
                not_written.append({"file": rel, "why": r.withheld})
                continue
            if r.truncated:
                truncated.append(rel)
            put(rel, json.dumps(fact_file(r, h), indent=2, ensure_ascii=False) + "\n")
    put("inventory.json", json.dumps(site_inventory(inv), indent=2) + "\n")
    unsurveyed = [h for h in result.hosts if h.error]
    assumptions = [a for h in hosts for a in h.assumptions]
    summary: dict[str, Any] = {
        "pair": inv.pair,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ok": not any(a.verdict == "contradicted" for a in assumptions)
        and not unsurveyed
        and not not_written,
        "hosts": [
            {**s.model_dump(mode="json"), **header(h)}
            for s, h in zip(result.hosts, hosts, strict=True)
        ],
        "assumptions": [a.model_dump(mode="json") for a in assumptions],
        "counts": {
            v: sum(1 for a in assumptions if a.verdict == v)
            for v in ("verified", "contradicted", "could not be read")
        },
        "answer_bound": ANSWER_BOUND,
        "truncated": truncated,
        "not_written": not_written,
        "facts": len([w for w in written if w.startswith("facts/")]),
    }
    put("survey.json", json.dumps(summary, indent=2) + "\n")
    put("survey.md", render_markdown(summary))
    return summary


def header(h: HostSurvey) -> dict[str, Any]:
    return {k: getattr(h, k) for k in ("transport", "powershell", "os", "sql_version", "time")}


def render_markdown(s: dict[str, Any]) -> str:
    c = s["counts"]
    lines = [
        f"# Site survey of pair {s['pair']}, {s['time']}",
        "",
        f"{c['verified']} assumptions verified, {c['contradicted']} contradicted, "
        f"{c['could not be read']} could not be read; {len(s['hosts'])} hosts, "
        f"{s['facts']} fact files (each answer kept up to {s['answer_bound']} characters).",
    ]
    for verdict, title in (
        ("contradicted", "Contradicted: what to set"),
        ("could not be read", "Could not be read"),
        ("verified", "Verified"),
    ):
        found = [a for a in s["assumptions"] if a["verdict"] == verdict]
        if not found:
            continue
        lines += ["", f"## {title}", ""]
        for a in found:
            lines.append(f"- **{a['host']}** `{a['id']}`: {a['assumption']} ({a['source']})")
            lines.append(f"  - found: {a['evidence']}")
            if a.get("setting"):
                lines.append(f"  - set `{a['setting']}`: `{json.dumps(a['value'])}`")
            if a.get("fix") and verdict == "contradicted":
                lines.append(f"  - fix: {a['fix']}")
    lines += [
        "",
        "## Hosts",
        "",
        "| host | role | side | transport | PowerShell | OS | SQL Server | facts | raised | note |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for h in s["hosts"]:
        lines.append(
            f"| {h['host']} | {h['role']} | {h['side'] or ''} | {h['transport'] or ''} | "
            f"{h['powershell'] or ''} | {h['os'] or ''} | {h['sql_version'] or ''} | "
            f"{h['facts']} | {h['unread']} | {h['error'] or ''} |"
        )
    if s["truncated"]:
        lines += ["", "## Cut at the bound (not replayed by amsm survey verify)", ""]
        lines += [f"- {t}" for t in s["truncated"]]
    if s["not_written"]:
        lines += ["", "## Not written", ""]
        lines += [f"- {n['file']}: {n['why']}" for n in s["not_written"]]
    return "\n".join(lines) + "\n"


def render(s: dict[str, Any], folder: Path) -> str:
    c = s["counts"]
    lines = [
        f"pair {s['pair']}: {c['contradicted']} contradicted, {c['could not be read']} not read, "
        f"{c['verified']} verified; {s['facts']} fact files in {folder}"
    ]
    for a in s["assumptions"]:
        if a["verdict"] == "contradicted":
            lines.append(f"  {a['host']}  {a['id']}: {a['evidence']}")
            if a.get("setting"):
                lines.append(f"      set {a['setting']}: {json.dumps(a['value'])}")
            elif a.get("fix"):
                lines.append(f"      fix: {a['fix']}")
    for h in s["hosts"]:
        if h["error"]:
            lines.append(f"  {h['host']}  not surveyed: {h['error']}")
    for n in s["not_written"]:
        lines.append(f"  not written: {n['file']}: {n['why']}")
    lines.append(f"details: {folder / 'survey.md'}")
    return "\n".join(lines)


# -- amsm survey verify ----------------------------------------------------------------------
async def verify(args: argparse.Namespace) -> int:
    check_args(args)
    folder = Path(args.words[-1])
    inv = survey_inventory(folder)
    problems: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    files = sorted((folder / "facts").glob("*/*.json"))
    for path in files:
        rel = str(path.relative_to(folder))
        try:
            case = json.loads(path.read_text(encoding="utf-8"))
            problem = await replay(case, inv)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problem = f"not a fact file: {type(e).__name__}: {e}"
        if problem is None:
            continue
        into = skipped if problem.startswith("not replayed") else problems
        into.append({"file": rel, "problem": problem})
    data: dict[str, Any] = {
        "files": len(files),
        "agree": len(files) - len(problems) - len(skipped),
        "problems": problems,
        "skipped": skipped,
    }
    lines = [f"{folder}: {data['agree']} of {len(files)} fact files read as at the survey"]
    lines += [f"  {p['file']}: {p['problem']}" for p in [*problems, *skipped]]
    if args.lab:
        lab = lab_disagreements(args.lab, folder)
        data["lab"] = lab
        lines.append(f"the lab at {args.lab}: {len(lab)} fact files answered otherwise")
        lines += [f"  {d['file']}: {d['lab']}" for d in lab]
    emit(args, data, "\n".join(lines))
    # What the lab answers otherwise is for the lab's authors to read (a behaviour to
    # model, or only a host holding other things): said, not a failure of the answers.
    return EXIT_OK if not problems else EXIT_FAIL


def lab_disagreements(lab_dir: str, folder: Path) -> list[dict[str, str]]:
    """What the lab answers otherwise, from the lab's own program (`amsm lab
    survey-compare`): the CLI asks it as it asks Temporal, and imports nothing of the lab."""
    run = subprocess.run(
        [sys.executable, "-m", "amsm", "lab", "survey-compare", "--dir", lab_dir, str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    said = run.stderr.strip().splitlines()
    if run.returncode != 0:
        raise CliError(
            f"the lab at {lab_dir} could not compare: {said[-1] if said else run.returncode}",
            EXIT_FAIL,
        )
    try:
        found = json.loads(run.stdout)
    except ValueError:
        raise CliError(f"the lab at {lab_dir} answered no list of files", EXIT_FAIL) from None
    return [{"file": str(d["file"]), "lab": str(d["lab"])} for d in found]


def survey_inventory(folder: Path) -> Inventory:
    try:
        return read_survey_inventory(folder)
    except (OSError, ValueError) as e:
        raise CliError(f"{folder / 'inventory.json'}: cannot read it ({e})", EXIT_USAGE) from None
