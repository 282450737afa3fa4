"""The httpx client of a crawl: transport, limits, hooks, address checks at connection time."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpcore import SOCKET_OPTION as SocketOption

from crawler.config import FetchSettings
from crawler.fetch.errors import PrivateAddressError
from crawler.fetch.policy import REDIRECT_STATUSES
from crawler.fetch.transport import AiohttpTransport

if TYPE_CHECKING:
    pass
from crawler.urls import (
    is_private_address,
)

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"


# httpx builds the next request of a redirect even with follow_redirects=False, and raises on a
# Location it cannot parse (javascript:, "http://[bad"), losing the response. A response hook
# moves Location aside so that only `_follow` interprets it.
LOCATION_HEADER = "x-crawler-location"


KEEPALIVE_EXPIRY = 5.0

NO_BODY = httpx.ByteStream(b"")


MAX_HEADER_LINE = 16 * 1024  # aiohttp's default of 8190 rejects real sites' long cookies


# What the address check is given: host and port in, the addresses it resolves to out.
Resolve = Callable[[str, int | None], Awaitable[list[str]]]


def move_credentials(request: httpx.Request) -> None:
    """Send `user:pass@` as Basic auth (as httpx does) and take it out of the transport's URL."""
    url = request.url
    if not (url.username or url.password):
        return
    if "authorization" not in request.headers:
        token = base64.b64encode(f"{url.username}:{url.password}".encode()).decode("ascii")
        request.headers["Authorization"] = f"Basic {token}"
    request.url = url.copy_with(username=None, password=None)


def never_resolves(host: str) -> bool:
    """RFC 6761 §6.4: names under `.invalid` never resolve, and resolvers should say so at once.

    Answering here keeps such lookups off the network altogether (the tests rely on it).
    """
    name = host.lower().rstrip(".")
    return name == "invalid" or name.endswith(".invalid")


def unresolvable(host: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known (RFC 6761)")


async def resolve_host(host: str, port: int | None) -> list[str]:
    """The addresses `host` resolves to, from the system resolver (getaddrinfo)."""
    if never_resolves(host):
        raise unresolvable(host)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in infos]


class PublicOnlyResolver(AbstractResolver):
    """aiohttp resolver refusing hosts with a private address: what is checked is what is used."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The inner resolver's answer; PrivateAddressError if any address is private."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if is_private_address(result["host"]):
                raise PrivateAddressError(
                    f"{host} resolves to a private address ({result['host']})"
                )
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend for httpx's own transport, doing what `PublicOnlyResolver` does
    for aiohttp: resolve the host, refuse it if any address is private, and connect to an
    address that was checked (so a DNS answer that changes after the Fetcher's own check, DNS
    rebinding, cannot reach an internal address). TLS still verifies the host name: httpcore
    passes the origin's name to `start_tls`, whatever address the socket went to.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend, resolve: Resolve) -> None:
        self._inner = inner
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first checked address of `host` that accepts."""
        addresses = await self._resolve(host, port)
        for address in addresses:
            if is_private_address(address):
                raise PrivateAddressError(f"{host} resolves to a private address ({address})")
        error: Exception = OSError(f"{host}: no address to connect to")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (OSError, httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are not reached from URLs; passed through."""
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Passed through."""
        await self._inner.sleep(seconds)


async def _hide_location(response: httpx.Response) -> None:
    """Response hook: move a redirect's Location where httpx's own redirect logic won't see it."""
    if response.status_code not in REDIRECT_STATUSES:
        return
    location = response.headers.get("location")
    if location is not None:
        response.headers[LOCATION_HEADER] = location
        del response.headers["location"]


def install_hook(client: httpx.AsyncClient) -> None:
    """Make sure `client` hides Location from httpx (a client passed in may lack the hook)."""
    hooks = client.event_hooks
    if _hide_location not in hooks["response"]:
        hooks["response"] = [*hooks["response"], _hide_location]
        client.event_hooks = hooks


class Sender:
    """Builds and sends a crawl's requests through its httpx client.

    For the client the Fetcher builds (`direct`), a request goes straight to the client's
    transport: the Fetcher follows redirects, sends credentials and bounds time itself, so
    AsyncClient.send's auth, redirect, event-hook and timing layers only cost time (about 0.1 ms
    of CPU per request). What this path still does of theirs: the client's default headers,
    timeouts and cookies, and the Location hook. A request carries no body, so httpx's content
    encoding is skipped too, and Host is set from the URL as httpx would. A client passed in
    (tests, embedding code) keeps the whole of AsyncClient.send.
    """

    def __init__(self, client: httpx.AsyncClient, *, direct: bool) -> None:
        self.client = client
        # httpx keeps the transport private; a client with mounts (proxies) picks per URL.
        self.transport: httpx.AsyncBaseTransport | None = (
            client._transport if direct and not client._mounts else None
        )
        self.timeout: dict[str, Any] = client.timeout.as_dict()
        self.headers: list[tuple[bytes, bytes]] = client.headers.raw

    def build(self, method: str, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Request:
        """The request: Host, the client's headers, then `headers`; its cookies; its timeouts."""
        client = self.client
        if self.transport is None:
            return client.build_request(method, url, headers=headers)
        raw = [(b"Host", url.netloc), *self.headers]
        if headers:
            given = {name.lower().encode("ascii") for name in headers}
            raw = [pair for pair in raw if pair[0].lower() not in given]
            raw += [
                (name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()
            ]
        # A body-less request: httpx's content encoding and header preparation have nothing to do.
        request = httpx.Request(
            method, url, headers=raw, stream=NO_BODY, extensions={"timeout": self.timeout}
        )
        if client.cookies:
            client.cookies.set_cookie_header(request)
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send a built request; the response's body is left to stream."""
        if self.transport is None:
            return await self.client.send(request, stream=True)
        response = await self.transport.handle_async_request(request)
        response.request = request
        self.client.cookies.extract_cookies(response)
        await _hide_location(response)
        return response


class SetCookieOnly(httpx.Cookies):
    """httpx's cookie store, skipping its cookie parser for answers that set no cookie.

    httpx hands every response to `extract_cookies`, which builds urllib request and response
    shims before finding out that there is nothing to store: some 40 µs per request.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the cookies a response sets (sites with cookie walls need them back)."""
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


def build_client(settings: FetchSettings) -> httpx.AsyncClient:
    """One AsyncClient per crawl: timeouts, limits, user agent, TLS and transport from settings."""
    timeout = httpx.Timeout(
        settings.read_timeout, connect=settings.connect_timeout, pool=settings.url_timeout
    )
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT}
    client = httpx.AsyncClient(
        transport=_build_transport(settings, limits),
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_hide_location]},
    )
    # The `cookies` setter would copy the jar into a plain httpx.Cookies: set the store itself.
    client._cookies = SetCookieOnly()
    return client


def _build_transport(settings: FetchSettings, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's own transport, or the crawl's aiohttp one with a connector that has per-host
    limits (see `crawler.fetch.transport`)."""
    if settings.transport == "httpx":
        transport = httpx.AsyncHTTPTransport(
            verify=settings.verify_tls, limits=limits, trust_env=False
        )
        if not settings.allow_private_networks:
            # httpx takes no network backend; its pool reads this attribute per new connection.
            pool = transport._pool
            pool._network_backend = PublicOnlyBackend(pool._network_backend, resolve_host)
        return transport
    context = httpx.create_ssl_context(verify=settings.verify_tls, trust_env=False)
    return AiohttpTransport(_aiohttp_session_factory(settings, context))


def _aiohttp_session_factory(
    settings: FetchSettings, context: ssl.SSLContext
) -> Callable[[], aiohttp.ClientSession]:
    """A factory the transport calls on its first request, i.e. inside the running loop."""

    def make_session() -> aiohttp.ClientSession:
        guard = None if settings.allow_private_networks else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(
            limit=settings.concurrency,
            limit_per_host=settings.per_host_concurrency,
            ssl=context,
            keepalive_timeout=KEEPALIVE_EXPIRY,
            resolver=guard,
        )
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx's client keeps the crawl's cookies
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )

    return make_session
