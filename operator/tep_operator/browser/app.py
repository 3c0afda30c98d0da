"""The HTTP side of the browser (aiohttp): pages, the JSON API and the volume's files; GET and HEAD only."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from tep_operator.browser import FILES_ROUTE, charts, file_url, files, model
from tep_operator.browser.store import PlanData, RunFolder, Store
from tep_operator.browser.templates import TEMPLATES as SOURCES
from tep_runner import history

PLANS_PER_PAGE = 100
# Our own pages run no script and load nothing from elsewhere.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# Files from the volume (test output, pytest-html's report) run in an opaque origin: their script cannot
# read or drive the browser's own pages.
FILE_CSP = "sandbox allow-scripts"
STORE: web.AppKey[Store] = web.AppKey("store", Store)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(reports: Path) -> web.Application:
    app = web.Application(middlewares=[_headers])
    app[STORE] = Store(reports)
    env = jinja2.Environment(
        loader=jinja2.DictLoader(SOURCES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.globals.update(ago=_ago, stamp=_stamp, short=_short, spark=charts.sparkline)
    app[TEMPLATES] = env
    app.on_startup.append(_warm)
    app.router.add_get("/", plans_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/plans/{ns}/{plan}", plan_page)
    app.router.add_get("/plans/{ns}/{plan}/runs/{run}", run_page)
    app.router.add_get("/plans/{ns}/{plan}/tests", test_page)
    app.router.add_get(FILES_ROUTE + "{path:.*}", volume_file)
    app.router.add_get("/api/plans", api_plans)
    app.router.add_get("/api/plans/{ns}/{plan}", api_plan)
    app.router.add_get("/api/plans/{ns}/{plan}/runs/{run}", api_run)
    app.router.add_get("/api/plans/{ns}/{plan}/tests", api_test)
    return app


async def _warm(app: web.Application) -> None:
    """Read every plan once in the background, so that the first visitor does not wait for it."""
    asyncio.get_running_loop().run_in_executor(None, app[STORE].summaries)


def serve(reports: Path, host: str, port: int) -> None:
    url = f"http://{host}:{port}/"
    print(f"tep serve: the reports in {reports.absolute()} at {url} (Ctrl-C stops)", flush=True)
    web.run_app(make_app(reports), host=host, port=port, print=None, access_log=None)


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.perf_counter()
    if files.encoded_escape(request.rel_url.raw_path):
        response: web.StreamResponse = _error(request, 404, "Not found.")
    else:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            response = _error(request, e.status, e.reason)
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-cache")
    # The time spent building the response (bench/browser.py reads it).
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
    return response


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    return _page(request, "error.html", status=status, code=status, message=message)


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def _json(data: Any) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    root = request.app[STORE].root
    if not root.is_dir():
        raise web.HTTPServiceUnavailable(reason=f"{root} is not a folder")
    return web.Response(text="ok\n")


# Pages --------------------------------------------------------------------------------------------------


def _sorted_plans(request: web.Request) -> list[model.PlanSummary]:
    """Red plans first, longest red on top; then by namespace and name; filtered by ?ns= and ?q=."""
    ns, q = request.query.get("ns", ""), request.query.get("q", "").lower()
    plans = [
        p
        for p in request.app[STORE].summaries()
        if (not ns or p.namespace == ns) and (not q or q in f"{p.namespace}/{p.plan}".lower())
    ]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(
        plans, key=lambda p: (not p.red, (p.red_since or far) if p.red else far, p.namespace, p.plan)
    )


async def plans_page(request: web.Request) -> web.Response:
    plans = _sorted_plans(request)
    pages = max(1, math.ceil(len(plans) / PLANS_PER_PAGE))
    page = min(max(_int(request.query.get("page"), 1), 1), pages)
    return _page(
        request,
        "plans.html",
        plans=plans[(page - 1) * PLANS_PER_PAGE : page * PLANS_PER_PAGE],
        total=len(plans),
        red=sum(p.red for p in plans),
        page=page,
        pages=pages,
        q=request.query.get("q", ""),
        ns=request.query.get("ns", ""),
        root=request.app[STORE].root,
        plan_url=lambda p: f"/plans/{p.namespace}/{p.plan}",
    )


def _plan(request: web.Request) -> tuple[str, str, PlanData]:
    ns, plan = request.match_info["ns"], request.match_info["plan"]
    data = request.app[STORE].plan(ns, plan)
    if data is None:
        raise web.HTTPNotFound(reason=f"No plan {ns}/{plan} on the volume.")
    return ns, plan, data


def _window(request: web.Request, runs: list[model.Run]) -> list[model.Run]:
    return runs[: min(max(_int(request.query.get("runs"), model.WINDOW), 1), history.MAX_RUNS)]


def _links(ns: str, plan: str) -> dict[str, Any]:
    """URL builders for the templates."""
    base = f"/plans/{ns}/{plan}"
    return {
        "run_url": lambda run_id: f"{base}/runs/{run_id}",
        "report_url": lambda run_id: file_url(f"{ns}/{plan}/{run_id}/report.html"),
        "test_url": lambda test: f"{base}/tests?id={quote(test, safe='')}",
    }


async def plan_page(request: web.Request) -> web.Response:
    ns, plan, data = _plan(request)
    window = _window(request, data.runs)
    rows = model.grid_rows(window)
    ranked = model.rankings(rows)
    oldest_first = list(reversed(window))
    labels = [_short(r.start) for r in oldest_first]
    return _page(
        request,
        "plan.html",
        ns=ns,
        plan=plan,
        s=data.summary(),
        window=window,
        rows=rows,
        ranked=[
            ("flaky", "flaky", ranked.flaky),
            ("failing", "failing", ranked.failing),
            ("new failures", "new-failures", ranked.new_failures),
            ("slowest", "slowest", ranked.slowest),
        ],
        definitions=model.DEFINITIONS,
        max_runs=history.MAX_RUNS,
        duration_svg=charts.duration_chart(labels, [r.duration for r in oldest_first]),
        counts_svg=charts.counts_chart(
            labels,
            {
                "passed": [r.counts["passed"] for r in oldest_first],
                "failed": [r.counts["failed"] + r.counts["errors"] for r in oldest_first],
                "flaky": [r.counts["flaky"] for r in oldest_first],
            },
        ),
        **_links(ns, plan),
    )


def _run(request: web.Request) -> tuple[str, str, str, model.Run | None, RunFolder | None]:
    """The run of the URL: its history record and its folder (either may be gone, not both)."""
    ns, plan, data = _plan(request)
    run_id = request.match_info["run"]
    run = next((r for r in data.runs if r.run_id == run_id), None)
    folder = request.app[STORE].run_folder(ns, plan, run_id)
    if run is None and folder is None:
        raise web.HTTPNotFound(reason=f"No run {run_id} of {ns}/{plan}.")
    return ns, plan, run_id, run, folder


async def run_page(request: web.Request) -> web.Response:
    ns, plan, run_id, run, folder = _run(request)
    return _page(
        request, "run.html", ns=ns, plan=plan, run_id=run_id, run=run, folder=folder,
        plan_url=f"/plans/{ns}/{plan}", **_links(ns, plan),
    )  # fmt: skip


def _test(request: web.Request) -> tuple[str, str, str, list[model.Run], model.GridRow]:
    """The test of the URL (`?id=`) and its row over the plan's window of runs."""
    ns, plan, data = _plan(request)
    test = request.query.get("id", "")
    window = _window(request, data.runs)
    row = next((r for r in model.grid_rows(window) if r.test == test), None)
    if row is None:
        raise web.HTTPNotFound(reason=f"No test {test!r} in the last {len(window)} runs of {ns}/{plan}.")
    return ns, plan, test, window, row


async def test_page(request: web.Request) -> web.Response:
    ns, plan, test, window, row = _test(request)
    oldest = [(r, s) for r, s in zip(reversed(window), reversed(row.seconds), strict=True) if s is not None]
    return _page(
        request, "test.html", ns=ns, plan=plan, test=test, row=row, window=window,
        plan_url=f"/plans/{ns}/{plan}",
        duration_svg=charts.duration_chart([_short(r.start) for r, _ in oldest], [s for _, s in oldest]),
        **_links(ns, plan),
    )  # fmt: skip


async def volume_file(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    path = files.resolve(store.root, request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound(reason="Not found.")
    kind = files.content_type(path)
    response: web.StreamResponse
    if kind.startswith("text/html"):
        body = files.with_storage_shim(path.read_bytes())
        response = web.Response(body=body, headers={"Content-Type": kind})
    else:
        response = web.FileResponse(path, headers={"Content-Type": kind})
    response.headers["Content-Security-Policy"] = FILE_CSP
    if kind == files.DOWNLOAD:
        response.headers["Content-Disposition"] = "attachment"
    return response


# JSON API -----------------------------------------------------------------------------------------------


async def api_plans(request: web.Request) -> web.Response:
    return _json({"plans": [p.to_json() for p in _sorted_plans(request)]})


async def api_plan(request: web.Request) -> web.Response:
    _, _, data = _plan(request)
    window = _window(request, data.runs)
    rows = model.grid_rows(window)
    ids = [r.run_id for r in window]
    return _json(
        {
            **data.summary().to_json(),
            "runs": [r.to_json() for r in window],
            "tests": [row.to_json(ids) for row in rows],
            "rankings": model.rankings(rows).to_json(ids),
        }
    )


async def api_run(request: web.Request) -> web.Response:
    ns, plan, run_id, run, folder = _run(request)
    body: dict[str, Any] = {"namespace": ns, "plan": plan, "runId": run_id, "inProgress": run is None}
    if run:
        body["run"] = run.to_json(with_tests=True)
    if folder:
        body["files"] = [file_url(f) for f in folder.files]
        body["shards"] = [
            {"shard": i, "files": [file_url(f) for f in fs], "summary": summary}
            for i, fs, summary in folder.shards
        ]
        body["failures"] = [
            {"test": f.test, "outcome": f.outcome, "message": f.message} for f in folder.failures
        ]
    return _json(body)


async def api_test(request: web.Request) -> web.Response:
    ns, plan, _, window, row = _test(request)
    return _json(
        {
            "namespace": ns,
            "plan": plan,
            **row.to_json([r.run_id for r in window]),
            "runs": [
                {"runId": r.run_id, "outcome": o, "seconds": s}
                for r, o, s in zip(window, row.outcomes, row.seconds, strict=True)
            ],
        }
    )


# Formatting ---------------------------------------------------------------------------------------------


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isascii() and text.isdigit() else default


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"


def _short(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%m-%d %H:%M") if when else "-"
