"""The web console of a test: `amsm console` serving a lab's pair in a subprocess, and
Debian's Chromium driven by Playwright (never `playwright install`: `make chromium`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect
from temporalio.client import Client

from lab.hands import do_manual_step
from tests.support.lab import AMSM, Lab, free_port
from tests.support.worker import running_worker
from workers.worker import start_watch

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "console-shots"


@dataclass
class ConsoleServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def password(lab: Lab, account: str) -> str:
    return (lab.dir / "secrets" / f"console-{account}").read_text().strip()


@contextlib.asynccontextmanager
async def console_server(
    lab: Lab,
    *extra: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
) -> AsyncIterator[ConsoleServer]:
    """`amsm console` on `port` (a free one when None: a restart passes the same), with
    `env` added to the lab's environment and at most `nofile` open files when given."""

    def limit_files() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    port = port or free_port()
    log = lab.dir / f"console-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(AMSM), "console", "--listen", f"127.0.0.1:{port}", *extra],
            env={**lab.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limit_files if nofile is not None else None,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"amsm console exited {proc.returncode}: {log.read_text()}")
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"amsm console did not listen: {log.read_text()}"
                    ) from None
                await asyncio.sleep(0.1)
        scheme = "https" if "--cert" in extra else "http"
        yield ConsoleServer(f"{scheme}://127.0.0.1:{port}", proc, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in(browser: Browser, server: ConsoleServer, lab: Lab, account: str) -> Page:
    """A page of a new browser context (its own cookies), logged in as `account`."""
    context: BrowserContext = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.url + "/login")
    await page.get_by_label("User name").fill(account)
    await page.get_by_label("Password").fill(password(lab, account))
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(server.url + "/")
    return page


async def cancel_scheduled(
    browser: Browser, server: ConsoleServer, lab: Lab, schedule_id: str, why: str
) -> Page:
    """The pair page's Cancel of scheduled run `schedule_id`, by the lab's operator, for
    `why`; it answers that it cancelled it. The operator's page."""
    page = await logged_in(browser, server, lab, "operator")
    await page.goto(f"{server.url}/pairs/{lab.inventory.pair}")
    row = page.locator(f"#scheduled-{schedule_id}")
    await row.get_by_label(f"why cancel {schedule_id}").fill(why)
    await row.get_by_role("button", name="Cancel").click()
    await expect(page.locator("p.flash").first).to_contain_text(
        f"cancelled scheduled run {schedule_id}"
    )
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def csrf_of(page: Page) -> str:
    """The session's form token, as the page's own forms carry it."""
    return str(await page.locator("input[name=csrf]").first.get_attribute("value"))


async def gate_placeholder(row: Locator) -> str:
    """A gate row's "Type to approve" placeholder, once the console has read the counts
    for it (until then its input is disabled and says it is reading them)."""
    box = row.get_by_label("Type to approve")
    await expect(box).to_be_enabled(timeout=30_000)
    return str(await box.get_attribute("placeholder"))


def typed_for(placeholder: str) -> str:
    """What a gate's placeholder says to type ('type 120: the assets of ...')."""
    m = re.match(r"type (\S+):", placeholder)
    assert m, placeholder
    return m.group(1)


async def api(page: Page, path: str) -> Any:
    r = await page.request.get(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + path)
    assert r.ok, (r.status, await r.text())
    return await r.json()


@contextlib.asynccontextmanager
async def console_lab(temporal: Client, lab: Lab) -> AsyncIterator[tuple[ConsoleServer, Browser]]:
    """The lab's worker and status watch (as `amsm worker` runs them), its console, and a
    browser."""
    async with running_worker(temporal, lab):
        await start_watch(temporal, lab.inventory)
        async with console_server(lab) as server, chromium() as browser:
            yield server, browser


async def confirm_on_page(
    page: Page, lab: Lab, to: str, stop_allsync_on: str | None = None, move: tuple[str, ...] = ()
) -> list[str]:
    """Tick every manual step the run on the page waits for (the lab's hands first),
    ticking `move` at move-editors, until the run ends; the steps confirmed."""
    done: list[str] = []
    deadline = time.monotonic() + 120
    while await page.locator("#run-state").inner_text() in ("running", "awaiting-operator"):
        assert time.monotonic() < deadline, await page.locator("#run").inner_text()
        assert await page.locator("tr.step.failed").count() == 0, await page.content()
        row = page.locator("tr.step.awaiting-confirmation").first
        step_id = await row.get_attribute("data-step") if await row.count() else None
        if step_id is None or step_id in done:
            await asyncio.sleep(0.1)
            continue
        done.append(step_id)
        do_manual_step(lab.dir, step_id, to, stop_allsync_on)
        for host in move if step_id == "move-editors" else ():
            await row.get_by_label(host, exact=False).check()
        await row.get_by_role("button", name="Confirm").click()
        await page.wait_for_load_state()
        flash = page.locator(".flash")
        assert "error" not in str(await flash.get_attribute("class")), await flash.inner_text()
    return done


def http(
    url: str, cookie: str = "", form: dict[str, str] | None = None, source: str = ""
) -> tuple[int, Any, str]:
    """One plain-HTTP request without a browser (no redirect followed), from the local
    address `source` when given (127.0.0.2: another client): status, headers, body."""
    u = urllib.parse.urlsplit(url)
    conn = HTTPConnection(
        u.hostname or "", u.port, timeout=30, source_address=(source, 0) if source else None
    )
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn.request("POST" if form is not None else "GET", target, body, headers)
        r = conn.getresponse()
        return r.status, r.headers, r.read().decode()
    finally:
        conn.close()


def session_cookie(headers: Any, cookie: str = "") -> str:
    """The console's cookie as the response set it (or the one sent, when it set none):
    `amsm_console_PORT`, `__Host-` prefixed over TLS (console/app.py cookie_name)."""
    for value in headers.get_all("Set-Cookie") or []:
        if re.match(r"(__Host-)?amsm_console_\d+=", value):
            return value.split(";", 1)[0]
    return cookie


def form_login(url: str, name: str, secret: str, source: str = "") -> tuple[int, str, str]:
    """Log in through the form, as a browser does (its CSRF token, its cookie): the POST's
    status, the session cookie and the page."""
    status, headers, body = http(url + "/login", source=source)
    assert status == 200, (status, body)
    m = re.search(r'name="csrf" value="([^"]+)"', body)
    assert m, body
    cookie = session_cookie(headers)
    form = {"username": name, "password": secret, "csrf": m.group(1)}
    status, headers, body = http(url + "/login", cookie, form, source)
    return status, session_cookie(headers, cookie), body
