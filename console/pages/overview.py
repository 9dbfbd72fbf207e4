"""The first page: every pair the logged-in user may see, with its strips and run."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.site import Site


async def index(site: Site, request: Request) -> Response:
    account = site.who(request)
    rows = []
    for name, live in site.hub.pairs.items():
        role = site.gate.role(account, live.inv)
        if role is None:
            continue
        snap = await site.snapshot(name)
        rows.append({"pair": name, "role": role, **site.pair_context(live.inv, role, snap)})
    return site.render("index.html", request, user=account, rows=rows)
