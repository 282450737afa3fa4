"""Fetch URLs: the only module that imports httpx, aiohttp and tenacity.

One `httpx.AsyncClient` per crawl (`build_client`), wrapped by a `Fetcher` that adds what a
link checker needs around it: global and per-host limits, HEAD with a GET fallback, manual
redirects with every hop recorded, private-address blocking, retries driven by the pure
predicate `should_retry` (lychee's retry.rs) with `Retry-After` honoured, a capped streaming
body read and one deadline per URL. Whatever happens, `fetch` returns a `FetchResult`.

Choices made on purpose:
- `attempts` counts tries of the URL: a HEAD that falls back to GET and the redirect hops
  of one try are one attempt; `FetchStats.requests` counts every request on the wire.
- A body larger than `max_body_bytes` is cut there: the first bytes are kept with
  `truncated=True` and no failure, since the start of a page is what parsing needs. The cap
  counts *decoded* bytes, so a gzip bomb stops at the cap too; gzip and deflate are inflated
  here with zlib's `max_length` and brotli's `output_buffer_limit`, because httpx inflates each
  network read whole (a 64 KiB read of a bomb is 64 MB) before we could stop it. A body with
  stacked codings (`gzip, br`) is not read at all: they cannot be inflated within the cap.
- Bodies are kept only for 2xx answers to a GET asked with `want_body=True` and a textual
  content type; other bodies are never read.
- A HEAD answering 429 or 503 is not followed by a GET: the server asked us to slow down,
  and the retry loop will come back.
- Private addresses are refused twice unless allowed: before each hop (`_check_address`, both
  transports) and, with aiohttp, at connection time by `PublicOnlyResolver`, so a host whose DNS
  answer changes between the check and the connection (DNS rebinding) is refused too.
- A URL that parses but that no client could request (a bad IPv6 literal, an invalid A-label, a
  DNS label over 63 bytes) is `INVALID_URL` before any request, never an exception.
- `user:pass@` is sent as a Basic Authorization header (httpx's behaviour) and removed from the
  URL handed to the transport, which aiohttp refuses to combine with that header.
- Crawl-delay from a host's robots.txt (once fetched, i.e. for hosts of related pages) spaces the
  requests to that host, capped by `robots.MAX_CRAWL_DELAY`; the wait happens before the per-URL
  deadline starts, so politeness never turns into a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import errno
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import aiohttp
import brotli
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport
from tenacity import AsyncRetrying, RetryCallState, retry_if_result
from tenacity.wait import wait_exponential_jitter

from crawler.config import FetchSettings

if TYPE_CHECKING:
    from crawler.budget import HostGate
from crawler.model import Failure, FetchResult, Hop
from crawler.robots import HostPacer, RobotsCache
from crawler.urls import (
    host_key,
    is_http_url,
    is_private_address,
    join_url,
    redact_url,
    request_url,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_FAILURES = frozenset({Failure.TIMEOUT, Failure.RESET})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# How long a URL may wait in all (queued behind its host's other URLs, then fetched) before it is
# given up, as a multiple of url_timeout. The deadline proper starts when its first request goes.
QUEUE_BACKSTOP_FACTOR = 10
# HEAD answers after which a GET would only repeat the problem or ignore the server's wish.
NO_GET_AFTER_HEAD = frozenset(
    {Failure.DNS, Failure.REFUSED, Failure.CONNECT, Failure.TLS, Failure.TIMEOUT}
    | {Failure.REDIRECT_LOOP, Failure.TOO_MANY_REDIRECTS, Failure.BAD_REDIRECT}
    | {Failure.PRIVATE_ADDRESS, Failure.INVALID_URL, Failure.UNSUPPORTED_SCHEME}
)
TEXT_SUBTYPES = frozenset({"xhtml+xml", "xml", "json", "ld+json", "rss+xml", "atom+xml"})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"
# httpx builds the next request of a redirect even with follow_redirects=False, and raises on a
# Location it cannot parse (javascript:, "http://[bad"), losing the response. A response hook
# moves Location aside so that only `_follow` interprets it.
LOCATION_HEADER = "x-crawler-location"
KEEPALIVE_EXPIRY = 5.0
MAX_HEADER_LINE = 16 * 1024  # aiohttp's default of 8190 rejects real sites' long cookies
_DNS_MESSAGES = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
)
_RESET_MESSAGES = ("disconnect", "reset", "closed", "incomplete", "peer")
_SCHEME_RE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
    zlib.error,
    brotli.error,
)
# What the address check is given: host and port in, the addresses it resolves to out.
Resolve = Callable[[str, int | None], Awaitable[list[str]]]


class PrivateAddressError(OSError):
    """A host resolved to a private address at connection time (see `PublicOnlyResolver`)."""


class _Inflater(Protocol):
    """A streaming decoder whose output per call is bounded (zlib's `max_length`)."""

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        """Decode more input, returning at most about `max_length` bytes."""
        ...


class _BrotliInflater:
    """brotli with bounded output per call: httpx's decoder would inflate a bomb's read whole."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        """Decode `data`, stopping the output near `max_length` bytes."""
        return bytes(self._decompressor.process(data, output_buffer_limit=max(max_length, 1)))


@dataclass(slots=True)
class FetchStats:
    """Counters for one Fetcher: requests on the wire, retries waited for, body bytes received."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0  # body bytes as they came over the wire (before decoding)


@dataclass(slots=True)
class _Trace:
    """Attempts of one fetch, kept outside tenacity so a deadline still knows them."""

    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    # The per-URL deadline starts when the first request gets its slot: time queued behind
    # other URLs of a busy host is the crawl's own doing, not the server's slowness.
    deadline: float | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (the whole budget before it started)."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - asyncio.get_running_loop().time()


@dataclass(frozen=True, slots=True)
class _Answer:
    """One request's outcome: a status and headers, or a transport failure."""

    status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes | None = None
    truncated: bool = False
    failure: Failure | None = None
    detail: str | None = None


# -- pure parts -----------------------------------------------------------------------------
def should_retry(result: FetchResult) -> bool:
    """True for outcomes worth another try: timeouts, resets, 408/429/500/502/503/504."""
    if result.failure is not None:
        return result.failure in RETRY_FAILURES
    return result.status_code in RETRY_STATUSES


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait for a Retry-After value: delay-seconds or HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (_aware(when) - _aware(now)).total_seconds())


def _aware(moment: datetime) -> datetime:
    """Read a naive datetime as UTC (HTTP-dates are always GMT)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_text_type(content_type: str | None) -> bool:
    """True if a body of this type is worth keeping for parsing (unknown types are read)."""
    if not content_type:
        return True
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "text" or sub in TEXT_SUBTYPES or sub.endswith(("+xml", "+json"))


def map_exception(exc: BaseException) -> tuple[Failure, str]:
    """Translate an httpx, aiohttp or OS error into a Failure and a readable detail."""
    # The innermost cause is the most precise: httpx-aiohttp maps aiohttp's
    # ServerDisconnectedError to httpx.ConnectTimeout, for one.
    chain = _exception_chain(exc)
    for candidate in reversed(chain):
        failure = _classify(candidate)
        if failure is not None:
            return failure, _describe(candidate)
    return Failure.PROTOCOL, _describe(exc)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first, without cycles."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        # A suppressed context is still what happened: httpcore raises ConnectError
        # `from None` over anyio's OSError, itself caused by ConnectionRefusedError.
        current = current.__cause__ or current.__context__
    return chain


def _classify(exc: BaseException) -> Failure | None:
    """The Failure one exception stands for, or None if it says nothing specific."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, PrivateAddressError):
        return Failure.PRIVATE_ADDRESS
    if isinstance(exc, socket.gaierror | aiohttp.ClientConnectorDNSError) or _is_dns_text(exc):
        return Failure.DNS
    if isinstance(exc, ssl.SSLError | ssl.CertificateError | aiohttp.ClientSSLError):
        return Failure.TLS
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return Failure.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return Failure.RESET
    if code in (errno.ECONNRESET, errno.EPIPE) or isinstance(exc, _AIOHTTP_RESETS):
        return Failure.RESET
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return Failure.TIMEOUT
    return _classify_httpx(exc)


_AIOHTTP_RESETS = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)


def _classify_httpx(exc: BaseException) -> Failure | None:
    """The Failure of httpx's own exception types."""
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 reports a dropped connection and a malformed response with the same type.
        text = str(exc).lower()
        return Failure.RESET if any(m in text for m in _RESET_MESSAGES) else Failure.PROTOCOL
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return Failure.RESET
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Failure.UNSUPPORTED_SCHEME
    if isinstance(exc, httpx.InvalidURL):
        return Failure.INVALID_URL
    if isinstance(exc, httpx.ConnectError | aiohttp.ClientConnectorError):
        return Failure.CONNECT
    return None


def _is_dns_text(exc: BaseException) -> bool:
    """True if the message is one of the resolvers' "no such host" texts."""
    text = str(exc).lower()
    return any(message in text for message in _DNS_MESSAGES)


def _describe(exc: BaseException) -> str:
    """A one-line detail: the exception type and its message, secrets redacted."""
    message = redact_url(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _redirect_problem(
    target: str | None, location: str, hops: list[Hop], limit: int
) -> tuple[Failure, str] | None:
    """Why following a redirect to `target` is refused, or None if it may be followed."""
    if target is None or not is_http_url(target):
        return Failure.BAD_REDIRECT, f"redirect to a non-http(s) location: {redact_url(location)}"
    if url_problem(target) is not None:
        return Failure.BAD_REDIRECT, f"redirect to a malformed URL: {redact_url(location)}"
    if any(hop.url == target for hop in hops):
        return Failure.REDIRECT_LOOP, f"redirect loop back to {redact_url(target)}"
    if len(hops) > limit:
        return Failure.TOO_MANY_REDIRECTS, f"more than {limit} redirects"
    return None


def _needs_get(head: FetchResult) -> bool:
    """True if a HEAD result should be checked again with GET (servers that mishandle HEAD)."""
    if head.failure is not None:
        return head.failure not in NO_GET_AFTER_HEAD
    status = head.status_code or 0
    return not (200 <= status < 300 or status in (304, 429, 503))


def _scheme_failure(url: str) -> FetchResult:
    """The result for a URL no request is made for: another scheme, or no valid host."""
    match = _SCHEME_RE.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme and scheme not in ("http", "https"):
        return FetchResult(url, attempts=0, failure=Failure.UNSUPPORTED_SCHEME, detail=scheme)
    detail = "malformed http(s) URL" if scheme else "not an http(s) URL"
    return FetchResult(url, attempts=0, failure=Failure.INVALID_URL, detail=detail)


def url_problem(url: str) -> str | None:
    """Why an http(s) URL cannot be requested (bad IPv6 literal, A-label, label length), or None."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - decodes IDNA, raising on an invalid A-label
        # The codec getaddrinfo applies to a str host: it refuses empty or over-63-byte labels.
        parsed.raw_host.decode("ascii").encode("idna")
    except (httpx.InvalidURL, ValueError) as exc:  # UnicodeError and idna.IDNAError are ValueErrors
        return _describe(exc)
    return None


def _move_credentials(request: httpx.Request) -> None:
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


def _unresolvable(host: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known (RFC 6761)")


async def resolve_host(host: str, port: int | None) -> list[str]:
    """The addresses `host` resolves to, from the system resolver (getaddrinfo)."""
    if never_resolves(host):
        raise _unresolvable(host)
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


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for a conditional request."""
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


async def _hide_location(response: httpx.Response) -> None:
    """Response hook: move a redirect's Location where httpx's own redirect logic won't see it."""
    location = response.headers.get("location")
    if response.status_code in REDIRECT_STATUSES and location is not None:
        response.headers[LOCATION_HEADER] = location
        del response.headers["location"]


def _install_hook(client: httpx.AsyncClient) -> None:
    """Make sure `client` hides Location from httpx (a client passed in may lack the hook)."""
    hooks = client.event_hooks
    if _hide_location not in hooks["response"]:
        hooks["response"] = [*hooks["response"], _hide_location]
        client.event_hooks = hooks


def _server_now(headers: httpx.Headers) -> datetime:
    """The server's clock from its Date header (so clock skew does not bend Retry-After)."""
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return _aware(email.utils.parsedate_to_datetime(headers.get("date", "")))
    return datetime.now(UTC)


# -- the client ----------------------------------------------------------------------------
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
    return httpx.AsyncClient(
        transport=_build_transport(settings, limits),
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_hide_location]},
    )


def _build_transport(settings: FetchSettings, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's own transport, or httpx-aiohttp's with a connector that has per-host limits."""
    if settings.transport == "httpx":
        return httpx.AsyncHTTPTransport(verify=settings.verify_tls, limits=limits, trust_env=False)
    context = httpx.create_ssl_context(verify=settings.verify_tls, trust_env=False)
    return AiohttpTransport(limits=limits, client=_aiohttp_session_factory(settings, context))


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
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )

    return make_session


# -- the fetcher ---------------------------------------------------------------------------
class Fetcher:
    """Fetches URLs under the crawl's limits and returns a FetchResult for every one."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        client: httpx.AsyncClient | None = None,
        robots: RobotsCache | None = None,
        resolver: Resolve | None = None,
        gate: HostGate | None = None,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.robots = robots if robots is not None else RobotsCache(settings.user_agent)
        self.pacer = HostPacer()
        self._resolve = resolver if resolver is not None else resolve_host
        self.stats = FetchStats()
        if client is not None:
            _install_hook(client)
        self._client = client
        self._owns_client = client is None
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        base = settings.backoff_base
        self._backoff = wait_exponential_jitter(
            multiplier=base, max=settings.backoff_max, jitter=base
        )

    async def __aenter__(self) -> Fetcher:
        if self._client is None:
            self._client = build_client(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The client in use; only inside `async with Fetcher(...)` when the Fetcher owns it."""
        if self._client is None:
            raise RuntimeError("use 'async with Fetcher(settings)' before fetching")
        return self._client

    async def fetch(
        self,
        url: str,
        *,
        want_body: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """Fetch `url` (retries, redirects and body included) within the per-URL deadline."""
        await self._wait_crawl_delay(url)
        started = time.monotonic()
        trace = _Trace()
        headers = _conditional_headers(etag, last_modified)
        try:
            # A backstop only: each request is bounded by the per-URL deadline (see _Trace).
            async with asyncio.timeout(self.settings.url_timeout * QUEUE_BACKSTOP_FACTOR):
                result = await self._fetch_checked(url, want_body, headers, trace)
        except TimeoutError:
            result = FetchResult(url, failure=Failure.TIMEOUT, detail=self._deadline_detail())
        elapsed_ms = (time.monotonic() - started) * 1000
        return replace(
            result,
            url=url,
            attempts=trace.attempts,
            statuses=tuple(trace.statuses),
            elapsed_ms=elapsed_ms,
        )

    def _deadline_detail(self) -> str:
        return f"no answer within the {self.settings.url_timeout:g} s deadline per URL"

    async def allowed_by_robots(self, url: str) -> bool:
        """True if the host's robots.txt lets our user agent fetch `url` (fetched once per host)."""
        return await self.robots.allowed(url, self._fetch_robots)

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay robots.txt asks for on `url`'s host, once it has been fetched."""
        return self.robots.crawl_delay(url)

    async def _fetch_robots(self, url: str) -> FetchResult:
        result = await self.fetch(url, want_body=True)
        self.pacer.record(url)  # Crawl-delay counts from this request on
        return result

    async def _wait_crawl_delay(self, url: str) -> None:
        """Wait for this host's next Crawl-delay slot (no wait for hosts that set none)."""
        seconds = self.pacer.reserve(url, self.crawl_delay(url))
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _fetch_checked(
        self, url: str, want_body: bool, headers: Mapping[str, str], trace: _Trace
    ) -> FetchResult:
        """Refuse unsupported or private URLs before any request, then fetch with retries."""
        if not is_http_url(url):
            return _scheme_failure(url)
        url = request_url(url)  # the URL Standard's reading of `http:/x`, as is_http_url's
        problem = url_problem(url)
        if problem is not None:
            return FetchResult(url, attempts=0, failure=Failure.INVALID_URL, detail=problem)
        blocked = await self._check_address(url)
        if blocked is not None:
            return self._to_result(url, "GET", url, blocked, [])
        tries = self.settings.retries + 1
        retrying = AsyncRetrying(
            stop=lambda state: state.attempt_number >= tries or trace.remaining() <= 0,
            wait=lambda state: max(0.0, min(self._wait(state), trace.remaining())),
            retry=retry_if_result(should_retry),
            before_sleep=self._count_retry,
            retry_error_callback=_last_result,
        )
        result: FetchResult = await retrying(self._attempt, url, want_body, headers, trace)
        return result

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server sent one (capped), else exponential backoff with jitter."""
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            last: FetchResult = outcome.result()
            if last.retry_after is not None:
                return min(last.retry_after, self.settings.retry_after_cap)
        seconds: float = self._backoff(state)
        return seconds

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1

    async def _attempt(
        self, url: str, want_body: bool, headers: Mapping[str, str], trace: _Trace
    ) -> FetchResult:
        """One try of the URL: HEAD (falling back to GET) or GET, following redirects."""
        trace.attempts += 1
        trace.statuses.append(None)  # stays None if the deadline cuts this attempt short
        if want_body or not self.settings.head_first:
            result = await self._follow("GET", url, headers, want_body, trace)
        else:
            result = await self._follow("HEAD", url, headers, False, trace)
            if _needs_get(result):
                result = await self._follow("GET", url, headers, False, trace)
        trace.statuses[-1] = result.status_code
        return result

    async def _follow(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool, trace: _Trace
    ) -> FetchResult:
        """Send `method` to `url` and follow redirects by hand, recording every hop."""
        hops: list[Hop] = []
        current = url
        while True:
            blocked = await self._check_address(current) if hops else None
            answer = blocked or await self._send(method, current, headers, read_body, trace)
            location = answer.headers.get(LOCATION_HEADER)
            if answer.status not in REDIRECT_STATUSES or location is None:
                return self._to_result(url, method, current, answer, hops)
            hops.append(Hop(current, answer.status))
            target = join_url(current, location)
            problem = _redirect_problem(target, location, hops, self.settings.max_redirects)
            if problem is not None or target is None:
                failure, detail = problem or (Failure.BAD_REDIRECT, location)
                answer = replace(answer, failure=failure, detail=detail)
                return self._to_result(url, method, current, answer, hops)
            current = target

    def _to_result(
        self, url: str, method: str, final_url: str, answer: _Answer, hops: list[Hop]
    ) -> FetchResult:
        """Turn the last answer of a chain into the FetchResult of the attempt."""
        headers = answer.headers
        return FetchResult(
            url,
            method=method,
            status_code=answer.status,
            final_url=final_url,
            redirects=tuple(hops),
            failure=answer.failure,
            detail=answer.detail,
            content_type=headers.get("content-type"),
            body=answer.body,
            truncated=answer.truncated,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            retry_after=parse_retry_after(headers.get("retry-after"), _server_now(headers)),
        )

    async def _check_address(self, url: str) -> _Answer | None:
        """Unless private networks are allowed, refuse hosts resolving to a private address."""
        if self.settings.allow_private_networks:
            return None
        parsed = httpx.URL(url)
        try:
            addresses = await self._resolve(parsed.raw_host.decode("ascii"), parsed.port)
        except (OSError, UnicodeError) as exc:
            failure, detail = map_exception(exc)
            return _Answer(failure=failure, detail=detail)
        for address in addresses:
            if is_private_address(address):
                detail = f"{parsed.host} resolves to a private address ({address})"
                return _Answer(failure=Failure.PRIVATE_ADDRESS, detail=detail)
        return None

    @contextlib.asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        """Hold a per-host slot, then a global one (so a busy host holds no global slot idle)."""
        key = host_key(url)
        host = self._hosts.setdefault(key, asyncio.Semaphore(self.settings.per_host_concurrency))
        async with host:
            if self.gate is not None:  # the cluster's shared per-host budget
                await self.gate.acquire(key)
            async with self._global:
                yield

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool, trace: _Trace
    ) -> _Answer:
        """One request on the wire, within the URL's deadline; failures come back mapped."""
        host = urlsplit(url).hostname or ""  # cheap: httpx.URL() costs ~0.1 ms a call
        if never_resolves(host):
            failure, detail = map_exception(_unresolvable(host))
            return _Answer(failure=failure, detail=detail)
        async with self._slot(url):
            loop = asyncio.get_running_loop()
            if trace.deadline is None:
                trace.deadline = loop.time() + self.settings.url_timeout
            self.stats.requests += 1
            try:
                async with asyncio.timeout_at(trace.deadline):
                    return await self._exchange(method, url, headers, read_body)
            except TimeoutError:
                return _Answer(failure=Failure.TIMEOUT, detail=self._deadline_detail())

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool
    ) -> _Answer:
        try:
            request = self.client.build_request(method, url, headers=headers)
            _move_credentials(request)
            response = await self.client.send(request, stream=True)
        except TRANSPORT_ERRORS as exc:
            failure, detail = map_exception(exc)
            return _Answer(failure=failure, detail=detail)
        try:
            return await self._read(response, read_body)
        finally:
            self.stats.bytes_received += response.num_bytes_downloaded
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await response.aclose()

    async def _read(self, response: httpx.Response, read_body: bool) -> _Answer:
        """The answer of a response, with its body when asked for and worth keeping."""
        status = response.status_code
        wanted = read_body and 200 <= status < 300 and response.request.method != "HEAD"
        if not wanted or not is_text_type(response.headers.get("content-type")):
            return _Answer(status, response.headers)
        if _is_stacked(response.headers.get("content-encoding")):
            return _Answer(status, response.headers)  # cannot be inflated within the cap
        try:
            body, truncated = await self._read_capped(response)
        except TRANSPORT_ERRORS as exc:
            failure, detail = map_exception(exc)
            return _Answer(status, response.headers, failure=failure, detail=detail)
        return _Answer(status, response.headers, body=body, truncated=truncated)

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        """Stream the decoded body up to max_body_bytes; True if more was left unread."""
        cap = self.settings.max_body_bytes
        inflater = _inflater(response.headers.get("content-encoding"))
        if response.is_stream_consumed:  # already read (a mock's content=...): httpx decoded it
            inflater = None
        stream = response.aiter_raw() if inflater is not None else response.aiter_bytes()
        chunks: list[bytes] = []
        size = 0
        async for data in stream:
            # Never inflate more than one byte past the cap, whatever the ratio.
            chunk = data if inflater is None else inflater.decompress(data, cap - size + 1)
            if size + len(chunk) > cap:
                chunks.append(chunk[: cap - size])
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False


def _codings(content_encoding: str | None) -> list[str]:
    """The content codings applied, in order, without `identity`."""
    names = (part.strip().lower() for part in (content_encoding or "").split(","))
    return [name for name in names if name and name != "identity"]


def _is_stacked(content_encoding: str | None) -> bool:
    """True for more than one content coding (RFC 9110 §8.4 allows it; hardly anyone does it)."""
    return len(_codings(content_encoding)) > 1


def _inflater(content_encoding: str | None) -> _Inflater | None:
    """A bounded inflater for gzip/deflate/br bodies; None leaves decoding to httpx (identity)."""
    codings = _codings(content_encoding)
    encoding = codings[0] if len(codings) == 1 else ""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # RFC 9110 §8.4.1.2: zlib format; 32 also accepts a gzip header
        return zlib.decompressobj(32 + zlib.MAX_WBITS)
    if encoding == "br":
        return _BrotliInflater()
    return None


def _last_result(state: RetryCallState) -> FetchResult:
    """When retries run out, the last attempt's result is the answer."""
    assert state.outcome is not None
    result: FetchResult = state.outcome.result()
    return result
