"""Pure fetch decisions: what to retry, how long to wait, which redirects and URLs to refuse."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from crawler.fetch.errors import describe
from crawler.model import Failure, FetchResult, Hop
from crawler.urls import URL_CACHE_SIZE, is_http_url, redact_url

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


RETRY_FAILURES = frozenset({Failure.TIMEOUT, Failure.RESET})


# The share of the per-URL budget (url_timeout) a retry needs left after its wait: with less, its
# own timeout would replace the real answer already in hand.
MIN_RETRY_BUDGET_SHARE = 0.25


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


# HEAD answers after which a GET would only repeat the problem or ignore the server's wish.
NO_GET_AFTER_HEAD = frozenset(
    {Failure.DNS, Failure.REFUSED, Failure.CONNECT, Failure.TLS, Failure.TIMEOUT}
    | {Failure.REDIRECT_LOOP, Failure.TOO_MANY_REDIRECTS, Failure.BAD_REDIRECT}
    | {Failure.PRIVATE_ADDRESS, Failure.INVALID_URL, Failure.UNSUPPORTED_SCHEME}
)


TEXT_SUBTYPES = frozenset({"xhtml+xml", "xml", "json", "ld+json", "rss+xml", "atom+xml"})


_SCHEME_RE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")


def should_retry(result: FetchResult) -> bool:
    """True for outcomes worth another try: timeouts, resets, 408/429/500/502/503/504."""
    if result.failure is not None:
        return result.failure in RETRY_FAILURES
    return result.status_code in RETRY_STATUSES


def is_retry_affordable(
    wait: float, remaining: float, retry_after: float | None, *, cap: float, url_timeout: float
) -> bool:
    """True if a retry after `wait` seconds is worth making within the URL's `remaining` budget.

    Not when the server's Retry-After is above `cap` (it asks for longer than we are willing to
    wait, so its answer stands), nor when the wait would leave less than MIN_RETRY_BUDGET_SHARE
    of `url_timeout` for the retry itself.
    """
    if retry_after is not None and retry_after > cap:
        return False
    return remaining - wait >= url_timeout * MIN_RETRY_BUDGET_SHARE


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


def redirect_problem(
    target: str | None, location: str, hops: list[Hop], limit: int, *, cookie_hop: int = -1
) -> tuple[Failure, str] | None:
    """Why following a redirect to `target` is refused, or None if it may be followed.

    Going back to a URL of the chain is a loop, unless a cookie was set since that visit
    (`cookie_hop`: index of the last hop whose answer set one): a cookie wall sends the reader
    to a consent URL that sets a cookie and back to the story, which then answers.
    """
    if target is None or not is_http_url(target):
        return Failure.BAD_REDIRECT, f"redirect to a non-http(s) location: {redact_url(location)}"
    if url_problem(target) is not None:
        return Failure.BAD_REDIRECT, f"redirect to a malformed URL: {redact_url(location)}"
    last_visit = max((i for i, hop in enumerate(hops) if hop.url == target), default=None)
    if last_visit is not None and last_visit > cookie_hop:
        return Failure.REDIRECT_LOOP, f"redirect loop back to {redact_url(target)}"
    if len(hops) > limit:
        return Failure.TOO_MANY_REDIRECTS, f"more than {limit} redirects"
    return None


def needs_get(head: FetchResult) -> bool:
    """True if a HEAD result should be checked again with GET (servers that mishandle HEAD)."""
    if head.failure is not None:
        return head.failure not in NO_GET_AFTER_HEAD
    status = head.status_code or 0
    return not (200 <= status < 300 or status in (304, 429, 503))


def scheme_failure(url: str) -> FetchResult:
    """The result for a URL no request is made for: another scheme, or no valid host."""
    match = _SCHEME_RE.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme and scheme not in ("http", "https"):
        return FetchResult(url, attempts=0, failure=Failure.UNSUPPORTED_SCHEME, detail=scheme)
    detail = "malformed http(s) URL" if scheme else "not an http(s) URL"
    return FetchResult(url, attempts=0, failure=Failure.INVALID_URL, detail=detail)


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def httpx_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, parsed once per URL (httpx's parser costs ~60 µs a call).

    httpx.URL is immutable (`copy_with` returns a new one), so sharing one is safe.
    """
    return httpx.URL(url)


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def url_problem(url: str) -> str | None:
    """Why an http(s) URL cannot be requested (bad IPv6 literal, A-label, label length), or None."""
    try:
        parsed = httpx_url(url)
        parsed.host  # noqa: B018 - decodes IDNA, raising on an invalid A-label
        # The codec getaddrinfo applies to a str host: it refuses empty or over-63-byte labels.
        parsed.raw_host.decode("ascii").encode("idna")
    except (httpx.InvalidURL, ValueError) as exc:  # UnicodeError and idna.IDNAError are ValueErrors
        return describe(exc)
    return None


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for a conditional request."""
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def server_now(headers: Mapping[str, str]) -> datetime:
    """The server's clock from its Date header (so clock skew does not bend Retry-After)."""
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return _aware(email.utils.parsedate_to_datetime(headers.get("date", "")))
    return datetime.now(UTC)
