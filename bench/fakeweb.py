"""A fast fake web on many loopback addresses, in its own process, with request counters.

Run as `python -m bench.fakeweb --workload flat`; it binds 127.0.0.2 ... 127.0.0.51 on one
port, prints `READY <port>` and serves until `/__quit`, its maximum lifetime, or its parent's
death. `FakeWeb` is the bench's handle on such a process.

Control endpoints (never counted): `/__stats` (JSON), `/__reset` (`?state=0` keeps the
flaky/429 memory, for a re-check), `/__article.html`, `/__article.txt`, `/__quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from bench.workload import (
    DEEP_DEPTH,
    FIRST_HOST,
    Entry,
    Kind,
    Workload,
    build_workload,
    etag_of,
    render_flat_article,
    render_html_article,
)

DEFAULT_LATENCY = 0.020
SLOW_SECONDS = 2.0
MAX_LIFETIME = 15 * 60.0
LAST_MODIFIED = "Mon, 06 Jan 2025 10:00:00 GMT"
# aiohttp adds `Server:` and `Date:` to every answer; counted as a constant (bytes).
IMPLICIT_HEADER_BYTES = 80
_WORDS = ("the", "minister", "said", "talks", "on", "bases", "would", "resume", "after", "court")
_FILLER = " ".join(random.Random(1).choice(_WORDS) for _ in range(8000))


class Stats:
    """Request timestamps and byte counts since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every counted request."""
        self.stamps: list[float] = []
        self.first_stamps: list[float] = []  # the first request for each path only
        self.bytes_out = 0
        self.bytes_in = 0
        self.statuses: Counter[int] = Counter()
        self.methods: Counter[str] = Counter()
        self.paths: set[str] = set()
        self.beyond_depth = 0
        self.cpu_at_reset = time.process_time()

    def summary(self) -> dict[str, Any]:
        """Counters plus the request rate between the 1st and 99th percentile request, over all
        requests and over the first request for each path (retries and re-fetches left out)."""
        stamps = sorted(self.stamps)
        rate = rate_p1_p99(stamps)
        return {
            "requests": len(stamps),
            "rate_p1_p99": rate,
            "first_rate_p1_p99": rate_p1_p99(sorted(self.first_stamps)),
            "span": stamps[-1] - stamps[0] if stamps else 0.0,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "methods": dict(self.methods),
            "unique_paths": len(self.paths),
            "beyond_depth": self.beyond_depth,
            "server_cpu": time.process_time() - self.cpu_at_reset,
        }


def rate_p1_p99(stamps: list[float]) -> float | None:
    """Requests per second between the 1st and the 99th percentile of sorted arrival times."""
    if len(stamps) < 20:
        return None
    lo, hi = int(0.01 * (len(stamps) - 1)), int(0.99 * (len(stamps) - 1))
    span = stamps[hi] - stamps[lo]
    return (hi - lo) / span if span > 0 else None


class FakeSite:
    """Answers every request from the workload table, with latency and one-shot failures."""

    def __init__(self, workload: Workload, port: int, latency: float) -> None:
        self.workload = workload
        self.port = port
        self.latency = latency
        self.stats = Stats()
        self.hits: Counter[str] = Counter()  # flaky / 429 memory
        self.quit = asyncio.Event()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve one request: control endpoints first, then the fake web."""
        if request.path.startswith("/__"):
            return self.control(request)
        arrived = time.monotonic()  # arrival, so a slow page counts when it was asked for
        await asyncio.sleep(self.latency)
        response = await self.answer(request)
        if "LinkChecker" in request.headers.get("User-Agent", ""):
            # LinkChecker's documented opt-in: a site answering with a `LinkChecker` header lets
            # it go above 10 requests per second per host (its `maxrequestspersecond`).
            response.headers["LinkChecker"] = "ok"
        self.count(request, response, arrived)
        return response

    def count(self, request: web.BaseRequest, response: web.Response, arrived: float) -> None:
        """Add one answered request to the counters."""
        stats = self.stats
        stats.stamps.append(arrived)
        if request.path not in stats.paths:
            stats.first_stamps.append(arrived)
        stats.statuses[response.status] += 1
        stats.methods[request.method] += 1
        stats.paths.add(request.path)
        body = 0 if request.method == "HEAD" else response.content_length or 0
        head = sum(len(k) + len(v) + 4 for k, v in response.headers.items())
        stats.bytes_out += 17 + head + IMPLICIT_HEADER_BYTES + body
        stats.bytes_in += (
            len(request.raw_path) + 16 + sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
        )
        entry = self.workload.entries.get(request.path)
        if entry is not None and entry.depth > DEEP_DEPTH:
            stats.beyond_depth += 1

    def control(self, request: web.BaseRequest) -> web.Response:
        """The bench's own endpoints; never counted."""
        path = request.path
        if path == "/__stats":
            return web.json_response(self.stats.summary())
        if path == "/__stamps":  # arrival times (monotonic), for a timeline of one run
            first = request.query.get("first") == "1"  # the first request for each path only
            return web.json_response(
                sorted(self.stats.first_stamps if first else self.stats.stamps)
            )
        if path == "/__reset":
            self.stats.reset()
            if request.query.get("state", "1") != "0":
                self.hits.clear()
            return web.json_response({"reset": True})
        if path == "/__article.html":
            return _html(render_html_article(self.workload, self.port))
        if path == "/__article.txt":
            return web.Response(text=render_flat_article(self.workload, self.port))
        if path == "/__quit":
            self.quit.set()
            return web.json_response({"quit": True})
        return web.Response(status=404, text="unknown control endpoint")

    async def answer(self, request: web.BaseRequest) -> web.Response:
        """The fake web's answer for one path."""
        path = request.path
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        entry = self.workload.entries.get(path)
        if entry is None:
            return _html(_error_page(404, "Not Found"), 404)
        kind = entry.kind
        if kind is Kind.DEAD:
            return _html(
                _error_page(entry.status, "Not Found" if entry.status == 404 else "Gone"),
                entry.status,
            )
        if kind is Kind.BLOCKED:
            return _html(_error_page(403, "Forbidden"), 403)
        if kind is Kind.REDIRECT and entry.target is not None:
            location = self.workload.url(entry.target, self.port)
            return web.Response(status=entry.status, headers={"Location": location})
        if kind in (Kind.FLAKY, Kind.RATE_LIMITED):
            self.hits[path] += 1
            if self.hits[path] == 1:
                return _one_shot_failure(kind)
        if kind is Kind.SLOW:
            await asyncio.sleep(SLOW_SECONDS)
        return self.page(request, entry)

    def page(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        """An article page (or a soft 404), honouring conditional requests."""
        etag = etag_of(entry.path)
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in request.headers
            and request.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            return web.Response(status=304, headers=validators)
        return _html(self.render_page(entry), 200, validators)

    def render_page(self, entry: Entry) -> str:
        """10-30 KB of HTML: title, canonical, text, and a related block when it has one."""
        url = self.workload.url(entry.path, self.port)
        size = 10_000 + int(etag_of(entry.path)[1:9], 16) % 20_000
        if entry.kind is Kind.SOFT404:
            title, h1 = "Page not found", "Sorry, we couldn't find that page"
        else:
            title, h1 = entry.title, entry.title
        related = ""
        if entry.related:
            items = "".join(
                f'<li><a href="{self.workload.url(p, self.port)}">'
                f"{self.workload.entries[p].title}</a></li>"
                for p in entry.related
            )
            related = f'<aside class="related"><h2>Related</h2><ul>{items}</ul></aside>'
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<link rel="canonical" href="{url}">'
            '<meta property="article:published_time" content="2025-01-06T10:00:00Z"></head>'
            f'<body><header><nav><a href="/">Home</a></nav></header><article><h1>{h1}</h1>'
            f"<p>{_FILLER[:size]}</p></article>{related}"
            "<footer>(c) Fake News</footer></body></html>"
        )


def _html(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=headers)


def _error_page(status: int, reason: str) -> str:
    return (
        f"<!doctype html><html><head><title>{status} {reason}</title></head>"
        f"<body><h1>{status} {reason}</h1><p>{_FILLER[:600]}</p></body></html>"
    )


def _one_shot_failure(kind: Kind) -> web.Response:
    if kind is Kind.RATE_LIMITED:
        return _html(_error_page(429, "Too Many Requests"), 429, {"Retry-After": "1"})
    return _html(_error_page(503, "Service Unavailable"), 503)


# -- the server process ---------------------------------------------------------------------------


async def _bind(handler: web.Server, hosts: int, tries: int = 30) -> tuple[web.ServerRunner, int]:
    """Bind every 127.0.0.x address on one free port, trying a bounded number of random ports."""
    rng = random.Random()
    for _ in range(tries):
        port = rng.randint(20_000, 60_000)
        runner = web.ServerRunner(handler, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            for i in range(hosts):
                await web.TCPSite(runner, f"127.0.0.{FIRST_HOST + i}", port, backlog=1024).start()
        except OSError:
            await runner.cleanup()
            continue
        return runner, port
    raise OSError("no free port found for the fake web")


async def _watch(site: FakeSite, parent: int, lifetime: float) -> None:
    """Stop on /__quit, after the maximum lifetime, or when the parent process is gone."""
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline and not site.quit.is_set():
        if os.getppid() != parent:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(site.quit.wait(), timeout=1.0)


async def serve(
    workload_name: str, hosts: int, latency: float, lifetime: float, scale: float
) -> None:
    """Serve a workload until told to stop, printing `READY <port>` once bound."""
    workload = build_workload(workload_name, hosts=hosts, scale=scale)
    site = FakeSite(workload, 0, latency)
    runner, port = await _bind(web.Server(site.handle, access_log=None), hosts)
    site.port = port
    print(f"READY {port}", flush=True)
    try:
        await _watch(site, os.getppid(), lifetime)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Command line of the server process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=("flat", "deep"), default="flat")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY)
    parser.add_argument("--lifetime", type=float, default=MAX_LIFETIME)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.workload, args.hosts, args.latency, args.lifetime, args.scale))


# -- the bench's handle on a server process -------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeWeb:
    """Start the fake web in a subprocess, talk to its control endpoints, stop it."""

    def __init__(
        self,
        workload: str,
        *,
        hosts: int = 50,
        latency: float = DEFAULT_LATENCY,
        lifetime: float = MAX_LIFETIME,
        scale: float = 1.0,
    ) -> None:
        self.workload = build_workload(workload, hosts=hosts, scale=scale)
        self.args = [
            sys.executable, "-m", "bench.fakeweb", "--workload", workload, "--hosts", str(hosts),
            "--latency", str(latency), "--lifetime", str(lifetime), "--scale", str(scale),
        ]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> FakeWeb:
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(self.args, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server exits (EOF) if it cannot bind
        if not line.startswith("READY "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"fake web did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.get("/__quit")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    @property
    def base(self) -> str:
        """The control address (the first fake host)."""
        return f"http://127.0.0.{FIRST_HOST}:{self.port}"

    def get(self, path: str) -> bytes:
        """GET a control endpoint."""
        with _OPENER.open(self.base + path, timeout=10) as response:
            body: bytes = response.read()
            return body

    def stats(self) -> dict[str, Any]:
        """The server's counters since the last reset."""
        data: dict[str, Any] = json.loads(self.get("/__stats"))
        return data

    def stamps(self, *, first: bool = False) -> list[float]:
        """Arrival times (monotonic seconds, sorted) of every request since the last reset, or
        of the first request for each path."""
        data: list[float] = json.loads(self.get("/__stamps" + ("?first=1" if first else "")))
        return data

    def reset(self, *, state: bool = True) -> None:
        """Zero the counters; with `state`, also forget which flaky/429 URLs were already hit."""
        self.get("/__reset" + ("" if state else "?state=0"))

    def url(self, path: str) -> str:
        """Absolute URL of a workload path."""
        return self.workload.url(path, self.port)


if __name__ == "__main__":
    main()
