"""Logging in and out: a new session at every login (no fixation), the form's CSRF
token checked, a throttle on wrong passwords."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.refusal import Refused
from console.auth import CSRF_FIELD, LoginThrottled, csrf_ok, csrf_token
from console.directory import DirectoryDown, DirectoryRefused
from console.site import Site, read_form


async def form(site: Site, request: Request) -> Response:
    return site.render("login.html", request)


async def login(site: Site, request: Request) -> Response:
    posted = await read_form(request)
    if not csrf_ok(request, posted.get(CSRF_FIELD)):
        raise Refused(
            "refused: the login form carries no valid CSRF token (reload it)", "forbidden"
        )
    name, password = str(posted.get("username", "")), str(posted.get("password", ""))
    try:
        address = site.gate.address(request)  # behind a trusted proxy, the client's
        account = await asyncio.to_thread(site.gate.login, name, password, address)
    except LoginThrottled as e:
        return site.render("login.html", request, 429, error=str(e), name=name)
    except DirectoryRefused as e:  # in no mapped group, or the directory unreachable
        status = 503 if isinstance(e, DirectoryDown) else 403
        return site.render("login.html", request, status, error=str(e), name=name)
    if account is None:
        return site.render(
            "login.html", request, 401, error="wrong user name or password", name=name
        )
    site.gate.open_session(request, account)  # a new session at every login (no fixation)
    csrf_token(request)
    return RedirectResponse("/", 303)


async def logout(site: Site, request: Request) -> Response:
    posted = await read_form(request)
    if csrf_ok(request, posted.get(CSRF_FIELD)):
        site.gate.end_session(request)  # the server's record too: the cookie opens nothing
    return RedirectResponse("/login", 303)
