"""The pair's runs (as `amsm runs`), each run's report (markdown or HTML, as `amsm
report`) and its history (as `amsm history export`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from api.report import history_of_run, report_of_run
from api.runs import list_runs, with_time_to_serve
from console.site import Site
from records.report import minutes, served_briefly
from records.report_render import render_html, render_markdown


async def page(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, role = site.pair_of(request, account)
    rows = await list_runs(site.hub.temporal, inv, limit=50)
    rows = await with_time_to_serve(site.hub.temporal, inv, rows, site.codec)
    objective = inv.objectives.time_to_serve_seconds
    return site.render(
        "runs.html",
        request,
        user=account,
        pair=inv.pair,
        rows=rows,
        role=role,
        objective=minutes(objective) if objective is not None else None,
        served=served_briefly,
    )


async def report(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, _ = site.pair_of(request, account)
    run, fmt = request.path_params["run"], request.path_params["fmt"]
    rep = await report_of_run(site.hub.temporal, inv, run, site.codec)
    if fmt == "html":
        return HTMLResponse(render_html(rep))
    return PlainTextResponse(render_markdown(rep), media_type="text/markdown; charset=utf-8")


async def history(site: Site, request: Request) -> Response:
    account = site.who(request)
    inv, _ = site.pair_of(request, account)
    found = await history_of_run(site.hub.temporal, inv, request.path_params["run"])
    name = f"{found.workflow_id}-{found.run_id}.json"
    return Response(
        found.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
