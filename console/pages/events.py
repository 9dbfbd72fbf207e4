"""The live stream of a pair's page or run page (server-sent events): the live part drawn
once per snapshot for every browser (console/site.py `drawn`), each stream putting its
own form token in; a keepalive when nothing changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console.auth import csrf_token
from console.site import CSRF_SLOT, Site

KEEPALIVE_SECONDS = 15.0


async def events(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    view = "run" if request.query_params.get("view") == "run" else "pair"
    token = csrf_token(request)
    pair = inv.pair
    wake = site.hub.subscribe(pair)

    async def stream() -> AsyncIterator[str]:
        shown = -1
        try:
            yield "retry: 1000\n\n"
            while True:
                wake.clear()
                snap = site.hub.pairs[pair].snapshot
                if snap.version != shown and snap.version > 0:
                    shown = snap.version
                    html = site.drawn(inv, role, view, snap).replace(CSRF_SLOT, token)
                    data = json.dumps({"version": shown, "html": html})
                    yield f"event: update\ndata: {data}\n\n"
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                if await request.is_disconnected():
                    return
        finally:
            site.hub.unsubscribe(pair, wake)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
