"""The current run's page (its check boxes), its buttons (confirm, approve, retry, skip,
abort) and its JSON (`amsm show current --json`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.refusal import Refused
from console import actions
from console.accounts import Account
from console.pairs import show_json
from console.site import Site
from inventory.models import Inventory


async def page(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    snap = await site.snapshot(inv.pair)
    return site.render(
        "run.html", request, user=account, view="run", **site.pair_context(inv, role, snap)
    )


async def tick(site: Site, request: Request) -> Response:
    verb = request.path_params["verb"]

    async def do(account: Account, inv: Inventory, form: Any) -> str:
        snap = site.hub.pairs[inv.pair].snapshot
        return await actions.tick(
            site.hub.temporal,
            inv,
            account.name,
            verb,
            str(form.get("step", "")),
            str(form.get("note", "")),
            typed=str(form.get("typed", "")),
            status=snap.status,
            clients=[str(c) for c in form.getlist("clients")] or None,
            reading=snap.reading_counts,
            key=site.console_key,
        )

    if verb not in ("confirm", "approve"):
        raise Refused(f"no such action {verb!r}", "not-found")
    return await site.act(request, "run", do)


async def decide(site: Site, request: Request) -> Response:
    async def do(account: Account, inv: Inventory, form: Any) -> str:
        return await actions.decide(
            site.hub.temporal,
            inv,
            account.name,
            str(form.get("action", "")),
            str(form.get("step", "")),
            str(form.get("reason", "")),
            str(form.get("client", "")) or None,
            key=site.console_key,
        )

    return await site.act(request, "run", do)


async def current(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, _ = site.pair_of(request, account)
    return JSONResponse(await show_json(site.hub.temporal, inv, "current"))
