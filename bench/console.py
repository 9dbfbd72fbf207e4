"""`python -m bench.console`: the web console's performance goals (issue 18) on a big pair.

    python -m bench.console [--devices 200] [--reboot 1] [--repeat 5] [--pages 1,5,20]
                            [--window 30] [--switch-rounds 3] [--name NAME]
                            [--out bench/results] [--keep DIR]

One embedded Temporal dev server, a lab of about --devices devices (a tenth of its
clients ingest servers, the rest editors), its worker and `amsm console`, and Debian's
Chromium driven by Playwright, logged in as the lab's `operator`. Measures:

1. the first page: from navigation to the pair page (and the run page of a waiting
   switch) fully shown (its load event and its first live update, whichever is later),
   and the server's own answer time (request sent to first byte), --repeat times each,
   each in a new browser context with no other browser open (the console then reads
   Temporal for the page itself);
2. a step change to N open pages (each N of --pages, each page its own context): a
   switch driven through the CLI's code path with N run pages open; from each
   confirm/approve being sent to every page's row leaving its waiting state;
3. CPU (user + system, from /proc/PID/stat) of the worker, the console and the
   Temporal server over --window seconds with a switch waiting at its first manual step
   and 0, 1 and the largest N of --pages run pages open, --repeat rounds interleaved;
4. the run page as a first page while switch-clients switches every client (its rows
   all drawn), --repeat times;
5. the same CPU over whole switches (start to completed, driven through the CLI's code
   path) with 0 and the largest N of --pages run pages open, --switch-rounds rounds
   interleaved.

Writes NAME.json and NAME.md to --out and prints the table. Exit status 0 when it ran
(goals missed are reported, not fatal), 1 when something failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout
from temporalio.client import Client

from api.runs import fetch_checklist, resolve_run
from bench.__main__ import machine
from bench.operator import amsm, switch
from bench.stack import (
    BenchError,
    ConsoleProcess,
    LabUnderTest,
    TemporalServer,
    WorkerProcess,
    cpu_seconds,
    infrastructure_devices,
)
from records.history import decode_payload
from tests.support.console import chromium
from workers.embedded import frontend_ready
from workflows.checklist import STEP_RECORDS
from workflows.models import StepState

GOALS = {"first_page_seconds": 1.0, "step_change_seconds": 1.0, "worker_cpu_increase": 0.10}
WAITING = ("pending", "awaiting-confirmation", "awaiting-approval")

# In every page, before its own script: when each step row first showed each status, and
# when the live part was first drawn by the stream (browser clock, ms since the epoch).
# A MutationObserver runs as the DOM changes, before the next paint.
SEEN_SCRIPT = """
(() => {
  const seen = {};
  window.__amsmSeen = seen;
  const note = () => {
    const t = Date.now();
    const run = document.querySelector('#run');
    document.querySelectorAll('tr.step').forEach((r) => {
      const k = (run ? run.dataset.run : '') + ':' + r.dataset.step + ':' + r.dataset.status;
      if (!(k in seen)) { seen[k] = t; }
    });
    const live = document.querySelector('[data-live]');
    if (live && live.dataset.version && !('live' in seen)) { seen.live = t; }
  };
  new MutationObserver(note).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-version'],
  });
})();
"""

# The first time the run's step's row showed a status past waiting, or null.
LEFT_WAITING = """
([run, step, waiting]) => {
  const seen = window.__amsmSeen || {};
  const prefix = run + ':' + step + ':';
  const ts = Object.keys(seen)
    .filter((k) => k.startsWith(prefix) && !waiting.includes(k.slice(prefix.length)))
    .map((k) => seen[k]);
  return ts.length ? Math.min(...ts) : null;
}
"""

# Navigation timing of the page, and its first live update, in ms from navigation start.
PAGE_TIMES = """
() => {
  const n = performance.getEntriesByType('navigation')[0];
  const live = (window.__amsmSeen || {}).live;
  return {
    server_ms: n.responseStart - n.requestStart,
    load_ms: n.loadEventEnd,
    live_ms: live ? live - performance.timeOrigin : null,
    bytes: n.transferSize,
  };
}
"""


def numbers(text: str) -> list[int]:
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pages takes numbers like 1,5,20: {text!r}") from None
    if not out or out[0] < 1 or out[-1] > 50:
        raise argparse.ArgumentTypeError("--pages takes numbers from 1 to 50")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.console", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--devices", type=int, default=200, help="devices of the lab's pair")
    p.add_argument("--reboot", type=float, default=1.0, help="lab reboot seconds")
    p.add_argument("--repeat", type=int, default=5, help="repetitions of each figure")
    p.add_argument("--pages", type=numbers, default=numbers("1,5,20"), help="open pages N")
    p.add_argument("--window", type=float, default=30.0, help="seconds of one CPU window")
    p.add_argument(
        "--switch-rounds",
        type=int,
        default=3,
        help="rounds of whole switches (one with no page, one with the most pages)",
    )
    p.add_argument("--name", default=None, help="result name (default: DATE-console)")
    p.add_argument("--out", default="bench/results", help="folder for NAME.json and NAME.md")
    p.add_argument("--keep", default=None, metavar="DIR", help="work in DIR and keep it")
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 20 <= args.devices <= 1000:
        p.error("--devices takes a number from 20 to 1000")
    if not 0.1 <= args.reboot <= 60:
        p.error("--reboot takes seconds from 0.1 to 60")
    if not 1 <= args.repeat <= 50:
        p.error("--repeat takes a number from 1 to 50")
    if not 1 <= args.window <= 600:
        p.error("--window takes seconds from 1 to 600")
    if not 1 <= args.switch_rounds <= 20:
        p.error("--switch-rounds takes a number from 1 to 20")


def spread(values: list[float], digits: int = 3) -> dict[str, Any]:
    """min / median / max of the repetitions, and the repetitions themselves."""
    if not values:
        return {"min": None, "median": None, "max": None, "runs": []}
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


class Browsers:
    """One Chromium; pages of the console logged in as the lab's operator, each in a
    context of its own (its own cookies, its own cache, its own event stream)."""

    def __init__(self, browser: Browser, console: ConsoleProcess, lab: LabUnderTest) -> None:
        self.browser, self.console, self.lab = browser, console, lab
        self.state: Any = None

    async def login(self) -> None:
        secret = (self.lab.dir / "secrets" / "console-operator").read_text().strip()
        context = await self.browser.new_context()
        page = await context.new_page()
        await page.goto(self.console.url + "/login")
        await page.get_by_label("User name").fill("operator")
        await page.get_by_label("Password").fill(secret)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(self.console.url + "/")
        self.state = await context.storage_state()
        await context.close()

    async def context(self) -> BrowserContext:
        context = await self.browser.new_context(storage_state=self.state)
        await context.add_init_script(SEEN_SCRIPT)
        return context

    @asynccontextmanager
    async def pages(self, n: int, path: str) -> AsyncIterator[list[Page]]:
        """N pages open at `path`, each drawn at least once by its live stream."""
        contexts = [await self.context() for _ in range(n)]
        try:
            pages = [await c.new_page() for c in contexts]
            await asyncio.gather(*(p.goto(self.console.url + path) for p in pages))
            await asyncio.gather(
                *(
                    p.wait_for_function("() => (window.__amsmSeen || {}).live", timeout=30_000)
                    for p in pages
                )
            )
            yield pages
        finally:
            await asyncio.gather(*(c.close() for c in contexts))


async def first_page(
    b: Browsers, path: str, repeat: int, during: str | None = None
) -> dict[str, Any]:
    shown: list[float] = []
    server: list[float] = []
    load: list[float] = []
    rows: list[float] = []
    size = 0
    for _ in range(repeat):
        async with b.pages(1, path) as (page,):
            t = await page.evaluate(PAGE_TIMES)
            rows.append(await page.locator("tr.client").count())
        shown.append(max(t["load_ms"], t["live_ms"]) / 1000)
        load.append(t["load_ms"] / 1000)
        server.append(t["server_ms"] / 1000)
        size = int(t["bytes"])
        await asyncio.sleep(0.5)  # the subscription stops with the last page; the next is cold
    return {
        "path": path,
        "during": during,
        "shown_seconds": spread(shown),
        "load_seconds": spread(load),
        "server_seconds": spread(server),
        "page_bytes": size,
        "client_rows": spread(rows, 0),
    }


async def first_page_switching(
    temporal: Client, lab: LabUnderTest, b: Browsers, pair: str, to: str, repeat: int
) -> dict[str, Any]:
    """The run page as a first page while a switch to `to` switches its clients (a row
    per client); the switch driven to its end meanwhile."""
    # Nothing is printed while the switch drives: `amsm` in process takes this process's
    # output for each of its commands (bench/operator.py).
    print(f"bench.console: first run page during switch-clients to {to} ...", file=sys.stderr)
    driving = asyncio.create_task(switch(temporal, lab, to, 600))
    deadline = time.monotonic() + 300
    while True:
        if driving.done():
            driving.result()  # its BenchError, if it failed
            raise BenchError("the switch ended before switch-clients was seen running")
        if time.monotonic() > deadline:
            raise BenchError("switch-clients did not start within 300 s")
        step = await switching_clients(temporal, lab)
        if step is not None and step.status == "running" and step.clients:
            break
        await asyncio.sleep(0.2)
    result = await first_page(b, f"/pairs/{pair}/run", repeat, during="switch-clients")
    step = await switching_clients(temporal, lab)
    result["still_switching_after"] = step is not None and step.status == "running"
    await driving
    return result


async def switching_clients(temporal: Client, lab: LabUnderTest) -> StepState | None:
    """The current run's switch-clients step, read as `amsm show` reads it (not through
    `amsm` in process: that redirects this process's output while the switch beside it
    drives the run through it too)."""
    c = await fetch_checklist(await resolve_run(temporal, lab.inventory, "current"))
    return next((x for x in c.steps if x.id == "switch-clients"), None)


async def switch_cpu(
    temporal: Client,
    lab: LabUnderTest,
    b: Browsers,
    procs: dict[str, Any],
    pair: str,
    most: int,
    rounds: int,
    to: str,
) -> tuple[dict[str, Any], str]:
    """CPU seconds of each process over whole switches (start to completed), with no page
    and with `most` run pages open, rounds interleaved; and the side the last one left
    main's other."""
    counts = [0, most]
    cpu: dict[int, dict[str, list[float]]] = {n: {k: [] for k in procs} for n in counts}
    took: dict[int, list[float]] = {n: [] for n in counts}
    for r in range(rounds):
        for n in counts:
            print(
                f"bench.console: whole switch {r + 1}/{rounds} to {to} with {n} page(s) ...",
                file=sys.stderr,
            )
            async with b.pages(n, f"/pairs/{pair}/run") if n else _none() as _:
                before = {k: cpu_seconds(p.pid) for k, p in procs.items()}
                drive = await switch(temporal, lab, to, 600)
                after = {k: cpu_seconds(p.pid) for k, p in procs.items()}
            for k in procs:
                now, was = after[k], before[k]
                if now is None or was is None:
                    raise BenchError(f"the {k} process ended during a switch")
                cpu[n][k].append(now - was)
            took[n].append(drive.seconds)
            to = "X" if to == "Y" else "Y"
    return {
        str(n): {
            **{f"{k}_cpu_seconds": spread(v, 2) for k, v in by.items()},
            "switch_seconds": spread(took[n], 1),
        }
        for n, by in cpu.items()
    }, to


async def step_changes(
    temporal: Client,
    lab: LabUnderTest,
    b: Browsers,
    pair: str,
    n: int,
    to: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A whole switch to `to` (run `run_id` if it is started) driven with N run pages
    open. Each manual step's change, from its confirm sent to the last page showing it;
    and each change the run made itself (an automated step done, a manual step or gate
    waiting), from the time the run recorded it (the workflow's clock) to the last page
    showing it."""
    took: dict[str, float] = {}
    async with b.pages(n, f"/pairs/{pair}/run") as pages:
        opened = datetime.now(UTC)

        async def ticked(run: str, step: str, sent: datetime) -> None:
            sent_ms = sent.timestamp() * 1000
            arg = [run, step, list(WAITING)]
            seen = await asyncio.gather(
                *(p.wait_for_function(LEFT_WAITING, arg=arg, timeout=30_000) for p in pages)
            )
            last = max([float(await h.json_value()) for h in seen])
            took[step] = (last - sent_ms) / 1000

        print(f"bench.console: switch to {to} with {n} page(s) open ...", file=sys.stderr)
        # The pages may open on the previous run; the new one replaces it once started.
        drive = await switch(temporal, lab, to, 600, ticked=ticked, run_id=run_id)
        await asyncio.gather(
            *(p.locator("#run[data-state='completed']").wait_for(timeout=30_000) for p in pages)
        )
        seen = [await p.evaluate("() => window.__amsmSeen") for p in pages]
    written = await records_written(temporal, lab, drive.run_id)
    recorded = recorded_changes(drive.run_id, drive.final["steps"], seen, opened, written)
    return {
        "pages": n,
        "by_step": {k: round(v, 3) for k, v in took.items()},
        "recorded": {k: round(v, 3) for k, v in recorded.items()},
    }


async def records_written(temporal: Client, lab: LabUnderTest, run_id: str) -> dict[str, float]:
    """When each change of the run's steps was on the server ('STEP:STATUS': epoch
    seconds, to the millisecond): the run writes every change of a step as a record in
    its memo (workflows/checklist.py STEP_RECORDS), one WorkflowPropertiesModified event
    per workflow task, at that task's completion; the first such event of each."""
    out: dict[str, float] = {}
    handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run_id)
    async for e in handle.fetch_history_events():
        if not e.HasField("workflow_properties_modified_event_attributes"):
            continue
        fields = e.workflow_properties_modified_event_attributes.upserted_memo.fields
        if STEP_RECORDS not in fields:
            continue
        at = e.event_time.ToDatetime().replace(tzinfo=UTC).timestamp()
        for rec in decode_payload(fields[STEP_RECORDS]):
            out.setdefault(f"{rec['step']}:{rec['status']}", at)
    return out


def recorded_changes(
    run: str,
    steps: list[dict[str, Any]],
    seen: list[dict[str, float]],
    since: datetime,
    written: dict[str, float],
) -> dict[str, float]:
    """Per change the run made after `since` ('STEP:STATUS': a step done, a manual step
    or gate waiting): seconds from the moment it was on the server (`written`, from the
    run's records) to the last page first showing it; a change some page never showed
    (two within one read) or with no record is left out."""
    out: dict[str, float] = {}
    for s in steps:
        marks = ["done"]
        if s["kind"] in ("manual", "gate"):
            marks.append("awaiting-approval" if s["kind"] == "gate" else "awaiting-confirmation")
        for status in marks:
            change, key = f"{s['id']}:{status}", f"{run}:{s['id']}:{status}"
            at = written.get(change)
            if at is None or at < since.timestamp() or any(key not in page for page in seen):
                continue
            out[change] = max(page[key] for page in seen) / 1000 - at
    return out


async def waiting_switch(temporal: Client, lab: LabUnderTest, to: str) -> str:
    """A switch to `to` started and left waiting at its first manual step."""
    out = await amsm(temporal, lab, "start", "switch", "--to", to, "--operator", "bench", "--json")
    run_id = str(json.loads(out)["run_id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = json.loads(await amsm(temporal, lab, "show", run_id, "--json"))
        if any(s["status"] == "awaiting-confirmation" for s in shown["steps"]):
            return run_id
        await asyncio.sleep(0.2)
    raise BenchError(f"run {run_id} did not reach a manual step within 120 s")


async def cpu_windows(
    procs: dict[str, Any], b: Browsers, pair: str, counts: list[int], window: float, repeat: int
) -> dict[str, Any]:
    """CPU seconds per second of each process over `window`, per count of open pages."""
    runs: dict[int, dict[str, list[float]]] = {n: {k: [] for k in procs} for n in counts}
    # What the console's poller asked: Temporal calls, and queries the worker answered.
    asked: dict[int, dict[str, list[float]]] = {n: {"reads": [], "queries": []} for n in counts}
    following: dict[int, list[float]] = {n: [] for n in counts}  # subscriptions at its end
    watcher = await b.context()
    for r in range(repeat):
        for n in counts:
            print(
                f"bench.console: CPU round {r + 1}/{repeat}, {n} page(s), {window:g} s ...",
                file=sys.stderr,
            )
            async with b.pages(n, f"/pairs/{pair}/run") if n else _none() as _:
                await asyncio.sleep(2)  # the streams settle
                before = {k: cpu_seconds(p.pid) for k, p in procs.items()}
                live0 = await live_counts(watcher, b.console.url, pair)
                t0 = time.monotonic()
                await asyncio.sleep(window)
                elapsed = time.monotonic() - t0
                live1 = await live_counts(watcher, b.console.url, pair)
                for k in ("reads", "queries"):
                    asked[n][k].append((live1[k] - live0[k]) / elapsed * 60)
                following[n].append(live1["pollers"])
                for k, p in procs.items():
                    now, was = cpu_seconds(p.pid), before[k]
                    if now is None or was is None:
                        raise BenchError(f"the {k} process ended during the CPU window")
                    runs[n][k].append((now - was) / elapsed * 100)
    await watcher.close()
    return {
        str(n): {
            **{k: spread(v, 2) for k, v in by.items()},
            **{f"{k}_per_minute": spread(v, 1) for k, v in asked[n].items()},
            "subscriptions": spread(following[n], 0),
        }
        for n, by in runs.items()
    }


async def live_counts(context: BrowserContext, url: str, pair: str) -> dict[str, int]:
    """The console's own counters of the pair's subscription (GET /api/pairs/<pair>/live)."""
    r = await context.request.get(f"{url}/api/pairs/{pair}/live")
    if not r.ok:
        raise BenchError(f"GET /api/pairs/{pair}/live answered {r.status}: {await r.text()}")
    data = await r.json()
    return {k: int(data[k]) for k in ("reads", "queries", "pollers")}


@asynccontextmanager
async def _none() -> AsyncIterator[list[Page]]:
    yield []


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def judge(goal: str, figure: str, value: float | None, limit: float) -> None:
        met = None if value is None else value <= limit
        out.append({"goal": goal, "figure": figure, "value": value, "limit": limit, "met": met})

    waiting = [f for f in result["first_page"] if not f.get("during")]
    first = max(f["shown_seconds"]["median"] for f in waiting)
    judge(
        f"first page, {result['devices']} devices",
        "median s, navigation to shown (the slower of pair and run page)",
        first,
        GOALS["first_page_seconds"],
    )
    for f in result["first_page"]:
        if f.get("during"):
            judge(
                f"first page, the run page during {f['during']}",
                f"median s, navigation to shown ({f['client_rows']['median']:.0f} client rows)",
                f["shown_seconds"]["median"],
                GOALS["first_page_seconds"],
            )
    for s in result["step_change"]:
        vals = list(s["by_step"].values())
        judge(
            f"step change to {s['pages']} open page(s)",
            "max s over the run's confirms, sent to shown on every page",
            round(max(vals), 3) if vals else None,
            GOALS["step_change_seconds"],
        )
        vals = list(s.get("recorded", {}).values())
        judge(
            f"the run's own changes to {s['pages']} open page(s)",
            "max s, recorded by the run to shown on every page",
            round(max(vals), 3) if vals else None,
            GOALS["step_change_seconds"],
        )

    def increase(by_pages: dict[str, Any], key: str) -> tuple[str, float | None]:
        """The most pages measured, and the median's increase with them over none."""
        most = str(max(int(k) for k in by_pages))
        none, many = by_pages["0"][key]["median"], by_pages[most][key]["median"]
        return most, round(many / none - 1, 3) if none else None

    most, more = increase(result["cpu"], "worker")
    judge(
        f"worker CPU with {most} pages open vs none",
        "median % of a core, increase over none",
        more,
        GOALS["worker_cpu_increase"],
    )
    if result.get("switch_cpu"):
        most, more = increase(result["switch_cpu"], "worker_cpu_seconds")
        judge(
            f"worker CPU over a whole switch with {most} pages open vs none",
            "median CPU s per switch, increase over none",
            more,
            GOALS["worker_cpu_increase"],
        )
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from workers.worker import Connection, connect

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="amsm-bench-console-"))
    root.mkdir(parents=True, exist_ok=True)
    server = TemporalServer(root)
    server.start()
    await frontend_ready(server.address)
    started = datetime.now(UTC)
    lab = worker = console = None
    try:
        clients = max(2, args.devices - infrastructure_devices(root, args.reboot))
        lab = LabUnderTest(root, "console", clients, args.reboot, ingest=clients // 10)
        worker = WorkerProcess(lab, server.address)
        console = ConsoleProcess(lab, server.address)
        print(
            f"bench.console: a lab of {lab.devices + 2} devices ({clients} clients) ...",
            file=sys.stderr,
        )
        lab.start()
        worker.start()
        console.start()
        temporal = await connect(Connection(address=server.address))
        pair = lab.inventory.pair
        # The first reading of the pair's watch, so the pages show a status from the start.
        await amsm(temporal, lab, "status", "--json")
        async with chromium() as browser:
            b = Browsers(browser, console, lab)
            await b.login()
            result_first = [await first_page(b, f"/pairs/{pair}", args.repeat)]
            waiting: str | None = await waiting_switch(temporal, lab, "Y")
            result_first.append(await first_page(b, f"/pairs/{pair}/run", args.repeat))
            assert worker.proc and console.proc and server.proc
            procs = {"worker": worker.proc, "console": console.proc, "temporal": server.proc}
            counts = sorted({0, 1, max(args.pages)})
            cpu = await cpu_windows(procs, b, pair, counts, args.window, args.repeat)
            worker.check()
            # The waiting switch goes on to its end with the first N, then back and forth.
            changes = []
            to, next_run = "Y", waiting
            for n in args.pages:
                changes.append(await step_changes(temporal, lab, b, pair, n, to, next_run))
                to, next_run = ("X" if to == "Y" else "Y"), None
            result_first.append(await first_page_switching(temporal, lab, b, pair, to, args.repeat))
            to = "X" if to == "Y" else "Y"
            whole, to = await switch_cpu(
                temporal, lab, b, procs, pair, max(args.pages), args.switch_rounds, to
            )
            worker.check()
    finally:
        for p in (console, worker, lab):
            if p is not None:
                p.stop()
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "name": args.name,
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "devices": lab.devices + 2,
        "clients": clients,
        "reboot_seconds": args.reboot,
        "repeat": args.repeat,
        "window_seconds": args.window,
        "status_interval": lab.inventory.timing.status_interval,
        "first_page": result_first,
        "step_change": changes,
        "cpu": cpu,
        "switch_rounds": args.switch_rounds,
        "switch_cpu": whole,
    }
    result["goals"] = goals(result)
    return result


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Benchmark {result['name']}: the web console",
        "",
        f"{result['started_at']}; {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), "
        f"{m['memory_gb']} GB, Python {m['python']}; a pair of {result['devices']} devices "
        f"({result['clients']} clients), lab reboot {result['reboot_seconds']:g} s, the "
        f"watch reading every device every {result['status_interval']:g} s; embedded "
        "Temporal dev server (SQLite), lab, worker, `amsm console` and Chromium on this "
        f"machine; {result['repeat']} repetitions of each figure.",
        "",
        "| first page | shown s (min / median / max) | load event s | server s | bytes |",
        "|---|---:|---:|---:|---:|",
    ]

    def mmm(s: dict[str, Any], digits: int = 3) -> str:
        return f"{s['min']:.{digits}f} / {s['median']:.{digits}f} / {s['max']:.{digits}f}"

    for f in result["first_page"]:
        during = f" during {f['during']}" if f.get("during") else ""
        rows = f.get("client_rows") or {}
        rows_said = f", {rows['median']:.0f} client rows" if rows.get("median") else ""
        lines.append(
            f"| `{f['path']}`{during}{rows_said} | {mmm(f['shown_seconds'])} "
            f"| {mmm(f['load_seconds'])} | {mmm(f['server_seconds'])} | {f['page_bytes']} |"
        )
    lines += [
        "",
        "| open pages | confirms | confirm sent to shown on every page, s "
        "(min / median / max) | changes the run made | recorded to shown on every page, s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for s in result["step_change"]:
        sp, rec = spread(list(s["by_step"].values())), spread(list(s["recorded"].values()))
        lines.append(
            f"| {s['pages']} | {len(s['by_step'])} | {mmm(sp)} | {len(s['recorded'])} "
            f"| {mmm(rec)} |"
        )
    lines += [
        "",
        f"CPU over {result['window_seconds']:g} s windows, % of one core "
        "(min / median / max), a switch waiting at a manual step:",
        "",
        "| open pages | worker | console | Temporal | subscription's reads /min "
        "| worker queries /min |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, by in result["cpu"].items():
        lines.append(
            f"| {n} | {mmm(by['worker'], 1)} | {mmm(by['console'], 1)} "
            f"| {mmm(by['temporal'], 1)} | {mmm(by['reads_per_minute'], 1)} "
            f"| {mmm(by['queries_per_minute'], 1)} |"
        )
    whole = result.get("switch_cpu") or {}
    if whole:
        lines += [
            "",
            f"CPU seconds over a whole switch (start to completed), {result['switch_rounds']} "
            "round(s), min / median / max:",
            "",
            "| open pages | worker | console | Temporal | switch s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for n, by in whole.items():
            lines.append(
                f"| {n} | {mmm(by['worker_cpu_seconds'], 2)} | {mmm(by['console_cpu_seconds'], 2)} "
                f"| {mmm(by['temporal_cpu_seconds'], 2)} | {mmm(by['switch_seconds'], 1)} |"
            )
    lines += [
        "",
        "How: each page in a browser context of its own, logged in as the lab's `operator`. "
        "First page: a new context with no other page open on the pair (the console reads "
        "Temporal for the page), the browser's Navigation Timing (server = request sent to "
        "first byte; load = the load event) and the first live update drawn by the page's "
        "event stream (a MutationObserver's clock); shown = the later of the two. Step "
        "change: the switch driven through the CLI's code path (`amsm confirm` / `approve`, "
        "the lab's hands first), from the moment before the update is sent to the last "
        "page's row leaving its waiting state (the observer's clock; same machine clock). "
        "CPU: user + system time from /proc/PID/stat over each window, as % of one core, "
        "rounds interleaved (0, 1, most pages, then again), 2 s after the pages opened; "
        "the subscription's reads (describes and long polls of histories, which the Temporal "
        "server answers) and its queries (answered by the worker: the run's checklist after "
        "a workflow task of the run completed) are the console's own counters "
        "(`/api/pairs/PAIR/live`). Whole switches: the same CPU counters read before the "
        "start and after the run completed, no page and the most pages alternating.",
        "",
        "| goal | figure | value | limit | met |",
        "|---|---|---:|---:|---|",
    ]
    for g in result["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        value = "-" if g["value"] is None else f"{g['value']:.3f}"
        lines.append(f"| {g['goal']} | {g['figure']} | {value} | {g['limit']:g} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_args(p, args)
    if args.name is None:
        args.name = f"{datetime.now(UTC).strftime('%Y-%m-%d')}-console"
    try:
        result = asyncio.run(main_async(args))
    except BenchError as e:
        print(f"bench.console: {e}", file=sys.stderr)
        return 1
    except PlaywrightTimeout as e:
        where = (
            f"{args.keep}/console/console.log" if args.keep else "the console's log (--keep DIR)"
        )
        first = str(e).splitlines()[0]
        print(
            f"bench.console: a page did not show what it waited for ({first}); see {where}",
            file=sys.stderr,
        )
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / f"{args.name}.md").write_text(table)
    print(table)
    print(f"bench.console: wrote {out / (args.name + '.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
