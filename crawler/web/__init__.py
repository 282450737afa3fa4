"""The dashboard: a small read-mostly web UI over the store (aiohttp.web, no other framework).

    serve_dashboard(settings, host="127.0.0.1", port=8080, token=None)   # blocks until SIGTERM
    create_app(store, token=..., actions=...)                            # for tests and embedding

Pages are rendered by `pages.py` (pure), data read by `queries.py` (read-only), metrics by
`metrics.py` (pure); `app.py` holds the routes and the token gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from crawler.config import Settings
from crawler.store import Store
from crawler.web.actions import StoreWatchActions
from crawler.web.app import WatchActions, create_app

TOKEN_ENV = "CRAWLER_DASHBOARD_TOKEN"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one); OSError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def serve_dashboard(
    settings: Settings,
    *,
    host: str,
    port: int,
    token: str | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Open the store, serve the dashboard until SIGINT or SIGTERM, then close everything."""
    sock = bind_socket(host, port)
    with Store.open(settings.store.url()) as store:
        actions = StoreWatchActions(store, settings) if token else None
        app = create_app(store, token=token, actions=actions)
        asyncio.run(_serve(app, sock, ready))


async def _serve(
    app: web.Application, sock: socket.socket, ready: Callable[[str], None] | None
) -> None:
    """Run the app on `sock`, report its URL, wait for a stop signal."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        if ready is not None:
            shown = f"[{host}]" if ":" in host else host
            ready(f"http://{shown}:{port}/")
        await _wait_for_signal()
    finally:
        await runner.cleanup()


async def _wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


__all__ = [
    "TOKEN_ENV",
    "StoreWatchActions",
    "WatchActions",
    "create_app",
    "serve_dashboard",
]
