"""Serve corpus pages on 127.0.0.1, each at its original URL's path (and query).

Keeping the path keeps what the crawler reads from it: a date written in the URL, a relative
canonical resolved against the page, the "is this a deep link" test of soft-404 redirects.
Pages whose URL is unknown, or whose path another page already took, get a path of their own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from accuracy.corpus import Page

HOST = "127.0.0.1"
_SAFE = "/%:@!$&'()*+,;=-._~"
_SLASHES_RE = re.compile(r"/{2,}")


@dataclass(frozen=True, slots=True)
class Served:
    """Where a page is served: its local path (with query) and its original origin."""

    page: Page
    path: str  # "/2019/jan/03/story?x=1"
    origin: str | None  # "https://www.theguardian.com", None when the URL is unknown


def plan_paths(pages: list[Page]) -> list[Served]:
    """A unique local path for each page, its original path and query when known."""
    served: list[Served] = []
    taken: set[str] = set()
    for index, page in enumerate(pages):
        path, origin = _original_path(page.url)
        if path is None or lookup_key(path) in taken:
            path = f"/_corpus/{index}/{quote(page.path.name)}"
        taken.add(lookup_key(path))
        served.append(Served(page, path, origin))
    return served


def _original_path(url: str | None) -> tuple[str | None, str | None]:
    """(percent-encoded path + query, scheme://host) of a URL, or (None, None)."""
    if not url:
        return None, None
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe=_SAFE)
    query = f"?{quote(parts.query, safe=_SAFE + '?')}" if parts.query else ""
    return path + query, f"{parts.scheme}://{parts.netloc}"


def lookup_key(path_qs: str) -> str:
    """How a request path is matched: percent-decoded, repeated slashes folded."""
    return _SLASHES_RE.sub("/", unquote(path_qs))


def build_app(served: list[Served]) -> web.Application:
    """An aiohttp app answering each planned path with its page's bytes, anything else 404."""
    bodies = {lookup_key(s.path): s.page.path.read_bytes() for s in served}

    async def handle(request: web.Request) -> web.StreamResponse:
        body = bodies.get(lookup_key(request.raw_path))
        if body is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def serve(served: list[Served]) -> AsyncIterator[str]:
    """Run the site on a free 127.0.0.1 port for the duration; yields its base URL."""
    runner = web.AppRunner(build_app(served), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://{HOST}:{port}"
    finally:
        await runner.cleanup()
