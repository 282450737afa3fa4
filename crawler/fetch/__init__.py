"""Fetch URLs: the only package that imports httpx, aiohttp and tenacity.

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
- A 429 is also about the host, not only its URL: each one halves the requests the host gets at
  once (down to 1) and calm answers give them back one by one (`crawler.fetch.slots`). The
  host is not paused for the whole `Retry-After`: the URL that got the 429 waits it out.
- Private addresses are refused twice unless allowed: before each hop (`_check_address`, both
  transports) and at connection time (`PublicOnlyResolver` for aiohttp, `PublicOnlyBackend` for
  httpx's own transport), so a host whose DNS answer changes between the check and the
  connection (DNS rebinding) is refused too.
- A URL that parses but that no client could request (a bad IPv6 literal, an invalid A-label, a
  DNS label over 63 bytes) is `INVALID_URL` before any request, never an exception.
- `user:pass@` is sent as a Basic Authorization header (httpx's behaviour) and removed from the
  URL handed to the transport, which aiohttp refuses to combine with that header.
- Crawl-delay from a host's robots.txt (once fetched, i.e. for hosts of related pages) spaces the
  requests to that host, capped by `robots.MAX_CRAWL_DELAY`; the wait happens before the per-URL
  deadline starts, so politeness never turns into a timeout.
"""

from crawler.fetch.client import (
    PublicOnlyResolver,
    Resolve,
    build_client,
    never_resolves,
    resolve_host,
)
from crawler.fetch.errors import TRANSPORT_ERRORS, PrivateAddressError, map_exception
from crawler.fetch.fetcher import Fetcher, FetchStats
from crawler.fetch.policy import is_text_type, parse_retry_after, should_retry, url_problem

__all__ = [
    "TRANSPORT_ERRORS",
    "FetchStats",
    "Fetcher",
    "PrivateAddressError",
    "PublicOnlyResolver",
    "Resolve",
    "build_client",
    "is_text_type",
    "map_exception",
    "never_resolves",
    "parse_retry_after",
    "resolve_host",
    "should_retry",
    "url_problem",
]
