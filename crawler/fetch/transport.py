"""httpx's transport interface over an aiohttp session: the crawl's default transport.

httpx-aiohttp's `AiohttpTransport` is the model (and was the default until this one): requests
come in as `httpx.Request`, answers go out as `httpx.Response` streaming aiohttp's body, and
aiohttp's exceptions are raised as httpx's. What this one does differently, because a crawl
sends thousands of small GETs and the per-request cost decides its rate:

- the URL goes to aiohttp as httpx already encoded it (`yarl.URL(..., encoded=True)`), not
  parsed and re-quoted a second time;
- the headers go as the raw list httpx holds, not through httpx.Headers' per-key lookups;
- one `ClientTimeout` per distinct timeout setting, not one per request;
- the session keeps no cookie jar of its own (`DummyCookieJar`): httpx's client keeps the
  crawl's cookies, and two jars would answer for them twice;
- exceptions are mapped in an `except` clause, not a context manager around every request.

A request body is sent when there is one (the crawler itself only sends GET and HEAD).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
import yarl

CHUNK_SIZE = 64 * 1024

# aiohttp's exceptions as httpx's, first match wins (httpx-aiohttp's table, with the types
# httpx's own transport raises for the same events: a server hanging up before answering is a
# RemoteProtocolError there, not a ConnectTimeout). The aiohttp exception stays the cause, which
# is what `map_exception` reads first. Anything else (a malformed answer) passes through as is.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.TimeoutException),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
)


def to_httpx_error(exc: Exception) -> httpx.HTTPError | None:
    """The httpx exception standing for an aiohttp one, or None to let it pass as it is."""
    for aiohttp_type, httpx_type in _EXCEPTIONS:
        if isinstance(exc, aiohttp_type):
            return httpx_type(str(exc))
    return None


class AiohttpStream(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx's stream; closing it releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self.response.content
        try:
            while True:
                chunk = await content.read(CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        except aiohttp.ClientError as exc:
            mapped = to_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        """Release the connection to the pool (or close it if the body was not read through)."""
        self.response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport sending through one aiohttp session, made on the first request (inside
    the running event loop) by `make_session`."""

    def __init__(self, make_session: Callable[[], aiohttp.ClientSession]) -> None:
        self._make_session = make_session
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use."""
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        """httpx's connect/read/pool timeouts as aiohttp's (as httpx-aiohttp maps them)."""
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; the answer's body is left on the connection, to be streamed."""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
        ]
        data: bytes | None = None
        # httpx declares every body it encodes (a GET's too); the crawl's own requests carry none.
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            data = await request.aread() or None
        try:
            response = await self.session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except aiohttp.ClientError as exc:
            mapped = to_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpStream(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
