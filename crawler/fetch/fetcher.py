"""The Fetcher: limits, HEAD/GET, manual redirects, retries and the per-URL deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result
from tenacity.wait import wait_exponential_jitter

from crawler.config import FetchSettings
from crawler.fetch.body import drain, is_stacked, plain_headers, read_capped
from crawler.fetch.client import (
    LOCATION_HEADER,
    Resolve,
    Sender,
    build_client,
    install_hook,
    move_credentials,
    never_resolves,
    resolve_host,
    unresolvable,
)
from crawler.fetch.errors import TRANSPORT_ERRORS, describe, map_exception
from crawler.fetch.policy import (
    REDIRECT_STATUSES,
    conditional_headers,
    httpx_url,
    is_retry_affordable,
    is_text_type,
    needs_get,
    parse_retry_after,
    redirect_problem,
    scheme_failure,
    server_now,
    should_retry,
    url_problem,
)
from crawler.fetch.slots import HostSlots
from crawler.model import Failure, FetchResult, Hop
from crawler.robots import HostPacer, RobotsCache
from crawler.urls import (
    host_key,
    is_http_url,
    is_private_address,
    join_url,
    request_url,
)

if TYPE_CHECKING:
    from crawler.budget import HostGate

# How long a URL may wait in all (queued behind its host's other URLs, then fetched) before it is
# given up, as a multiple of url_timeout. The deadline proper starts when its first request goes.
QUEUE_BACKSTOP_FACTOR = 10


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
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercase names (plain_headers)
    body: bytes | None = None
    truncated: bool = False
    failure: Failure | None = None
    detail: str | None = None


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
            install_hook(client)
        self._client = client
        self._sender = Sender(client, direct=False) if client is not None else None
        self._owns_client = client is None
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, HostSlots] = {}
        base = settings.backoff_base
        self._backoff = wait_exponential_jitter(
            multiplier=base, max=settings.backoff_max, jitter=base
        )

    async def __aenter__(self) -> Fetcher:
        if self._client is None:
            self._client = build_client(self.settings)
            self._sender = Sender(self._client, direct=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = self._sender = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The client in use; only inside `async with Fetcher(...)` when the Fetcher owns it."""
        if self._client is None:
            raise RuntimeError("use 'async with Fetcher(settings)' before fetching")
        return self._client

    @property
    def sender(self) -> Sender:
        """How requests go through the client (see Sender)."""
        if self._sender is None:
            raise RuntimeError("use 'async with Fetcher(settings)' before fetching")
        return self._sender

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
        headers = conditional_headers(etag, last_modified)
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
            return scheme_failure(url)
        url = request_url(url)  # the URL Standard's reading of `http:/x`, as is_http_url's
        problem = url_problem(url)
        if problem is not None:
            return FetchResult(url, attempts=0, failure=Failure.INVALID_URL, detail=problem)
        blocked = await self._check_address(url)
        if blocked is not None:
            return self._to_result(url, "GET", url, blocked, [])
        first = await self._attempt(url, want_body, headers, trace)
        if not should_retry(first):
            return first  # most URLs: no retry machinery needed
        # tenacity takes over from the first attempt, whose result it is handed back, so
        # that its stop, wait (Retry-After) and retry rules see every attempt.
        handed = [first]

        async def attempt() -> FetchResult:
            if handed:
                return handed.pop()
            return await self._attempt(url, want_body, headers, trace)

        tries = self.settings.retries + 1
        retrying = AsyncRetrying(
            # tenacity picks the wait (upcoming_sleep) before it asks whether to stop.
            stop=lambda state: state.attempt_number >= tries or not self._affords(state, trace),
            wait=self._wait,
            retry=retry_if_result(should_retry),
            before_sleep=self._count_retry,
            retry_error_callback=_last_result,
        )
        result: FetchResult = await retrying(attempt)
        return result

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server sent one, else exponential backoff with jitter."""
        retry_after = _retry_after_of(state)
        if retry_after is not None:
            return retry_after  # one above the cap is never slept: _affords stops first
        seconds: float = self._backoff(state)
        return seconds

    def _affords(self, state: RetryCallState, trace: _Trace) -> bool:
        """True if the retry after tenacity's chosen wait is worth making (is_retry_affordable)."""
        return is_retry_affordable(
            state.upcoming_sleep,
            trace.remaining(),
            _retry_after_of(state),
            cap=self.settings.retry_after_cap,
            url_timeout=self.settings.url_timeout,
        )

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
            if needs_get(result):
                result = await self._follow("GET", url, headers, False, trace)
        trace.statuses[-1] = result.status_code
        return result

    async def _follow(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool, trace: _Trace
    ) -> FetchResult:
        """Send `method` to `url` and follow redirects by hand, recording every hop."""
        hops: list[Hop] = []
        cookie_hop = -1  # the last hop whose answer set a cookie
        current = url
        while True:
            blocked = await self._check_address(current) if hops else None
            answer = blocked or await self._send(method, current, headers, read_body, trace)
            location = answer.headers.get(LOCATION_HEADER)
            if answer.status not in REDIRECT_STATUSES or location is None:
                return self._to_result(url, method, current, answer, hops)
            if "set-cookie" in answer.headers:
                cookie_hop = len(hops)
            hops.append(Hop(current, answer.status))
            target = join_url(current, location)
            problem = redirect_problem(
                target, location, hops, self.settings.max_redirects, cookie_hop=cookie_hop
            )
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
            retry_after=_retry_after(headers),
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

    def _host_slots(self, url: str) -> tuple[str, HostSlots]:
        """The per-host key and slots of `url`'s host."""
        key = host_key(url)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = HostSlots(self.settings.per_host_concurrency)
        return key, host

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool, trace: _Trace
    ) -> _Answer:
        """One request on the wire, within the URL's deadline; failures come back mapped."""
        name = httpx_url(url).host  # parsed once per URL (url_problem accepted it)
        if never_resolves(name):
            failure, detail = map_exception(unresolvable(name))
            return _Answer(failure=failure, detail=detail)
        # A per-host slot, then a global one (so a busy host holds no global slot idle). Not an
        # asynccontextmanager: its generator costs more than the rest of this bookkeeping.
        key, host = self._host_slots(url)
        await host.acquire()
        try:
            if self.gate is not None:  # the cluster's shared per-host budget
                await self.gate.acquire(key)
            async with self._global:
                loop = asyncio.get_running_loop()
                if trace.deadline is None:
                    trace.deadline = loop.time() + self.settings.url_timeout
                self.stats.requests += 1
                try:
                    async with asyncio.timeout_at(trace.deadline):
                        answer = await self._exchange(method, url, headers, read_body)
                except TimeoutError:
                    answer = _Answer(failure=Failure.TIMEOUT, detail=self._deadline_detail())
        finally:
            host.release()
        if answer.status is not None:
            await host.answered(answer.status)  # a 429 narrows the host's slots (see slots.py)
        return answer

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], read_body: bool
    ) -> _Answer:
        try:
            sender = self.sender
            request = sender.build(method, httpx_url(url), headers)
            move_credentials(request)
            response = await sender.send(request)
        except TRANSPORT_ERRORS as exc:
            failure, detail = map_exception(exc)
            return _Answer(failure=failure, detail=detail)
        except ValueError as exc:
            # A URL httpx reads unlike the URL Standard (`http://host\@`: a backslash taken as
            # userinfo) can fail inside httpx itself, e.g. in its urllib cookie shim.
            return _Answer(failure=Failure.INVALID_URL, detail=describe(exc))
        try:
            return await self._read(response, read_body)
        finally:
            self.stats.bytes_received += response.num_bytes_downloaded
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await response.aclose()

    async def _read(self, response: httpx.Response, read_body: bool) -> _Answer:
        """The answer of a response, with its body when asked for and worth keeping."""
        status = response.status_code
        headers = plain_headers(response.headers)
        wanted = read_body and 200 <= status < 300 and response.request.method != "HEAD"
        if not wanted or not is_text_type(headers.get("content-type")):
            await drain(response, headers)
            return _Answer(status, headers)
        encoding = headers.get("content-encoding")
        if is_stacked(encoding):
            return _Answer(status, headers)  # cannot be inflated within the cap
        try:
            body, truncated = await read_capped(response, encoding, self.settings.max_body_bytes)
        except TRANSPORT_ERRORS as exc:
            failure, detail = map_exception(exc)
            return _Answer(status, headers, failure=failure, detail=detail)
        return _Answer(status, headers, body=body, truncated=truncated)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, against the server's own clock when it is an HTTP-date."""
    value = headers.get("retry-after")
    return None if value is None else parse_retry_after(value, server_now(headers))


def _retry_after_of(state: RetryCallState) -> float | None:
    """The Retry-After of the last attempt's result, if it sent one."""
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    last: FetchResult = outcome.result()
    return last.retry_after


def _last_result(state: RetryCallState) -> FetchResult:
    """When retries run out, the last attempt's result is the answer."""
    assert state.outcome is not None
    result: FetchResult = state.outcome.result()
    return result
