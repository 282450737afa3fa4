"""A small fake news site served over real HTTP on 127.0.0.1 for fetch, crawl, CLI, daemon tests.

The server is aiohttp.web running in a background thread with its own event loop, so sync
tests (a CLI subprocess) and async tests (a Fetcher in the test's loop) can share it.

Site map (see `ARTICLE_RELATED` and friends for what crawl tests may rely on):
- `/news/article-1.html` cites references in its body and lists related stories five ways
  (aside block, "Read more", "Related article:" paragraph, `<link rel=related>`, JSON-LD).
  `/news/related-c.html` is dead (404); the others have their own related blocks leading
  to `/news/deep-*.html` (depth 2) and `/news/deeper-1.html` (depth 3).
- Error, retry, redirect, soft-404, HEAD-quirk, conditional, size and hang endpoints as
  listed in `_ROUTES` below.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import html
import json
import math
import socket
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from tests.servers import ThreadedServer

# What a crawl of the main article should find (paths on the fake site).
ARTICLE = "/news/article-1.html"
ARTICLE_REFERENCES = (
    "/news/target.html",
    "/dead",
    "/gone",
    "/forbidden",
    "/flaky",
    "/redirect/2",
    "/soft404",
    "/missing-story",
    "/to-home/deep/story",
    "/canon-a.html",
    "/canon-b.html",
    "/redirect-final-a",
    "/redirect-final-b",
    "/etag.html",
    "/private/story.html",
)
ARTICLE_RELATED = (
    "/news/related-a.html",  # aside.related
    "/news/related-b.html",  # aside.related
    "/news/related-c.html",  # "Related article:" paragraph -- dead (404)
    "/news/related-d.html",  # <link rel="related">
    "/news/related-e.html",  # JSON-LD relatedLink
    "/news/related-f.html",  # "Read more" section
)
DEAD_RELATED = "/news/related-c.html"
# related page -> its own related stories (depth 2), and deep page -> depth 3
RELATED_OF: dict[str, tuple[str, ...]] = {
    "/news/related-a.html": ("/news/deep-1.html", "/news/deep-2.html"),
    "/news/related-b.html": ("/news/deep-3.html", ARTICLE),
    "/news/related-d.html": ("/news/deep-4.html",),
    "/news/related-e.html": ("/news/deep-5.html",),
    "/news/related-f.html": ("/news/deep-1.html",),
    "/news/deep-1.html": ("/news/deeper-1.html",),
    "/news/deep-2.html": ("/news/related-a.html",),
    "/news/deep-3.html": (),
    "/news/deep-4.html": (),
    "/news/deep-5.html": (),
    "/news/deeper-1.html": (),
}
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0\n"
ETAG = '"etag-v1"'
LAST_MODIFIED = "Mon, 06 Jan 2025 10:00:00 GMT"
BIG_BYTES = 20 * 1024 * 1024
BOMB_BYTES = 200 * 1024 * 1024
SLOW_CAP = 30.0
PUBLISHED = "2025-01-06T09:30:00Z"

Handler = Callable[["FakeSite", web.Request], Awaitable[web.StreamResponse]]

_NAV = """<header><nav class="site-nav"><a href="/">Home</a> <a href="/news/">News</a>
<a href="/sport/">Sport</a> <a href="/weather/">Weather</a> <a href="/about">About us</a>
</nav></header>"""
_FOOTER = """<footer><a href="/contact">Contact</a> <a href="/privacy">Privacy</a>
<a href="/terms">Terms</a> <p>&copy; 2025 The Daily Fake</p></footer>"""


def _page(title: str, body: str, *, path: str, head: str = "") -> str:
    """A whole HTML page with the site's head, navigation and footer."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="canonical" href="{path}">
<meta property="article:published_time" content="{PUBLISHED}">
{head}</head>
<body>{_NAV}<main>{body}</main>{_FOOTER}</body></html>"""


def _related_aside(paths: tuple[str, ...]) -> str:
    """The usual `<aside class="related">` block."""
    items = "".join(f'<li><a href="{p}">{_story_title(p)}</a></li>' for p in paths)
    return f'<aside class="related"><h2>Related</h2><ul>{items}</ul></aside>'


def _story_title(path: str) -> str:
    """A readable title for a story path."""
    return path.rsplit("/", 1)[-1].removesuffix(".html").replace("-", " ").capitalize()


def article_html() -> str:
    """The main article: references in the body, related stories five ways, and noise."""
    refs = "".join(
        f'<p>As <a href="{p}">this source ({p})</a> reported, events unfolded.</p>'
        for p in ARTICLE_REFERENCES
    )
    body = f"""<article><h1>Council approves new river bridge</h1>
<div class="share"><a href="https://twitter.invalid/intent/tweet?url={ARTICLE}">Share on X</a>
<a href="https://facebook.invalid/sharer.php?u={ARTICLE}">Share on Facebook</a></div>
<div class="article-body"><p>The council voted on Tuesday, according to
<a href="/news/target.html#vote">the official record</a>.</p>{refs}
<p>Related article: <a href="/news/related-c.html">Earlier vote postponed</a></p></div>
<div class="ad"><a href="/ads/click?id=42">Sponsored: Buy a boat</a></div>
{_related_aside(("/news/related-a.html", "/news/related-b.html"))}
<section class="read-more"><h2>Read more</h2><ul>
<li><a href="/news/related-f.html">Bridge costs explained</a></li></ul></section>
<section id="comments"><a href="{ARTICLE}#comments">12 comments</a>
<a href="/login?next={ARTICLE}">Log in to comment</a></section></article>"""
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Council approves new river bridge",
        "datePublished": PUBLISHED,
        "relatedLink": ["/news/related-e.html"],
    }
    head = (
        '<link rel="related" href="/news/related-d.html">\n'
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    )
    return _page("Council approves new river bridge", body, path=ARTICLE, head=head)


def story_html(path: str) -> str:
    """A related or deep story with its own related block."""
    title = _story_title(path)
    body = f"<article><h1>{title}</h1><p>Story text for {title}.</p></article>"
    return _page(title, body + _related_aside(RELATED_OF[path]), path=path)


def plain_refs_text(base: str) -> str:
    """A plain-text article whose references are the site's bare absolute URLs."""
    urls = "\n".join(f"- {base}{p}" for p in ARTICLE_REFERENCES)
    return f"Council approves new river bridge\n\nSources:\n{urls}\nSee also {base}/dead.\n"


def markdown_text(base: str) -> str:
    """The main article as Markdown with absolute links."""
    refs = "\n".join(f"- [{p}]({base}{p})" for p in ARTICLE_REFERENCES)
    return f"# Council approves new river bridge\n\nSources:\n\n{refs}\n"


def _gzip_bomb() -> bytes:
    """BOMB_BYTES of zeros gzipped (about 200 KB), built in 1 MiB steps."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [comp.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    return b"".join([*parts, comp.flush()])


_BOMB: list[bytes] = []


class FakeSite(ThreadedServer):
    """The fake news site; `start()` serves it on a random free port of 127.0.0.1."""

    lifetime = 600.0  # a forgotten site stops by itself

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__()
        self.latency = latency
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.client_ports: list[int] = []  # the client's port per request: one per connection
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._forced: dict[str, int] = {}
        self._counters: collections.Counter[str] = collections.Counter()

    # -- test controls ---------------------------------------------------------------------
    def set_status(self, path: str, status: int | None) -> None:
        """Force `path` to answer `status` (None restores the normal page)."""
        with self._lock:
            if status is None:
                self._forced.pop(path, None)
            else:
                self._forced[path] = status

    def reset(self) -> None:
        """Clear hits, the request log, forced statuses and flaky counters."""
        with self._lock:
            self.hits.clear()
            self.requests.clear()
            self.client_ports.clear()
            self._forced.clear()
            self._counters.clear()
            self.peak_in_flight = self.in_flight

    def count(self, path: str) -> int:
        """Bump and return the per-path counter used by flaky endpoints."""
        with self._lock:
            self._counters[path] += 1
            return self._counters[path]

    # -- serving ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tracked(self, request: web.Request) -> Iterator[None]:
        with self._lock:
            self.hits[request.path] += 1
            self.requests.append((request.method, request.path_qs, dict(request.headers)))
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.client_ports.append(int(peer[1]) if peer else 0)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        with self._tracked(request):
            if self.latency:
                await asyncio.sleep(self.latency)
            with self._lock:
                forced = self._forced.get(request.path)
            if forced is not None:
                return web.Response(status=forced, text=f"forced {forced}\n")
            return await _route(request.path)(self, request)


# -- handlers -----------------------------------------------------------------------------
def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


async def _front(site: FakeSite, request: web.Request) -> web.StreamResponse:
    links = "".join(f'<li><a href="{p}">{_story_title(p)}</a></li>' for p in ARTICLE_RELATED)
    body = f'<h1>The Daily Fake</h1><ul><li><a href="{ARTICLE}">Top story</a></li>{links}</ul>'
    return _html(_page("The Daily Fake - Home", body, path="/"))


async def _article(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return _html(article_html())


async def _story(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if request.path == DEAD_RELATED or request.path not in RELATED_OF:
        return _html(_page("Not found", "<h1>404 Not Found</h1>", path=request.path), 404)
    return _html(story_html(request.path))


async def _target(site: FakeSite, request: web.Request) -> web.StreamResponse:
    body = '<article><h1>Official record</h1><p id="vote">The vote passed 7-2.</p></article>'
    return _html(_page("Official record", body, path="/news/target.html"))


async def _plain(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return web.Response(text=plain_refs_text(site.base_url), content_type="text/plain")


async def _markdown(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return web.Response(text=markdown_text(site.base_url), content_type="text/markdown")


def _fixed(status: int) -> Handler:
    async def handler(site: FakeSite, request: web.Request) -> web.StreamResponse:
        page = _page(f"Error {status}", f"<h1>Error {status}</h1>", path=request.path)
        return _html(page, status)

    return handler


async def _flaky(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if site.count(request.path) <= 2:
        return web.Response(status=503, text="try again\n")
    return _html(_page("Flaky but fine", "<h1>Back again</h1>", path=request.path))


async def _ratelimited(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if site.count(request.path) <= 1:
        return web.Response(status=429, text="slow down\n", headers={"Retry-After": "1"})
    return _html(_page("Rate limited page", "<h1>Patience paid</h1>", path=request.path))


async def _always_429(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return web.Response(status=429, text="slow down\n", headers={"Retry-After": "1"})


async def _retry_after_date(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if site.count(request.path) <= 1:
        # HTTP-dates have whole seconds: round up so the date is 1-2 s ahead.
        when = email.utils.formatdate(math.ceil(time.time()) + 1, usegmt=True)
        return web.Response(status=503, text="maintenance\n", headers={"Retry-After": when})
    return _html(_page("After maintenance", "<h1>Up</h1>", path=request.path))


async def _slow(site: FakeSite, request: web.Request) -> web.StreamResponse:
    try:
        delay = min(float(request.query.get("delay", "1")), SLOW_CAP)
    except ValueError:
        delay = 1.0
    await site.wait_or_stop(delay)
    return _html(_page("Slow page", f"<h1>Slept {delay}</h1>", path=request.path))


async def _hang(site: FakeSite, request: web.Request) -> web.StreamResponse:
    await site.wait_or_stop(None)
    return web.Response(status=503, text="stopping\n")


async def _redirect_chain(site: FakeSite, request: web.Request) -> web.StreamResponse:
    try:
        left = int(request.path.rsplit("/", 1)[-1])
    except ValueError:
        return web.Response(status=400)
    codes = (301, 302, 307, 308)
    target = ARTICLE if left <= 1 else f"/redirect/{left - 1}"
    return web.Response(status=codes[left % len(codes)], headers={"Location": target})


def _redirect(location: str, status: int = 301) -> Handler:
    async def handler(site: FakeSite, request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


async def _soft404(site: FakeSite, request: web.Request) -> web.StreamResponse:
    body = "<h1>Sorry, we couldn't find that page</h1><p>Try the search box.</p>"
    return _html(_page("Page not found", body, path="/soft404"))


async def _missing(site: FakeSite, request: web.Request) -> web.StreamResponse:
    # Site-wide soft 404: the same generic body for every unknown path.
    body = "<h1>Oops!</h1><p>That story may have moved. Try our home page.</p>"
    return _html(_page("The Daily Fake", body, path="/"))


async def _head_405(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=405, headers={"Allow": "GET"})
    return _html(_page("No HEAD here", "<h1>GET works</h1>", path=request.path))


async def _head_404(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=404)
    return _html(_page("HEAD lies", "<h1>GET works</h1>", path=request.path))


async def _canon(site: FakeSite, request: web.Request) -> web.StreamResponse:
    body = "<article><h1>Same story, two URLs</h1></article>"
    return _html(_page("Same story", body, path="/news/canonical-story.html"))


async def _etag(site: FakeSite, request: web.Request) -> web.StreamResponse:
    headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    if _not_modified(request):
        return web.Response(status=304, headers=headers)
    page = _page("Cacheable", "<h1>Cacheable</h1>", path=request.path)
    return web.Response(text=page, content_type="text/html", headers=headers)


def _not_modified(request: web.Request) -> bool:
    """RFC 9110 §13.1: If-None-Match wins; else If-Modified-Since against LAST_MODIFIED."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return ETAG in [tag.strip() for tag in if_none_match.split(",")] or if_none_match == "*"
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    parsed = email.utils.parsedate_to_datetime(since)
    return parsed >= email.utils.parsedate_to_datetime(LAST_MODIFIED)


async def _robots(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return web.Response(text=ROBOTS_TXT, content_type="text/plain")


async def _private(site: FakeSite, request: web.Request) -> web.StreamResponse:
    return _html(_page("Private", "<h1>Robots may not read this</h1>", path=request.path))


async def _etag_soft404(site: FakeSite, request: web.Request) -> web.StreamResponse:
    headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    if _not_modified(request):
        return web.Response(status=304, headers=headers)
    page = _page("Page not found", "<h1>Sorry, we couldn't find that page</h1>", path=request.path)
    return web.Response(text=page, content_type="text/html", headers=headers)


async def _etag_hub(site: FakeSite, request: web.Request) -> web.StreamResponse:
    body = "<article><h1>Stories with validators</h1></article>"
    aside = _related_aside(("/etag.html", "/news/etag-soft404.html"))
    return _html(_page("Stories with validators", body + aside, path=request.path))


async def _robots_related(site: FakeSite, request: web.Request) -> web.StreamResponse:
    body = "<article><h1>Robots test</h1></article>"
    aside = _related_aside(("/private/story.html", "/news/deep-3.html"))
    return _html(_page("Robots test", body + aside, path=request.path))


async def _big(site: FakeSite, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.content_length = BIG_BYTES
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"
    with contextlib.suppress(ConnectionError):
        for _ in range(BIG_BYTES // len(chunk)):
            await response.write(chunk)
        await response.write(b"x" * (BIG_BYTES % len(chunk)))
    return response


async def _bomb(site: FakeSite, request: web.Request) -> web.StreamResponse:
    if not _BOMB:
        _BOMB.append(await asyncio.to_thread(_gzip_bomb))
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    return web.Response(body=_BOMB[0], headers=headers)


async def _reset(site: FakeSite, request: web.Request) -> web.StreamResponse:
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    if sock is not None:  # SO_LINGER 0: close() sends a TCP RST instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    transport.abort()
    raise asyncio.CancelledError  # nothing more to say on a dead connection


async def _slow_error_page(site: FakeSite, request: web.Request) -> web.StreamResponse:
    """A 404 whose 48 KiB page arrives in two parts, 50 ms apart (not all there at once)."""
    if request.method == "HEAD":
        return web.Response(status=404, content_type="text/html")
    response = web.StreamResponse(status=404, headers={"Content-Type": "text/html"})
    response.content_length = 48 * 1024
    await response.prepare(request)
    await response.write(b"x" * (24 * 1024))
    await asyncio.sleep(0.05)
    await response.write(b"y" * (24 * 1024))
    await response.write_eof()
    return response


async def _cookie_wall(site: FakeSite, request: web.Request) -> web.StreamResponse:
    """A page shown only with the cookie the wall sets; without it, back to the wall."""
    if request.cookies.get("consent") == "yes":
        return _html(_page("Behind the wall", "<h1>Behind the wall</h1>", path=request.path))
    return web.Response(status=302, headers={"Location": "/cookie-wall/consent"})


async def _cookie_consent(site: FakeSite, request: web.Request) -> web.StreamResponse:
    response = web.Response(status=302, headers={"Location": "/cookie-wall/story"})
    response.set_cookie("consent", "yes", path="/")
    return response


_ROUTES: dict[str, Handler] = {
    "/": _front,
    ARTICLE: _article,
    "/news/target.html": _target,
    "/news/plain-refs.txt": _plain,
    "/news/article-1.md": _markdown,
    "/dead": _fixed(404),
    "/gone": _fixed(410),
    "/forbidden": _fixed(403),
    "/auth": _fixed(401),
    "/error": _fixed(500),
    "/flaky": _flaky,
    "/ratelimited": _ratelimited,
    "/always-429": _always_429,
    "/retry-after-date": _retry_after_date,
    "/slow": _slow,
    "/hang": _hang,
    "/loop/a": _redirect("/loop/b", 302),
    "/loop/b": _redirect("/loop/a", 302),
    "/to-home/deep/story": _redirect("/", 302),
    "/soft404": _soft404,
    "/head-405": _head_405,
    "/head-404": _head_404,
    "/canon-a.html": _canon,
    "/canon-b.html": _canon,
    "/etag.html": _etag,
    "/redirect-final-a": _redirect("/news/target.html"),
    "/redirect-final-b": _redirect("/news/target.html"),
    "/robots.txt": _robots,
    "/private/story.html": _private,
    "/robots-related.html": _robots_related,
    "/etag-soft404": _etag_soft404,
    "/etag-hub.html": _etag_hub,
    "/news/etag-soft404.html": _etag_soft404,
    "/big": _big,
    "/gzip-bomb": _bomb,
    "/reset": _reset,
    "/slow-error-page": _slow_error_page,
    "/cookie-wall/story": _cookie_wall,
    "/cookie-wall/consent": _cookie_consent,
}


def _route(path: str) -> Handler:
    """The handler for `path`: exact routes, then the prefix families, else 404."""
    if path in _ROUTES:
        return _ROUTES[path]
    if path.startswith("/redirect/"):
        return _redirect_chain
    if path.startswith("/missing-"):
        return _missing
    if path.startswith("/ratelimited/"):  # one 429 per distinct path
        return _ratelimited
    if path.startswith("/news/"):
        return _story
    return _fixed(404)


# -- fixtures -----------------------------------------------------------------------------
# Import them as `from tests.fakesite import fake_site_fixture` (with noqa F401); importing the
# name `fake_site` itself works too, but then every test parameter trips ruff's F811.
@pytest.fixture(name="fake_site")
def fake_site_fixture() -> Iterator[FakeSite]:
    """A started FakeSite for one test."""
    with FakeSite() as site:
        yield site


@pytest.fixture(name="fake_site_module", scope="module")
def fake_site_module_fixture() -> Iterator[FakeSite]:
    """A started FakeSite shared by a module's tests (call `reset()` between them if needed)."""
    with FakeSite() as site:
        yield site


fake_site = fake_site_fixture
fake_site_module = fake_site_module_fixture
