"""The pair's page (the manual's window: strips, Status and Control, the starts), its
controls and its refresh, and its JSON (`amsm status --json`, the live subscription)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.refusal import Refused
from api.schedule import cancel, scheduled
from console import actions
from console.accounts import Account
from console.pairs import status_json
from console.site import Site
from inventory.models import Inventory


async def page(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    snap = await site.snapshot(inv.pair)
    try:
        waiting = await scheduled(site.hub.temporal, inv)
    except Refused:
        waiting = []  # the page shows the pair whether or not its scheduled runs read
    return site.render(
        "pair.html",
        request,
        user=account,
        view="pair",
        scheduled=waiting,
        zone=inv.zone,
        **site.pair_context(inv, role, snap),
    )


async def control_approval(site: Site, request: Request) -> Response:
    """The Approve and Give up buttons of a control's break-glass override (operators)."""

    async def do(account: Account, inv: Inventory, form: Any) -> str:
        return await actions.control_approval(
            site.hub.temporal,
            inv,
            account.name,
            str(form.get("action", "")),
            str(form.get("run", "")),
            str(form.get("text", "")),
            key=site.console_key,
        )

    return await site.act(request, "", do)


async def cancel_scheduled(site: Site, request: Request) -> Response:
    """A scheduled run's Cancel button (operators; a reason is asked)."""

    async def do(account: Account, inv: Inventory, form: Any) -> str:
        st = await cancel(
            site.hub.temporal,
            inv,
            str(form.get("schedule", "")),
            account.name,
            str(form.get("reason", "")),
            key=actions.signer(inv, site.console_key),
            console=True,
        )
        return f"cancelled scheduled run {st.schedule_id} ({st.what}): {st.why}"

    return await site.act(request, "", do)


async def control(site: Site, request: Request) -> Response:
    async def do(account: Account, inv: Inventory, form: Any) -> str:
        name, _, side = str(form.get("control", "")).partition(":")
        family = name.split("-")[0]
        hosts = [str(h) for h in form.getlist(f"hosts-{family}")]
        if name == "clients-switch" or (name == "reboot" and not hosts):
            one = str(form.get("host") or request.query_params.get("host") or "")
            hosts = [one] if one else hosts
        return await actions.control(
            site.hub.temporal,
            inv,
            account.name,
            name,
            side or None,
            hosts,
            [str(r) for r in form.getlist("override")],
            str(form.get("reason", "")),
            key=site.console_key,
        )

    return await site.act(request, "", do)


async def refresh(site: Site, request: Request) -> Response:
    async def do(account: Account, inv: Inventory, form: Any) -> str:
        snap = await site.hub.refresh(inv.pair, fresh=True)
        return snap.status_when or "read"

    return await site.act(request, "", do)


async def status(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    return JSONResponse(
        await status_json(site.hub.temporal, inv, account.name, act=role == "operator")
    )


async def live(site: Site, request: Request) -> Response:
    """The pair's live subscription: how many browsers share its one poller."""
    account = site.who(request)
    inv, _ = site.pair_of(request, account)
    pair = site.hub.pairs[inv.pair]
    return JSONResponse(
        {
            "pair": inv.pair,
            "subscribers": len(pair.subscribers),
            "pollers": int(pair.following),
            "reads": pair.reads,
            "queries": pair.queries,
            "version": pair.snapshot.version,
        }
    )
