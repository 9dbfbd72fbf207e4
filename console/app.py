"""The console's web application (Starlette): its pages, its buttons, its JSON and its
live stream. Every page needs a login; every POST needs the session's CSRF token and an
operator of the pair; every action is sent as the logged-in user (never a name from a
form)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from temporalio.converter import PayloadCodec
from temporalio.service import RPCError

from api.readiness import readiness_line
from api.refusal import RefusalKind, Refused, refusal_of
from api.report import history_of_run, report_of_run
from api.runs import list_runs
from console import actions, gates, views
from console.accounts import Account, Role
from console.auth import CSRF_FIELD, Gate, LoginThrottled, csrf_ok, csrf_token
from console.pairs import Hub, Snapshot, show_json, status_json
from inventory.models import Inventory, Side, other
from records.report_render import render_html, render_markdown

HERE = Path(__file__).parent
# Where each stream puts its session's form token into the live part drawn once for all.
CSRF_SLOT = "csrf-slot-" + secrets.token_hex(8)
KEEPALIVE_SECONDS = 15.0


# The HTTP status of each kind of refusal (the CLI maps the same kinds to exit codes).
HTTP_STATUS: dict[RefusalKind, int] = {
    "usage": 400,
    "refused": 400,
    "not-found": 404,
    "forbidden": 403,
    "login": 401,
}


class Console:
    def __init__(self, hub: Hub, gate: Gate, codec: PayloadCodec | None = None) -> None:
        self.hub, self.gate, self.codec = hub, gate, codec
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(stage=views.stage, expected=gates.expected, quote=quote)
        self._drawn: dict[tuple[str, str, str], tuple[int, str]] = {}

    # -- who -------------------------------------------------------------------------------------
    def who(self, request: Request) -> Account:
        account = self.gate.user(request)
        if account is None:
            raise Refused("log in first", "login")
        return account

    def pair_of(self, request: Request, account: Account) -> tuple[Inventory, Role]:
        pair = request.path_params["pair"]
        inv = self.hub.inventory(pair)
        role = self.gate.role(account, inv) if inv else None
        if inv is None or role is None:
            # Unknown and not-yours look the same: no pair names leak to strangers.
            raise Refused(f"no pair {pair!r} for {account.name}", "not-found")
        return inv, role

    def acting(self, request: Request, form: Any) -> tuple[Account, Inventory]:
        """The operator behind a POST: logged in, with the session's CSRF token, and an
        operator of the pair."""
        account = self.who(request)
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            raise Refused(
                "refused: the form carries no valid CSRF token (reload the page and try again)",
                "forbidden",
            )
        inv, role = self.pair_of(request, account)
        if role != "operator":
            raise Refused(
                f"refused: {account.name} is a viewer of pair {inv.pair}: viewers see "
                "everything and act on nothing (the inventory's `operators:` act)",
                "forbidden",
            )
        return account, inv

    # -- drawing ---------------------------------------------------------------------------------
    def render(
        self, template: str, request: Request, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        flash = request.session.pop("flash", None) if "session" in request.scope else None
        html = self.env.get_template(template).render(
            request=request, csrf=csrf_token(request), flash=flash, **ctx
        )
        return HTMLResponse(html, status_code=status)

    def pair_context(self, inv: Inventory, role: Role, snap: Snapshot) -> dict[str, Any]:
        c = snap.checklist
        busy = c is not None and c.state in views.LIVE_STATES
        st = snap.status
        mode = st.derived if st else None
        return {
            "inv": inv,
            "pair": inv.pair,
            "can_act": role == "operator",
            "role": role,
            "snap": snap,
            "st": st,
            "mode": mode,
            "strips": views.strips(st),
            "starts": views.starts(st, busy, snap.fences),
            "busy": busy,
            "checklist": c,
            "pending": views.pending_by_host(c),
            "overridable": views.overridable(),
            "readiness": (
                readiness_line(snap.readiness, st, datetime.now(UTC)) if snap.readiness else None
            ),
            "ready": snap.readiness.last.ready if snap.readiness and snap.readiness.last else None,
        }

    async def snapshot(self, pair: str) -> Snapshot:
        """The pair as last read; read now when no browser keeps its poller running."""
        live = self.hub.pairs[pair]
        if live.snapshot.version == 0 or not live.following:
            return await self.hub.refresh(pair)
        return live.snapshot

    def drawn(self, inv: Inventory, role: Role, view: str, snap: Snapshot) -> str:
        """The live part of a page as of the snapshot's version, drawn once for every
        browser of that pair, view and role (each stream puts its own form token in)."""
        key = (inv.pair, view, role)
        cached = self._drawn.get(key)
        if cached is not None and cached[0] == snap.version:
            return cached[1]
        html = self.env.get_template(f"_{view}.html").render(
            csrf=CSRF_SLOT, **self.pair_context(inv, role, snap)
        )
        self._drawn[key] = (snap.version, html)
        return html

    # -- pages -----------------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        return self.render("login.html", request)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            raise Refused(
                "refused: the login form carries no valid CSRF token (reload it)", "forbidden"
            )
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            address = self.gate.address(request)  # behind a trusted proxy, the client's
            account = await asyncio.to_thread(self.gate.login, name, password, address)
        except LoginThrottled as e:
            return self.render("login.html", request, 429, error=str(e), name=name)
        if account is None:
            return self.render(
                "login.html", request, 401, error="wrong user name or password", name=name
            )
        request.session.clear()  # a new session at every login (no fixation)
        request.session["user"] = account.name
        csrf_token(request)
        return RedirectResponse("/", 303)

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if csrf_ok(request, form.get(CSRF_FIELD)):
            request.session.clear()
        return RedirectResponse("/login", 303)

    async def index(self, request: Request) -> Response:
        account = self.who(request)
        rows = []
        for name, live in self.hub.pairs.items():
            role = self.gate.role(account, live.inv)
            if role is None:
                continue
            snap = await self.snapshot(name)
            rows.append({"pair": name, "role": role, **self.pair_context(live.inv, role, snap)})
        return self.render("index.html", request, user=account, rows=rows)

    async def pair_page(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        snap = await self.snapshot(inv.pair)
        return self.render(
            "pair.html", request, user=account, view="pair", **self.pair_context(inv, role, snap)
        )

    async def run_page(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        snap = await self.snapshot(inv.pair)
        return self.render(
            "run.html", request, user=account, view="run", **self.pair_context(inv, role, snap)
        )

    async def runs_page(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        rows = await list_runs(self.hub.client, inv, limit=50)
        return self.render("runs.html", request, user=account, pair=inv.pair, rows=rows, role=role)

    async def start_form(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        kind = request.path_params["kind"]
        asked = request.query_params.get("side", "").upper()
        if asked not in ("X", "Y"):
            raise Refused(f"side {asked!r}: X or Y", "usage")
        side: Side = "X" if asked == "X" else "Y"
        snap = await self.snapshot(inv.pair)
        start = next(
            (
                s
                for s in views.starts(snap.status, False, snap.fences)
                if s.kind == kind and s.side == side and s.form and s.offered
            ),
            None,
        )
        if start is None:
            raise Refused(
                f"{kind} to {side} needs no form, or the pair's mode allows none", "usage"
            )
        on = other(side) if start.hosts else side  # pilots: on the side being left
        candidates = [c for c in (snap.status.clients if snap.status else []) if c.side == on]
        return self.render(
            "start.html",
            request,
            user=account,
            pair=inv.pair,
            role=role,
            can_act=role == "operator",
            start=start,
            candidates=candidates,
            when=snap.status_when or (snap.status.read_at if snap.status else ""),
        )

    async def dry_run_page(self, request: Request) -> Response:
        """A start's dry run (a read: operators and viewers alike, as the CLI lets them)."""
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        form = {k: v for k, v in request.query_params.items()}
        form["kind"] = request.path_params["kind"]
        form["pilots"] = " ".join(request.query_params.getlist("pilots"))
        result = await actions.dry_run(self.hub.client, inv, account.name, form)
        refused = {s.id: s.refused for s in result.steps if s.refused}
        return self.render(
            "dry-run.html",
            request,
            user=account,
            pair=inv.pair,
            role=role,
            result=result,
            by_id={s.id: s for s in result.steps},
            refused=refused,
        )

    # -- actions ---------------------------------------------------------------------------------
    async def _act(self, request: Request, where: str, do: Any) -> Response:
        form = await request.form()
        account, inv = self.acting(request, form)
        try:
            said = await do(account, inv, form)
            request.session["flash"] = {"kind": "ok", "text": said}
        except (Refused, ValidationError, RPCError) as e:
            # A refusal of the API, a bound every workflow input keeps (as for the CLI),
            # the server busy or the run closing as it was asked: one sentence.
            refusal = refusal_of(e)
            assert refusal is not None
            request.session["flash"] = {"kind": "error", "text": refusal.message}
        await self.hub.refresh(inv.pair, status=False)
        return RedirectResponse(f"/pairs/{quote(inv.pair)}/{where}", 303)

    async def start(self, request: Request) -> Response:
        async def do(account: Account, inv: Inventory, form: Any) -> str:
            data = dict(form)
            data["pilots"] = " ".join(str(p) for p in form.getlist("pilots"))
            run_id = await actions.start(self.hub.client, inv, account.name, data)
            return f"started {form.get('kind')} (run {run_id}) as {account.name}"

        return await self._act(request, "run", do)

    async def tick(self, request: Request) -> Response:
        verb = request.path_params["verb"]

        async def do(account: Account, inv: Inventory, form: Any) -> str:
            snap = self.hub.pairs[inv.pair].snapshot
            return await actions.tick(
                self.hub.client,
                inv,
                account.name,
                verb,
                str(form.get("step", "")),
                str(form.get("note", "")),
                typed=str(form.get("typed", "")),
                status=snap.status,
                clients=[str(c) for c in form.getlist("clients")] or None,
                reading=snap.reading_counts,
            )

        if verb not in ("confirm", "approve"):
            raise Refused(f"no such action {verb!r}", "not-found")
        return await self._act(request, "run", do)

    async def decide(self, request: Request) -> Response:
        async def do(account: Account, inv: Inventory, form: Any) -> str:
            return await actions.decide(
                self.hub.client,
                inv,
                account.name,
                str(form.get("action", "")),
                str(form.get("step", "")),
                str(form.get("reason", "")),
                str(form.get("client", "")) or None,
            )

        return await self._act(request, "run", do)

    async def control(self, request: Request) -> Response:
        async def do(account: Account, inv: Inventory, form: Any) -> str:
            name, _, side = str(form.get("control", "")).partition(":")
            family = name.split("-")[0]
            hosts = [str(h) for h in form.getlist(f"hosts-{family}")]
            if name == "clients-switch" or (name == "reboot" and not hosts):
                one = str(form.get("host") or request.query_params.get("host") or "")
                hosts = [one] if one else hosts
            return await actions.control(
                self.hub.client,
                inv,
                account.name,
                name,
                side or None,
                hosts,
                [str(r) for r in form.getlist("override")],
                str(form.get("reason", "")),
            )

        return await self._act(request, "", do)

    async def refresh(self, request: Request) -> Response:
        async def do(account: Account, inv: Inventory, form: Any) -> str:
            snap = await self.hub.refresh(inv.pair, fresh=True)
            return snap.status_when or "read"

        return await self._act(request, "", do)

    # -- JSON, reports, histories ----------------------------------------------------------------
    async def api_status(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        return JSONResponse(
            await status_json(self.hub.client, inv, account.name, act=role == "operator")
        )

    async def api_current(self, request: Request) -> Response:
        account = self.who(request)
        inv, _ = self.pair_of(request, account)
        return JSONResponse(await show_json(self.hub.client, inv, "current"))

    async def api_live(self, request: Request) -> Response:
        """The pair's live subscription: how many browsers share its one poller."""
        account = self.who(request)
        inv, _ = self.pair_of(request, account)
        live = self.hub.pairs[inv.pair]
        running = live.following
        return JSONResponse(
            {
                "pair": inv.pair,
                "subscribers": len(live.subscribers),
                "pollers": int(running),
                "reads": live.reads,
                "queries": live.queries,
                "version": live.snapshot.version,
            }
        )

    async def report(self, request: Request) -> Response:
        account = self.who(request)
        inv, _ = self.pair_of(request, account)
        run, fmt = request.path_params["run"], request.path_params["fmt"]
        rep = await report_of_run(self.hub.client, inv, run, self.codec)
        if fmt == "html":
            return HTMLResponse(render_html(rep))
        return PlainTextResponse(render_markdown(rep), media_type="text/markdown; charset=utf-8")

    async def history(self, request: Request) -> Response:
        account = self.who(request)
        inv, _ = self.pair_of(request, account)
        history = await history_of_run(self.hub.client, inv, request.path_params["run"])
        name = f"{history.workflow_id}-{history.run_id}.json"
        return Response(
            history.to_json(),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # -- live ------------------------------------------------------------------------------------
    async def events(self, request: Request) -> Response:
        account = self.who(request)
        inv, role = self.pair_of(request, account)
        view = "run" if request.query_params.get("view") == "run" else "pair"
        token = csrf_token(request)
        pair = inv.pair
        wake = self.hub.subscribe(pair)

        async def stream() -> AsyncIterator[str]:
            shown = -1
            try:
                yield "retry: 1000\n\n"
                while True:
                    wake.clear()
                    snap = self.hub.pairs[pair].snapshot
                    if snap.version != shown and snap.version > 0:
                        shown = snap.version
                        html = self.drawn(inv, role, view, snap).replace(CSRF_SLOT, token)
                        data = json.dumps({"version": shown, "html": html})
                        yield f"event: update\ndata: {data}\n\n"
                    try:
                        await asyncio.wait_for(wake.wait(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                    if await request.is_disconnected():
                        return
            finally:
                self.hub.unsubscribe(pair, wake)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- refusals --------------------------------------------------------------------------------
    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        status, message = HTTP_STATUS[exc.kind], exc.message
        if request.url.path.startswith("/api/") or request.url.path.endswith("/events"):
            return JSONResponse({"error": message}, status_code=status)
        if status == 401 and request.method == "GET":
            return RedirectResponse("/login", 303)
        return self.render("refused.html", request, status, message=message)


def build_app(console: Console, session_key: str | None = None, tls: bool = False) -> Starlette:
    c = console
    routes = [
        Route("/login", c.login_page, methods=["GET"]),
        Route("/login", c.login, methods=["POST"]),
        Route("/logout", c.logout, methods=["POST"]),
        Route("/", c.index),
        Route("/pairs/{pair}", c.pair_page),
        Route("/pairs/{pair}/run", c.run_page),
        Route("/pairs/{pair}/runs", c.runs_page),
        Route("/pairs/{pair}/runs/{run}/report.{fmt:str}", c.report),
        Route("/pairs/{pair}/runs/{run}/history.json", c.history),
        Route("/pairs/{pair}/start/{kind}", c.start_form, methods=["GET"]),
        Route("/pairs/{pair}/start", c.start, methods=["POST"]),
        Route("/pairs/{pair}/dry-run/{kind}", c.dry_run_page, methods=["GET"]),
        Route("/pairs/{pair}/run/decide", c.decide, methods=["POST"]),
        Route("/pairs/{pair}/run/{verb}", c.tick, methods=["POST"]),
        Route("/pairs/{pair}/control", c.control, methods=["POST"]),
        Route("/pairs/{pair}/refresh", c.refresh, methods=["POST"]),
        Route("/pairs/{pair}/events", c.events),
        Route("/api/pairs/{pair}/status", c.api_status),
        Route("/api/pairs/{pair}/runs/current", c.api_current),
        Route("/api/pairs/{pair}/live", c.api_live),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=session_key or secrets.token_urlsafe(32),
            session_cookie="amsm_console",
            max_age=12 * 3600,  # a shift
            same_site="strict",
            https_only=tls,
        )
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await c.hub.close()

    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={Refused: c.refused},
        lifespan=lifespan,
    )
