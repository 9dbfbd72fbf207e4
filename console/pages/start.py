"""Starting a workflow: the start form (for a kind that needs more than its side: a
split-switch's pilots, an unplanned switch's reason), the start itself, and its dry run
(a read: operators and viewers alike, as the CLI lets them)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.refusal import Refused
from console import actions, views
from console.accounts import Account
from console.site import Site
from inventory.models import Inventory, Side, other


async def form(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    kind = request.path_params["kind"]
    asked = request.query_params.get("side", "").upper()
    if asked not in ("X", "Y"):
        raise Refused(f"side {asked!r}: X or Y", "usage")
    side: Side = "X" if asked == "X" else "Y"
    snap = await site.snapshot(inv.pair)
    start = next(
        (
            s
            for s in views.starts(snap.status, False, snap.fences)
            if s.kind == kind
            and s.side == side
            and s.offered
            and (s.form or views.start_overridable(inv))
        ),
        None,
    )
    if start is None:
        raise Refused(f"{kind} to {side} needs no form, or the pair's mode allows none", "usage")
    on = other(side) if start.hosts else side  # pilots: on the side being left
    candidates = [c for c in (snap.status.clients if snap.status else []) if c.side == on]
    return site.render(
        "start.html",
        request,
        user=account,
        pair=inv.pair,
        role=role,
        can_act=role == "operator",
        start=start,
        candidates=candidates,
        start_overrides=views.start_overridable(inv),
        when=snap.status_when or (snap.status.read_at if snap.status else ""),
    )


async def dry_run(site: Site, request: Request) -> Response:
    """A start's dry run (a read: operators and viewers alike, as the CLI lets them; a
    link a person can keep, so a GET), bounded as it reads the devices: one at a time
    per pair, and a few per person (site.DryRuns)."""
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    form = {k: v for k, v in request.query_params.items()}
    form["kind"] = request.path_params["kind"]
    form["pilots"] = " ".join(request.query_params.getlist("pilots"))
    actions.start_input(inv, account.name, form)  # a bad input is refused before the bound
    busy = site.dry_runs.begin(inv.pair, account.name)
    if busy is not None:
        return site.render("refused.html", request, 429, message=busy)
    try:
        result = await actions.dry_run(site.hub.temporal, inv, account.name, form)
    finally:
        site.dry_runs.end(inv.pair)
    refused = {s.id: s.refused for s in result.steps if s.refused}
    return site.render(
        "dry-run.html",
        request,
        user=account,
        pair=inv.pair,
        role=role,
        result=result,
        by_id={s.id: s for s in result.steps},
        refused=refused,
    )


async def start(site: Site, request: Request) -> Response:
    async def do(account: Account, inv: Inventory, form: Any) -> str:
        data = dict(form)
        data["pilots"] = " ".join(str(p) for p in form.getlist("pilots"))
        data["overrides"] = [str(o) for o in form.getlist("override") if o]
        run_id = await actions.start(site.hub.temporal, inv, account.name, data, site.console_key)
        return f"started {form.get('kind')} (run {run_id}) as {account.name}"

    return await site.act(request, "run", do)
