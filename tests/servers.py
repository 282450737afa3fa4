"""A real HTTP server on 127.0.0.1 in a background thread: the base of the tests' fake sites.

The server runs its own event loop in its own thread, so synchronous tests (a CLI subprocess)
and async tests (the crawler in-process) can both talk to it. Subclasses say which sockets to
bind and what to serve; this class starts, stops and bounds their lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from types import TracebackType
from typing import Self

from aiohttp import web

START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def bound_socket() -> socket.socket:
    """A TCP socket bound to a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ThreadedServer:
    """Start/stop/lifetime for an aiohttp app (plus any extra listeners) served from a thread."""

    lifetime: float | None = None  # seconds until the server stops itself, None: never

    def __init__(self) -> None:
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- what subclasses provide ---------------------------------------------------------
    def _sockets(self) -> list[socket.socket]:
        """The listening sockets, bound; the first serves the app (override to add more)."""
        return [bound_socket()]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def _setup_extra(self, sockets: list[socket.socket]) -> None:
        """Start listeners besides the app's (the sockets after the first)."""

    async def _close_extra(self) -> None:
        """Close what `_setup_extra` started."""

    ssl_context: ssl.SSLContext | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        """Bind, serve in a background thread, return self."""
        sockets = self._sockets()
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{sockets[0].getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sockets, ready), daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def _serve(self, sockets: list[socket.socket], ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._setup(sockets))
        if self.lifetime is not None:  # orphaned or forgotten, it still stops by itself
            self._loop.call_later(self.lifetime, lambda: asyncio.ensure_future(self._shutdown()))
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _setup(self, sockets: list[socket.socket]) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sockets[0], ssl_context=self.ssl_context).start()
        await self._setup_extra(sockets)

    def stop(self) -> None:
        """Stop serving (hanging requests are released) and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout=STOP_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT)
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        assert self._stopping is not None and self._runner is not None
        if self._stopping.is_set():
            return
        self._stopping.set()
        await self._close_extra()
        await self._runner.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for handlers and tests ----------------------------------------------------
    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def stopping(self) -> bool:
        """True once the server has begun to stop."""
        return self._stopping is not None and self._stopping.is_set()

    async def wait_or_stop(self, seconds: float | None) -> bool:
        """Sleep `seconds` (forever if None) or until the server stops; False if it stopped."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()
