"""What every page of the console shares: who is asking (a login, a role on the pair, the
CSRF token of a POST), drawing a template, the pair's snapshot and its live part drawn
once for every browser, an action's answer as the next page's flash, and a refusal of
the operator API (api.refusal.Refused) as its HTTP status. The pages are modules of
console/pages/; console/app.py is their route table."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from temporalio.converter import PayloadCodec

from api.readiness import readiness_line
from api.refusal import REFUSALS, RefusalKind, Refused, refusal_of
from api.waiting import WaitingReads, waiting_for
from console import gates, views
from console.accounts import Account, Role
from console.auth import CSRF_FIELD, Gate, csrf_ok, csrf_token
from console.guard import MAX_BODY
from console.pairs import Hub, Snapshot
from inventory.models import Inventory
from workflows.break_glass import BREAK_GLASS
from workflows.view import approvals_line

HERE = Path(__file__).parent
# Where each stream puts its session's form token into the live part drawn once for all.
CSRF_SLOT = "csrf-slot-" + secrets.token_hex(8)

# The HTTP status of each kind of refusal (the CLI maps the same kinds to exit codes).
HTTP_STATUS: dict[RefusalKind, int] = {
    "usage": 400,
    "refused": 400,
    "not-found": 404,
    "forbidden": 403,
    "login": 401,
}

# What a button does, as the operator behind the POST: its answer in a sentence.
Action = Callable[[Account, Inventory, Any], Awaitable[str]]


# Bounds of a form: no file, a few fields, none longer than the body's bound (the Guard
# refuses a longer body, and multipart ones, before any page; console/guard.py).
MAX_FIELDS = 200


async def read_form(request: Request) -> Any:
    """The posted form, bounded (Starlette's Request.form limits)."""
    return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY)


class DryRuns:
    """Dry runs from the console, each a short workflow that reads every device of the
    pair: at most one at a time per pair, and at most `per_person` per `window` seconds
    for each person (a page reloaded in a loop reads the devices a few times, not
    without end). The refusal's sentence, or None to go on."""

    def __init__(
        self, per_person: int = 10, window: float = 300.0, clock: Any = time.monotonic
    ) -> None:
        self.per_person, self.window, self.clock = per_person, window, clock
        self._running: set[str] = set()
        self._by_person: dict[str, deque[float]] = {}

    def begin(self, pair: str, person: str) -> str | None:
        now = self.clock()
        if pair in self._running:
            return (
                f"a dry run of pair {pair} is reading its devices now; try again when it "
                "ends (one at a time per pair)"
            )
        times = self._by_person.setdefault(person.lower(), deque(maxlen=self.per_person))
        if len(times) == self.per_person and now - times[0] < self.window:
            wait = self.window - (now - times[0])
            return (
                f"{person} ran {self.per_person} dry runs in {self.window / 60:.0f} minutes; "
                f"try again in {wait:.0f} s"
            )
        times.append(now)
        self._running.add(pair)
        return None

    def end(self, pair: str) -> None:
        self._running.discard(pair)


class Site:
    """The console's shared state (the pairs' hub, the login gate, the payload codec, the
    console's signing key, the templates) and what every page does with it."""

    def __init__(
        self,
        hub: Hub,
        gate: Gate,
        codec: PayloadCodec | None = None,
        console_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.hub, self.gate, self.codec = hub, gate, codec
        # The console's own key: it signs the acts of the person logged in
        # (docs/operators/signed-acts.md#the-console).
        self.console_key = console_key
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            stage=views.stage, expected=gates.expected, approvals=gates.approvals, quote=quote
        )
        self._drawn: dict[tuple[str, str, str], tuple[int, str]] = {}
        self.waiting = WaitingReads()
        self.dry_runs = DryRuns()

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

    async def waiting_of(self, request: Request) -> None:
        """The steps that wait on the logged-in person across the pairs they operate, for
        the header of the page about to be drawn (api/waiting.py, read at most every few
        seconds); not for the streams, the JSON and the reports, which draw no header."""
        path = request.url.path
        if request.method != "GET" or path.startswith(("/api/", "/static/")):
            return
        if path.endswith(("/events", ".json", ".md", ".html")):
            return
        account = self.gate.user(request)
        if account is None:
            return
        mine = [
            live.inv
            for live in self.hub.pairs.values()
            if self.gate.role(account, live.inv) == "operator"
        ]
        request.state.waiting = await waiting_for(
            self.hub.temporal, mine, account.name, self.waiting
        )

    # -- drawing ---------------------------------------------------------------------------------
    def render(
        self, template: str, request: Request, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        flash = request.session.pop("flash", None) if "session" in request.scope else None
        html = self.env.get_template(template).render(
            request=request,
            csrf=csrf_token(request),
            flash=flash,
            waiting=getattr(request.state, "waiting", None),
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def pair_context(self, inv: Inventory, role: Role, snap: Snapshot) -> dict[str, Any]:
        c = snap.checklist
        gate = snap.approvals.step(BREAK_GLASS) if snap.approvals is not None else None
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
            # A control's break-glass override waiting for other operators' approvals.
            "control_approvals": snap.approvals,
            "control_gate": gate,
            "control_approvals_line": approvals_line(gate) if gate is not None else None,
            "control_approvals_error": snap.approvals_error,
            "overridable": views.overridable(),
            # On a site with on-air windows every start goes through its form, which
            # offers the break-glass override of rule no-switch-in-blackout.
            "start_overrides": views.start_overridable(inv),
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

    async def act(self, request: Request, where: str, do: Action) -> Response:
        await self.gate.recheck(request)  # a directory login's groups, read again when due
        form = await read_form(request)
        account, inv = self.acting(request, form)
        try:
            said = await do(account, inv, form)
            request.session["flash"] = {"kind": "ok", "text": said}
        except REFUSALS as e:
            # A refusal of the API, a bound every workflow input keeps (as for the CLI),
            # the server busy or the run closing as it was asked: one sentence.
            refusal = refusal_of(e)
            assert refusal is not None
            request.session["flash"] = {"kind": "error", "text": refusal.message}
        await self.hub.refresh(inv.pair, status=False)
        return RedirectResponse(f"/pairs/{quote(inv.pair)}/{where}", 303)

    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        status, message = HTTP_STATUS[exc.kind], exc.message
        if request.url.path.startswith("/api/") or request.url.path.endswith("/events"):
            return JSONResponse({"error": message}, status_code=status)
        if status == 401 and request.method == "GET":
            return RedirectResponse("/login", 303)
        return self.render("refused.html", request, status, message=message)
