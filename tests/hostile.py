"""A hostile web server on 127.0.0.1: huge, endless, slow, looping, broken and lying answers.

Separate from the friendly `tests/fakesite.py`. Two listeners share one background event loop:
an aiohttp.web app for everything that speaks HTTP (however badly), and a raw TCP server for
connections that never get a proper answer (`silent_url`, `drip_head_url`).

Nothing here is ever materialized whole: the 1 GiB page and both compression bombs are
generated chunk by chunk while the client reads, so the server stays small whatever the client
does. Every endless handler gives up after `ENDLESS_CAP` seconds, and the whole server stops by
itself after `lifetime` seconds even if a test forgets to stop it.

Endpoints (see `_ROUTES`):
  /huge               1 GiB text/html with Content-Length, streamed
  /gzip-bomb          1 GiB of zeros, gzip (about 1 MB on the wire)
  /br-bomb            1 GiB of zeros, brotli (a few KB on the wire)
  /endless            chunked text/html that never ends
  /drip               headers at once, then the body one byte a second
  /loop/a, /loop/b    redirect to each other;  /self redirects to itself
  /chain/N            N more redirects before a page (/chain/50: a 50-hop chain)
  /to/file|javascript|data|ftp|malformed   redirect to an odd location
  /broken, /wrong-charset, /no-charset, /lying-meta, /binary-as-html, /deep-nesting
  /many-links?n=N     a page with N links (100,000 by default), related block included
  /hub?n=N&from=F     a page whose related block lists stories F ... F+N-1 (see `story_path`)
  /story/..., /ok     small good pages;  /slow-ok?delay=S  a good page after S seconds
  /secret...          a good page whatever the query
  /xss, /ansi         pages titled <script>alert(1)</script> / with terminal escape sequences
  /to-secret          redirects to /secret?access_token=...
  /to-self-ip         redirects to http://127.0.0.1:PORT/ok?via=redirect (an IP literal)
  /robots.txt         `robots_txt` (settable)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import brotli
import psutil  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from tests.servers import ThreadedServer, bound_socket

GIB = 1024**3
MIB = 1024**2
ENDLESS_CAP = 60.0  # no handler streams longer than this
DEFAULT_LIFETIME = 300.0
MANY_LINKS = 100_000
XSS = "<script>alert(1)</script>"
ANSI = "\x1b[2J\x1b[31mRED\x1b]8;;http://evil.invalid/\x07link\x1b]8;;\x07\u202eevil"
SECRET_TOKEN = "s3cr3t-T0KEN-value"
ODD_LOCATIONS = {
    "file": "file:///etc/passwd",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "ftp": "ftp://127.0.0.1/pub/file.txt",
    "malformed": "http://[::1/admin",
}

Handler = Callable[["HostileServer", web.Request], Awaitable[web.StreamResponse]]


def page(title: str, body: str = "", head: str = "") -> str:
    """A small well-formed HTML page (the title is inserted as given: callers may want tags)."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def story_path(number: int) -> str:
    """The path of story `number`, shaped like a news story so related-block parsing takes it."""
    return f"/story/a-hostile-story-number-{number}.html"


def related_block(paths: list[str]) -> str:
    """An `<aside class="related">` listing `paths`."""
    items = "".join(f'<li><a href="{p}">Story {p}</a></li>' for p in paths)
    return f'<aside class="related"><h2>Related</h2><ul>{items}</ul></aside>'


# -- compression bombs, generated piece by piece --------------------------------------------
def gzip_bomb_pieces(total: int = GIB) -> Iterator[bytes]:
    """A gzip stream of `total` zero bytes, one MiB of input at a time, with a valid trailer.

    After a full flush deflate's state is reset, so every further MiB compresses to the same
    bytes: the stream is made of one segment repeated, built in milliseconds.
    """
    zeros = bytes(MIB)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)  # gzip header + first MiB
    segment = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(zeros, zlib.crc32(zeros))
    for _ in range(total // MIB - 2):
        crc = zlib.crc32(zeros, crc)
        yield segment
    yield segment
    yield comp.flush()[:-8] + struct.pack("<II", crc, total & 0xFFFFFFFF)


def brotli_bomb_pieces(total: int = GIB) -> Iterator[bytes]:
    """A brotli stream of `total` zero bytes, compressed one MiB at a time."""
    zeros = bytes(MIB)
    comp = brotli.Compressor(quality=5)
    for _ in range(total // MIB):
        out = comp.process(zeros)
        if out:
            yield out
    yield comp.finish()


# -- the server -----------------------------------------------------------------------------
class HostileServer(ThreadedServer):
    """Serves the hostile endpoints on two random ports of 127.0.0.1 from a background thread."""

    def __init__(
        self, lifetime: float = DEFAULT_LIFETIME, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__()
        self.lifetime = lifetime
        self.ssl_context = ssl_context
        self.raw_port = 0
        self.robots_txt = "User-agent: *\nDisallow: /private/\n"
        self.log: list[tuple[float, str, str]] = []  # (monotonic time, method, path and query)
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._raw: asyncio.Server | None = None

    def _sockets(self) -> list[socket.socket]:
        return [bound_socket(), bound_socket()]  # the app, and a raw listener that never answers

    async def _setup_extra(self, sockets: list[socket.socket]) -> None:
        self.raw_port = int(sockets[1].getsockname()[1])
        self._raw = await asyncio.start_server(self._raw_client, sock=sockets[1])

    async def _close_extra(self) -> None:
        if self._raw is not None:
            self._raw.close()

    # -- test controls ---------------------------------------------------------------------
    @property
    def silent_url(self) -> str:
        """A URL whose server accepts the connection and never answers."""
        return f"http://127.0.0.1:{self.raw_port}/silent"

    @property
    def drip_head_url(self) -> str:
        """A URL whose server sends its status line and headers one byte a second."""
        return f"http://127.0.0.1:{self.raw_port}/drip-head"

    def hits(self, prefix: str) -> int:
        """Requests whose path (and query) starts with `prefix`."""
        with self._lock:
            return sum(1 for _, _, path in self.log if path.startswith(prefix))

    def times(self, prefix: str) -> list[float]:
        """Monotonic arrival times of the requests whose path starts with `prefix`."""
        with self._lock:
            return [t for t, _, path in self.log if path.startswith(prefix)]

    # -- serving ---------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.log.append((time.monotonic(), request.method, request.path_qs))
            self.authorizations.append(request.headers.get("Authorization"))
        return await _route(request.path)(self, request)

    async def pause(self, seconds: float) -> bool:
        """Sleep `seconds`; False when the server is stopping (the caller should give up)."""
        return await self.wait_or_stop(seconds)

    async def stream(
        self, request: web.Request, pieces: Iterator[bytes], response: web.StreamResponse
    ) -> web.StreamResponse:
        """Send `pieces` until they end, the client goes, the server stops or ENDLESS_CAP passes."""
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        deadline = time.monotonic() + ENDLESS_CAP
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            for piece in pieces:
                if time.monotonic() > deadline or self.stopping:
                    break
                await response.write(piece)
                self.bytes_sent += len(piece)
        return response

    async def _raw_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The raw listener: read the request line, then never answer, or answer a byte a second."""
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            with self._lock:
                self.log.append((time.monotonic(), "RAW", line.decode("latin-1").strip()))
            if b"/drip-head" in line:
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok"
                for byte in head:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    if not await self.pause(1.0):
                        break
            else:
                await self.pause(ENDLESS_CAP)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()


# -- handlers -------------------------------------------------------------------------------
def _html(
    text: str | bytes, status: int = 200, content_type: str = "text/html; charset=utf-8"
) -> web.Response:
    body = text.encode("utf-8") if isinstance(text, str) else text
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


async def _huge(server: HostileServer, request: web.Request) -> web.StreamResponse:
    chunk = b"<p>" + b"x" * (64 * 1024 - 8) + b"</p>\n"
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.content_length = GIB
    pieces = (chunk for _ in range(GIB // len(chunk)))
    return await server.stream(request, pieces, response)


def _bomb(encoding: str, pieces: Callable[[], Iterator[bytes]]) -> Handler:
    async def handler(server: HostileServer, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "text/html", "Content-Encoding": encoding}
        return await server.stream(request, pieces(), web.StreamResponse(headers=headers))

    return handler


async def _endless(server: HostileServer, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.enable_chunked_encoding()
    piece = b"<p>" + b"y" * (16 * 1024) + b"</p>\n"
    return await server.stream(request, iter(lambda: piece, None), response)


async def _drip(server: HostileServer, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.content_length = 10_000
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        for _ in range(10_000):
            await response.write(b"x")
            if not await server.pause(1.0):
                break
    return response


def _redirect(location: str, status: int = 302) -> Handler:
    async def handler(server: HostileServer, request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


async def _chain(server: HostileServer, request: web.Request) -> web.StreamResponse:
    try:
        left = int(request.path.rsplit("/", 1)[-1])
    except ValueError:
        return web.Response(status=400)
    if left <= 0:
        return _html(page("End of the chain"))
    return web.Response(
        status=(301, 302, 307, 308)[left % 4], headers={"Location": f"/chain/{left - 1}"}
    )


async def _to(server: HostileServer, request: web.Request) -> web.StreamResponse:
    kind = request.path.rsplit("/", 1)[-1]
    return web.Response(status=302, headers={"Location": ODD_LOCATIONS.get(kind, "/ok")})


async def _broken(server: HostileServer, request: web.Request) -> web.StreamResponse:
    body = (
        "<html><head><title>Broken <b>page</title><meta charset=><<<>>></head>"
        "<body><div><p><a href='/ok'>ok<a href=\"/story/x-y-z\">one</div></p></table></td>"
        f'<aside class=related><ul><li><a href={story_path(2)}>two<li><a href="/story/3>three'
        f"<!-- unclosed comment <script>var x = '</script>'; <a href={story_path(4)}>"
        "\x00\x01\x02 stray NULs &#0; &#xD800; &bogus; <a href='javascript:alert(1)'>js</a>"
    )
    return _html(body)


async def _wrong_charset(server: HostileServer, request: web.Request) -> web.StreamResponse:
    # Header says UTF-8; the bytes are windows-1252 ("é" is a lone 0xE9).
    body = page("Caf\xe9 cr\xe8me", related_block([story_path(1)])).encode("cp1252")
    return _html(
        body.replace(b'<meta charset="utf-8">', b""), content_type="text/html; charset=utf-8"
    )


async def _no_charset(server: HostileServer, request: web.Request) -> web.StreamResponse:
    body = page("Stra\xdfe und Gr\xfc\xdfe", related_block([story_path(2)])).encode("latin-1")
    return _html(body.replace(b'<meta charset="utf-8">', b""), content_type="text/html")


async def _lying_meta(server: HostileServer, request: web.Request) -> web.StreamResponse:
    body = page("Meta says UTF-16", related_block([story_path(3)])).replace(
        '<meta charset="utf-8">', '<meta charset="utf-16"><meta charset="x-no-such-charset">'
    )
    return _html(body.encode("utf-8"), content_type="text/html; charset=no-such-charset")


async def _binary(server: HostileServer, request: web.Request) -> web.StreamResponse:
    data = random.Random(5).randbytes(512 * 1024)
    return _html(data, content_type="text/html")


async def _deep_nesting(server: HostileServer, request: web.Request) -> web.StreamResponse:
    depth = 50_000
    body = "<div>" * depth + related_block([story_path(1)]) + "</div>" * depth
    return _html(page("Deep", body))


async def _many_links(server: HostileServer, request: web.Request) -> web.StreamResponse:
    count = min(int(request.query.get("n", MANY_LINKS)), 1_000_000)
    links = "".join(f'<a href="{story_path(i)}">s{i}</a>\n' for i in range(count))
    aside = related_block([story_path(i) for i in range(count)])
    return _html(page("Many links", f"<main>{links}</main>{aside}"))


async def _hub(server: HostileServer, request: web.Request) -> web.StreamResponse:
    count = min(int(request.query.get("n", 5)), 1000)
    first = int(request.query.get("from", 1))
    stories = [story_path(i) for i in range(first, first + count)]
    return _html(page("Hub", related_block(stories)))


async def _story(server: HostileServer, request: web.Request) -> web.StreamResponse:
    number = request.path.rsplit("-", 1)[-1].removesuffix(".html")
    return _html(page(f"Story {number}", "<p>Some text.</p>"))


async def _ok(server: HostileServer, request: web.Request) -> web.StreamResponse:
    return _html(page("A good page", "<p>Fine.</p>"))


async def _slow_ok(server: HostileServer, request: web.Request) -> web.StreamResponse:
    delay = min(float(request.query.get("delay", "0.5")), ENDLESS_CAP)
    await server.pause(delay)
    return _html(page("A slow good page", "<p>Fine, eventually.</p>"))


async def _xss(server: HostileServer, request: web.Request) -> web.StreamResponse:
    body = f'<p>{XSS}</p><aside class="related"><a href="{story_path(9)}">{XSS}</a></aside>'
    return _html(page(XSS, body))


async def _ansi(server: HostileServer, request: web.Request) -> web.StreamResponse:
    return _html(page(ANSI))


async def _robots(server: HostileServer, request: web.Request) -> web.StreamResponse:
    return web.Response(text=server.robots_txt, content_type="text/plain")


async def _to_self_ip(server: HostileServer, request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": server.url("/ok?via=redirect")})


async def _not_found(server: HostileServer, request: web.Request) -> web.StreamResponse:
    return _html(page("Not found"), status=404)


_ROUTES: dict[str, Handler] = {
    "/huge": _huge,
    "/gzip-bomb": _bomb("gzip", gzip_bomb_pieces),
    "/br-bomb": _bomb("br", brotli_bomb_pieces),
    "/endless": _endless,
    "/drip": _drip,
    "/loop/a": _redirect("/loop/b"),
    "/loop/b": _redirect("/loop/a"),
    "/self": _redirect("/self", 301),
    "/broken": _broken,
    "/wrong-charset": _wrong_charset,
    "/no-charset": _no_charset,
    "/lying-meta": _lying_meta,
    "/binary-as-html": _binary,
    "/deep-nesting": _deep_nesting,
    "/many-links": _many_links,
    "/hub": _hub,
    "/ok": _ok,
    "/slow-ok": _slow_ok,
    "/xss": _xss,
    "/ansi": _ansi,
    "/to-secret": _redirect(f"/secret?access_token={SECRET_TOKEN}&page=2"),
    "/robots.txt": _robots,
    "/to-self-ip": _to_self_ip,
}


def _route(path: str) -> Handler:
    """The handler for `path`: exact routes, then the prefix families, else 404."""
    if path in _ROUTES:
        return _ROUTES[path]
    for prefix, handler in (("/chain/", _chain), ("/to/", _to), ("/story/", _story)):
        if path.startswith(prefix):
            return handler
    if path.startswith("/secret"):
        return _ok
    return _not_found


# -- measuring ------------------------------------------------------------------------------
class RssPeak:
    """Samples this process's RSS in a thread while in use; `peak_growth` is the peak over start."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start_rss = 0
        self.peak_rss = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._process = psutil.Process()

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self.start_rss = self.peak_rss = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    @property
    def peak_growth(self) -> int:
        """Bytes the RSS rose above its value at the start, at its highest."""
        return self.peak_rss - self.start_rss


# -- running the real CLI -------------------------------------------------------------------
def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a CLI child: no config file, the store under `tmp_path`, `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.update(CRAWLER_CONFIG="", CRAWLER_DATA_DIR=str(tmp_path / "data"), NO_COLOR="1")
    env.update(extra)
    return env


def run_cli(
    args: list[str], tmp_path: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m crawler ARGS` in `tmp_path` and capture its output (bounded in time)."""
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args],
        cwd=tmp_path,
        env=dict(env) if env is not None else cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(name="hostile", scope="module")
def hostile_fixture() -> Iterator[HostileServer]:
    """A started HostileServer shared by a module's tests."""
    with HostileServer() as server:
        yield server


@pytest.fixture(name="hostile_fresh")
def hostile_fresh_fixture() -> Iterator[HostileServer]:
    """A HostileServer of one test's own (for tests that stop it or change robots.txt)."""
    with HostileServer() as server:
        yield server
