"""The console's web application (Starlette): its route table over the pages, one module
each (console/pages/), and the session middleware. Every page needs a login; every POST
needs the session's CSRF token and an operator of the pair; every action is sent as the
logged-in user (never a name from a form). What the pages share is console/site.py."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api.refusal import REFUSALS, Refused, refusal_of
from console.guard import BodyRefused, Guard
from console.pages import events, login, overview, pair, run, runs, start
from console.site import HERE, Site

Page = Callable[[Site, Request], Awaitable[Response]]

# (path, page, methods): the whole console.
ROUTES: tuple[tuple[str, Page, tuple[str, ...]], ...] = (
    ("/login", login.form, ("GET",)),
    ("/login", login.login, ("POST",)),
    ("/logout", login.logout, ("POST",)),
    ("/", overview.index, ("GET",)),
    ("/pairs/{pair}", pair.page, ("GET",)),
    ("/pairs/{pair}/run", run.page, ("GET",)),
    ("/pairs/{pair}/runs", runs.page, ("GET",)),
    ("/pairs/{pair}/runs/{run}/report.{fmt:str}", runs.report, ("GET",)),
    ("/pairs/{pair}/runs/{run}/history.json", runs.history, ("GET",)),
    ("/pairs/{pair}/start/{kind}", start.form, ("GET",)),
    ("/pairs/{pair}/start", start.start, ("POST",)),
    ("/pairs/{pair}/dry-run/{kind}", start.dry_run, ("GET",)),
    ("/pairs/{pair}/run/decide", run.decide, ("POST",)),
    ("/pairs/{pair}/run/{verb}", run.tick, ("POST",)),
    ("/pairs/{pair}/control", pair.control, ("POST",)),
    ("/pairs/{pair}/refresh", pair.refresh, ("POST",)),
    ("/pairs/{pair}/schedule/cancel", pair.cancel_scheduled, ("POST",)),
    ("/pairs/{pair}/control-approval", pair.control_approval, ("POST",)),
    ("/pairs/{pair}/events", events.events, ("GET",)),
    ("/api/pairs/{pair}/status", pair.status, ("GET",)),
    ("/api/pairs/{pair}/runs/current", run.current, ("GET",)),
    ("/api/pairs/{pair}/live", pair.live, ("GET",)),
)


def _endpoint(site: Site, page: Page) -> Callable[[Request], Awaitable[Response]]:
    # A plain function: Starlette treats any other callable as an ASGI app.
    async def endpoint(request: Request) -> Response:
        await site.waiting_of(request)  # the header's count of steps waiting on the person
        try:
            return await page(site, request)
        except REFUSALS as e:
            # An input out of every workflow's bounds (a page's parameter), or the server
            # refusing: a refusal with its status and sentence, never a 500.
            refusal = refusal_of(e)
            assert refusal is not None
            raise refusal from None

    endpoint.__name__ = f"{page.__module__}.{page.__name__}"
    return endpoint


def routes(site: Site) -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route(path, _endpoint(site, page), methods=list(methods)) for path, page, methods in ROUTES
    ]
    table.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    return table


def cookie_name(port: int | None, tls: bool) -> str:
    """The session cookie's name: this console's port in it (browsers send a host's
    cookies to all its ports, RFC 6265 8.5: two consoles on one host keep a cookie each),
    and `__Host-` over TLS (Secure, Path=/, no Domain: no other host name can set it)."""
    name = "amsm_console" if port is None else f"amsm_console_{port}"
    return f"__Host-{name}" if tls else name


def build_app(
    site: Site,
    session_key: str | None = None,
    tls: bool = False,
    port: int | None = None,
    allowed_hosts: frozenset[str] = frozenset(),
) -> Starlette:
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=session_key or secrets.token_urlsafe(32),
            session_cookie=cookie_name(port, tls),
            # The cookie's own life; the session ends 12 h after its login whatever the
            # cookie says (console/sessions.py).
            max_age=12 * 3600,
            path="/",
            same_site="strict",
            https_only=tls,
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await site.hub.close()

    return Console(
        routes=routes(site),
        middleware=middleware,
        exception_handlers={Refused: site.refused, BodyRefused: body_refused},
        lifespan=lifespan,
        allowed_hosts=allowed_hosts,
    )


class Console(Starlette):
    """The console's application: Starlette's, inside the Guard (console/guard.py), so
    the Host is checked and the body bounded before anything, and every answer carries
    the security headers, Starlette's own 500 page too."""

    def __init__(self, *args: Any, allowed_hosts: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_hosts = allowed_hosts

    def build_middleware_stack(self) -> ASGIApp:
        return Guard(super().build_middleware_stack(), allowed_hosts=self.allowed_hosts)


async def body_refused(request: Request, exc: Exception) -> Response:
    """A body over its bound, or too slow (console/guard.py), found as a page read it."""
    assert isinstance(exc, BodyRefused)
    return PlainTextResponse(exc.message + "\n", exc.status, headers={"Connection": "close"})
