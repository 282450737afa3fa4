"""HTTP/1.1 against HTTP/2: raw GET loops over TLS, on a server that speaks both.

The main fake web is plain HTTP, where a client gets HTTP/2 only with prior knowledge, which
no real `http://` site offers; real HTTP/2 is negotiated by TLS (ALPN). So this bench serves
the flat workload's shape — N URLs over 50 hosts (127.0.0.2-51), the set latency per answer,
a 15 KB page each — from hypercorn over TLS with a throw-away CA (trustme), and runs, one
subprocess each and interleaved: httpx with HTTP/1.1, httpx with HTTP/2 (the `h2` package),
and aiohttp (HTTP/1.1 only), at the same concurrency. Each client reports its own wall time,
CPU and the protocol every response came over.

    python -m bench.h2 --runs 3            # a markdown table of medians on stdout

The server stops by itself after `--lifetime` seconds; every client has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.measure import median

HOSTS = 50
PAGE = b"<!doctype html><html><body><p>" + b"x" * 15_000 + b"</p></body></html>"
CLIENTS = ("httpx-h1", "httpx-h2", "aiohttp-h1")
CLIENT_TIMEOUT = 120.0  # seconds per client run
REQUEST_TIMEOUT = 10.0


def host_ips(hosts: int = HOSTS) -> list[str]:
    """The loopback addresses the server binds: 127.0.0.2 on."""
    return [f"127.0.0.{2 + i}" for i in range(hosts)]


def make_certs(folder: Path, ips: list[str]) -> tuple[Path, Path]:
    """A CA and a server certificate for `ips`; returns (ca.pem, server.pem with its key)."""
    import trustme

    ca = trustme.CA()
    ca_path, server_path = folder / "ca.pem", folder / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ca.issue_cert(*ips).private_key_and_cert_chain_pem.write_to_path(str(server_path))
    return ca_path, server_path


# -- the server --------------------------------------------------------------------------------


def make_app(latency: float) -> Callable[..., Awaitable[None]]:
    """An ASGI app: every GET waits `latency` seconds, then answers 200 with PAGE."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await asyncio.sleep(latency)
        headers = [(b"content-type", b"text/html"), (b"content-length", str(len(PAGE)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE})

    return app


async def serve(port: int, certfile: Path, latency: float, lifetime: float, hosts: int) -> None:
    """Serve until `lifetime` seconds have passed (the bench never leaves a server behind)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{ip}:{port}" for ip in host_ips(hosts)]
    config.certfile = config.keyfile = str(certfile)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = config.errorlog = None
    config.h2_max_concurrent_streams = 1000
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(lifetime, stop.set)
    await hypercorn_serve(make_app(latency), config, shutdown_trigger=stop.wait)


# -- the clients -------------------------------------------------------------------------------


def tls_context(ca: Path, *, h2: bool) -> ssl.SSLContext:
    """Verify against the bench's CA, offering h2 (when the client speaks it) and http/1.1."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"] if h2 else ["http/1.1"])
    return context


async def _loop(
    urls: list[str], get: Callable[[str], Awaitable[str]], concurrency: int
) -> Counter[str]:
    """GET every URL, `concurrency` at once: how many answers came over each protocol."""
    semaphore = asyncio.Semaphore(concurrency)
    seen: Counter[str] = Counter()

    async def one(url: str) -> None:
        async with semaphore:
            try:
                seen[await get(url)] += 1
            except Exception as exc:  # counted, so a failing client shows in the table
                seen[f"error {type(exc).__name__}"] += 1

    await asyncio.gather(*(one(u) for u in urls))
    return seen


async def run_client(kind: str, urls: list[str], ca: Path, concurrency: int) -> Counter[str]:
    """One client kind over `urls`; the protocol of each answer (or the error)."""
    if kind.startswith("httpx"):
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            verify=tls_context(ca, h2=kind == "httpx-h2"),
            http1=kind == "httpx-h1",
            http2=kind == "httpx-h2",
            limits=limits,
            timeout=REQUEST_TIMEOUT,
        ) as client:

            async def get_httpx(url: str) -> str:
                response = await client.get(url)
                await response.aread()
                return f"{response.status_code} {response.http_version}"

            return await _loop(urls, get_httpx, concurrency)
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, ssl=tls_context(ca, h2=False))
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get_aiohttp(url: str) -> str:
            async with session.get(url) as response:
                await response.read()
                return f"{response.status} HTTP/{response.version.major}.{response.version.minor}"

        return await _loop(urls, get_aiohttp, concurrency)


def client_main(args: argparse.Namespace) -> None:
    """Run one client and print its figures as JSON (wall and CPU of the loop alone)."""
    urls = [
        f"https://{ip}:{args.port}/story/{i}"
        for i, ip in zip(range(args.n), host_ips() * (args.n // HOSTS + 1), strict=False)
    ]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    seen = asyncio.run(run_client(args.client, urls, Path(args.ca), args.concurrency))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(json.dumps({"wall": wall, "cpu": cpu, "answers": dict(seen)}))


# -- the bench ---------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, deadline: float) -> None:
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host_ips()[-1], port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the HTTP/2 bench server did not start")


def measure(
    runs: int, n: int, concurrency: int, latency: float, clients: tuple[str, ...] = CLIENTS
) -> dict[str, list[dict[str, Any]]]:
    """Start the server, run each client `runs` times interleaved; every run's figures."""
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in clients}
    lifetime = 60.0 + runs * len(clients) * CLIENT_TIMEOUT
    with tempfile.TemporaryDirectory(prefix="bench-h2-") as tmp:
        ca, server_pem = make_certs(Path(tmp), host_ips())
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.h2", "--serve", "--port", str(port),
             "--cert", str(server_pem), "--latency", str(latency), "--lifetime", str(lifetime)],
        )  # fmt: skip
        try:
            _wait_listening(port, time.monotonic() + 30)
            for _ in range(runs):
                for kind in clients:
                    results[kind].append(_one_client(kind, port, ca, n, concurrency))
        finally:
            server.terminate()
            server.wait(10)
    return results


def _one_client(kind: str, port: int, ca: Path, n: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.h2", "--client", kind, "--port", str(port),
               "--ca", str(ca), "--n", str(n), "--concurrency", str(concurrency)]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=True
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def table(results: dict[str, list[dict[str, Any]]], n: int) -> str:
    """Medians per client as a markdown table."""
    lines = [
        "| client | runs | req/s (client, all requests) | wall s | CPU s | ms CPU per request "
        "| answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, runs in results.items():
        wall = median([r["wall"] for r in runs])
        cpu = median([r["cpu"] for r in runs])
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(runs[-1]["answers"].items()))
        lines.append(
            f"| {kind} | {len(runs)} | {n / wall:,.0f} | {wall:.2f} | {cpu:.2f} "
            f"| {1000 * cpu / n:.3f} | {answers} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="URLs (over 50 hosts)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.port, Path(args.cert), args.latency, args.lifetime, HOSTS))
    elif args.client:
        client_main(args)
    else:
        results = measure(args.runs, args.n, args.concurrency, args.latency)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        print(table(results, args.n))


if __name__ == "__main__":
    main()
