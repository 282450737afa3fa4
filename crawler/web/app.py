"""The dashboard's aiohttp application: routes, the token gate and security headers.

    GET  /                         watched articles: last outcome, next run
    GET  /snapshots[?source=]      stored snapshots, and a form to diff two
    GET  /snapshots/{id}           one snapshot as the HTML report (timelines when watched)
    GET  /snapshots/{id}/export.{fmt}   json, csv, junit, markdown, html or warc download
    GET  /dead                     dead links across the latest snapshot of every watch
    GET  /diff?a=&b=[&format=text] what changed between two snapshots
    GET  /healthz, /metrics        liveness (database answers) and Prometheus text
    POST /watches, /run            add a watch, run one now: need the token

Read-only unless a token is configured; a POST must carry it (form field `token` or
`Authorization: Bearer`). It is never a cookie, so another site cannot post on a user's
behalf (no CSRF). The store is synchronous (SQLAlchemy), so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web

from crawler.errors import CrawlerError, StoreError
from crawler.history import diff_snapshots, render_diff
from crawler.model import MAX_ROW_ID, Snapshot
from crawler.report import render, render_bytes
from crawler.report.html import CSP, render_html
from crawler.sources import is_url_source
from crawler.store import Store
from crawler.web import pages, queries
from crawler.web.metrics import CONTENT_TYPE, render_metrics

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXPORTS = {
    "json": ("application/json", "json"),
    "csv": ("text/csv", "csv"),
    "junit": ("application/xml", "xml"),
    "markdown": ("text/markdown", "md"),
    "html": ("text/html", "html"),
    "warc": ("application/warc", "warc.gz"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP + "; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class WatchActions(Protocol):
    """What the POST routes change (`actions.StoreWatchActions` in production)."""

    async def add_watch(self, source: str, every: str | None) -> int:
        """Add a watch of `source` (`every` like `6h`, None for the default) and return its id."""
        ...

    async def run_now(self, watch_id: int) -> None:
        """Start a run of the watch now (ValueError when there is no such watch)."""
        ...

    async def close(self) -> None:
        """Stop whatever is still running (at shutdown)."""
        ...


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Dashboard:
    """The request handlers, sharing one store, the token and the actions."""

    def __init__(
        self,
        store: Store,
        token: str | None,
        actions: WatchActions | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.token = token or None
        self.actions = actions
        self.clock = clock

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    # -- pages ---------------------------------------------------------------------------
    async def watches(self, request: web.Request) -> web.Response:
        """GET /: watched articles."""
        rows = await self.call(queries.list_watches, self.store)
        notice = request.query.get("notice")
        writable = self.token is not None
        return _html(pages.watches_page(rows, self.clock(), writable=writable, notice=notice))

    async def snapshots(self, request: web.Request) -> web.Response:
        """GET /snapshots: stored snapshots, newest first."""
        source = request.query.get("source") or None
        limit = _int(request.query.get("limit", "100"), "limit")
        rows = await self.call(self.store.list_snapshots, source, min(limit, 1000))
        return _html(pages.snapshots_page(rows, source))

    async def snapshot(self, request: web.Request) -> web.Response:
        """GET /snapshots/{id}: the HTML report, with per-link timelines for a watch."""
        snapshot = await self.load(request.match_info["id"])
        timelines = await self.call(queries.report_timelines, self.store, snapshot)
        ident = snapshot.snapshot_id
        nav = [*pages.NAV, *((f"⤓ {f}", f"/snapshots/{ident}/export.{f}") for f in EXPORTS)]
        return _html(render_html(snapshot, timelines=timelines, nav=nav))

    async def export(self, request: web.Request) -> web.Response:
        """GET /snapshots/{id}/export.{fmt}: the snapshot in another format, as a download."""
        fmt = request.match_info["fmt"]
        if fmt not in EXPORTS:
            raise web.HTTPNotFound(text=f"unknown export format {fmt!r}")
        snapshot = await self.load(request.match_info["id"])
        content_type, ext = EXPORTS[fmt]
        if fmt == "warc":
            body = await self.call(render_bytes, snapshot, fmt, self.store.get_body)
        else:
            timelines = await self.call(queries.report_timelines, self.store, snapshot)
            body = render(snapshot, fmt, timelines=timelines).encode()
        name = f"snapshot-{snapshot.snapshot_id}.{ext}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def dead(self, request: web.Request) -> web.Response:
        """GET /dead: dead links in the latest snapshot of every watched article."""
        rows = await self.call(queries.list_watches, self.store)
        dead = await self.call(queries.dead_links, self.store, rows)
        return _html(pages.dead_page(dead))

    async def diff(self, request: web.Request) -> web.Response:
        """GET /diff?a=&b=: changes from snapshot a to snapshot b (`format=text` for plain)."""
        before = await self.load(request.query.get("a", ""))
        after = await self.load(request.query.get("b", ""))
        changes = diff_snapshots(before, after)
        if request.query.get("format") == "text":
            return web.Response(text=render_diff(changes), content_type="text/plain")
        return _html(pages.diff_page(changes))

    async def load(self, raw_id: str) -> Snapshot:
        """The stored snapshot `raw_id`; 404 when there is none, 400 when it is not a number."""
        if _is_number(raw_id) and not _fits(raw_id):
            raise web.HTTPNotFound(text=f"no snapshot {raw_id}")  # no row has such an id
        snapshot_id = _int(raw_id, "snapshot id")
        info = await self.call(queries.snapshot_info, self.store, snapshot_id)
        if info is None:
            raise web.HTTPNotFound(text=f"no snapshot {snapshot_id}")
        return await self.call(self.store.load_snapshot, snapshot_id)

    # -- operations ----------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        """GET /healthz: 200 when the database answers, 503 otherwise."""
        try:
            await self.call(queries.check_database, self.store)
        except StoreError as exc:
            return web.json_response({"status": "error", "error": str(exc)}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics(self, request: web.Request) -> web.Response:
        """GET /metrics: Prometheus text format."""
        data = await self.call(queries.read_metrics, self.store, self.clock())
        response = web.Response(text=render_metrics(data))
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    # -- actions -------------------------------------------------------------------------
    async def add_watch(self, request: web.Request) -> web.Response:
        """POST /watches (source, every, token): add an interval watch of an http(s) URL.

        Files are not for a web form (it would read the server's files), and a `cron` field
        is refused rather than quietly ignored: cron watches are `crawler watch add --cron`.
        """
        form = await self.authorize(request)
        source = str(form.get("source", "")).strip()
        if not source:
            raise web.HTTPBadRequest(text="source is required")
        if not is_url_source(source):
            raise web.HTTPBadRequest(text=f"source must be an http(s) URL, got {source!r}")
        if str(form.get("cron", "")).strip():
            raise web.HTTPBadRequest(
                text="cron schedules cannot be added here: give 'every', "
                "or use crawler watch add --cron"
            )
        every = str(form.get("every", "")).strip() or None
        actions = self.require_actions()
        try:
            watch_id = await actions.add_watch(source, every)
        except (ValueError, CrawlerError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        raise web.HTTPSeeOther(f"/?notice=added+watch+{watch_id}")

    async def run_now(self, request: web.Request) -> web.Response:
        """POST /run (watch_id, token): make a watch due now."""
        form = await self.authorize(request)
        watch_id = _int(str(form.get("watch_id", "")), "watch_id")
        actions = self.require_actions()
        try:
            await actions.run_now(watch_id)
        except (ValueError, CrawlerError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        raise web.HTTPSeeOther(f"/?notice=watch+{watch_id}+will+run+now")

    async def authorize(self, request: web.Request) -> dict[str, Any]:
        """The posted form, once its token matches; 403 otherwise (or when read-only)."""
        if self.token is None:
            raise web.HTTPForbidden(text="read-only dashboard: no token is configured")
        form = dict(await request.post())
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header else str(form.get("token", ""))
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise web.HTTPForbidden(text="wrong or missing token")
        return form

    def require_actions(self) -> WatchActions:
        """The configured actions; 501 while no watch store is wired in."""
        if self.actions is None:
            raise web.HTTPNotImplemented(text="watch actions are not available in this build")
        return self.actions


def _int(raw: str, what: str) -> int:
    """A non-negative integer from a request, at most MAX_ROW_ID (any store's ids), else 400."""
    if not _is_number(raw):
        raise web.HTTPBadRequest(text=f"{what} must be a positive integer")
    if not _fits(raw):
        raise web.HTTPBadRequest(text=f"{what} must be at most {MAX_ROW_ID}")
    return int(raw)


def _is_number(raw: str) -> bool:
    """ASCII digits only (`str.isdigit` also takes `²`, which `int` refuses)."""
    return raw.isascii() and raw.isdigit()


def _fits(raw: str) -> bool:
    """Whether digits stay within MAX_ROW_ID (the length first: `int` refuses 5,000 digits)."""
    digits = raw.lstrip("0")
    return len(digits) <= len(str(MAX_ROW_ID)) and int(digits or "0") <= MAX_ROW_ID


def _html(text: str, status: int = 200) -> web.Response:
    """An HTML response."""
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; a store failure becomes a 503 page, not a traceback."""
    try:
        response = await handler(request)
    except StoreError as exc:
        response = _html(pages.message_page("Database unavailable", str(exc)), status=503)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text or exc.reason
        response = _html(pages.message_page(f"{exc.status} {exc.reason}", message), exc.status)
    response.headers.update(SECURITY_HEADERS)
    return response


def create_app(
    store: Store,
    *,
    token: str | None = None,
    actions: WatchActions | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> web.Application:
    """The dashboard application over an open store (the caller closes it)."""
    dash = Dashboard(store, token, actions, clock)
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app.router.add_get("/", dash.watches)
    app.router.add_get("/snapshots", dash.snapshots)
    app.router.add_get(r"/snapshots/{id:\d+}", dash.snapshot)
    app.router.add_get(r"/snapshots/{id:\d+}/export.{fmt}", dash.export)
    app.router.add_get("/dead", dash.dead)
    app.router.add_get("/diff", dash.diff)
    app.router.add_get("/healthz", dash.healthz)
    app.router.add_get("/metrics", dash.metrics)
    app.router.add_post("/watches", dash.add_watch)
    app.router.add_post("/run", dash.run_now)
    if actions is not None:
        app.on_cleanup.append(lambda _app: actions.close())
    return app
