"""Pure: what a fetch learned (`FetchResult`, plus the parsed page) -> `Verdict` and a reason.

The verdicts are those of the snapshot schema. `dead` is kept for what is gone for good, so
a reader can act on it; anything that might be our fault or the moment's is `error`, and a
server that refuses *us* is `blocked`. Status codes other than these are decided here:

    status            verdict   why
    2xx same URL      ok        (a 2xx page that says "not found" is soft404)
    2xx elsewhere     redirected, or soft404 when a deep link lands on the site's front page
    304               ok        not modified since the last crawl
    other 1xx/3xx     error     nothing usable came back (no redirect to follow)
    404, 410          dead      RFC 9110 §15.5.5 / §15.5.11: not found, gone
    414               dead      the URL as written is too long for the server, for anyone
    401, 402, 403,    blocked   the server refuses this client (login, paywall, bot wall,
    407, 418, 429,              rate limit still on after our retries or asking for a longer
    451, 999                    wait than we give, legal block); LinkedIn answers 999 and some
                                bot walls 418
    400, 405, 406,    error     the request was refused as we made it (method, headers,
    other 4xx                   content negotiation): not proof the page is gone
    5xx               error     server trouble that outlived our retries (or asked for a
                                longer Retry-After than we give)

Transport failures: unknown host, refused connection and redirect loops are `dead`; timeouts,
resets, TLS and protocol errors, too many redirects and a redirect to a non-http(s) location
are `error` (we did fetch, so not `skipped`, which the schema keeps for "not fetched on
purpose"); an invalid URL is `error` too (the crawler flags it malformed); robots.txt, private
addresses and other schemes are `skipped`.

Reasons are short sentences. They never quote a query string, a fragment or user info, which
is where secrets live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from crawler.model import Failure, FetchResult, PageInfo, Verdict
from crawler.urls import host_key, is_front_page, is_same_site, normalize_url

MAX_QUOTED_TITLE = 80

_FAILURES: dict[Failure, tuple[Verdict, str]] = {
    Failure.DNS: (Verdict.DEAD, "the host name does not resolve (DNS lookup failed)"),
    Failure.REFUSED: (Verdict.DEAD, "the server refused the connection"),
    Failure.REDIRECT_LOOP: (Verdict.DEAD, "the redirects loop back on themselves"),
    Failure.CONNECT: (Verdict.ERROR, "could not connect to the server"),
    Failure.TIMEOUT: (Verdict.ERROR, "the server did not answer in time"),
    Failure.RESET: (Verdict.ERROR, "the connection was reset"),
    Failure.TLS: (Verdict.ERROR, "the TLS handshake or certificate check failed"),
    Failure.PROTOCOL: (Verdict.ERROR, "the server sent a malformed HTTP answer"),
    Failure.TOO_LARGE: (Verdict.ERROR, "the answer was larger than the size limit"),
    Failure.TOO_MANY_REDIRECTS: (Verdict.ERROR, "too many redirects"),
    Failure.BAD_REDIRECT: (Verdict.ERROR, "redirected to a location that is not an http(s) URL"),
    Failure.INVALID_URL: (Verdict.ERROR, "the URL is malformed and cannot be fetched"),
    Failure.UNSUPPORTED_SCHEME: (Verdict.SKIPPED, "not an http(s) link"),
    Failure.PRIVATE_ADDRESS: (
        Verdict.SKIPPED,
        "the host is a private or local address (to check it: --allow-private,"
        " or [fetch] allow_private_networks = true)",
    ),
    Failure.ROBOTS: (Verdict.SKIPPED, "disallowed by robots.txt"),
}


class Fetched(Protocol):
    """What the network checks read of a fetch: a FetchResult, or the Attempted kept of it."""

    @property
    def url(self) -> str: ...
    @property
    def final_url(self) -> str | None: ...
    @property
    def failure(self) -> Failure | None: ...
    @property
    def answered(self) -> bool: ...


# Failures that show the checker's own network is not working (see `is_network_down`).
NETWORK_FAILURES = frozenset({Failure.DNS, Failure.REFUSED, Failure.CONNECT, Failure.TIMEOUT})
# What our own network going down looks like for a host that answered earlier in the same crawl:
# its name no longer resolves, or it is unreachable. Not a refusal (the peer answered with a
# reset) and not a timeout (slow pages time out on healthy networks every day).
LOST_NETWORK_FAILURES = frozenset({Failure.DNS, Failure.CONNECT})

_DEAD_STATUSES = frozenset({404, 410, 414})
_BLOCKED_STATUSES: dict[int, str] = {
    401: "login required",
    402: "payment required (paywall)",
    403: "the server refused us",
    407: "a proxy wants credentials",
    418: "the server refused us (bot wall)",
    429: "rate-limited",
    451: "blocked for legal reasons",
    999: "the server refused us (bot wall)",
}

# Titles and headings of "not found" pages, in the languages news sites use most. Lowercase:
# it is searched in lowercased text, which is several times faster than re.IGNORECASE.
_NOT_FOUND_RE = re.compile(
    r"page (was )?not found|^\W*not found\b|\b404\b.{0,30}\b(error|not found|page)"
    r"|\berror\s*404\b|^\W*404\W*($|[-|:–—])|(this|the) page (does not|doesn't|no longer) exists?"
    r"|(can't|cannot|could not|couldn't|unable to) find (that|this|the|your) page"
    r"|page (cannot|can't|could not|couldn't) be found"
    r"|page you('re| are| were)? (requested|looking for)"
    r"|page introuvable|page non trouvée|erreur 404|cette page n'existe"
    r"|seite nicht gefunden|seite wurde nicht gefunden|fehler 404|seite existiert nicht"
    r"|página no encontrada|pagina no encontrada|no se encontró la página"
    r"|página não encontrada|pagina nao encontrada|pagina non trovata|pagina niet gevonden"
    r"|nie znaleziono strony|strona nie została znaleziona|stránka nenalezena"
    r"|stránka nebyla nalezena|страница не найдена|sayfa bulunamadı|sidan kunde inte hittas"
    r"|sidan hittades inte|siden blev ikke fundet|siden finnes ikke|siden ble ikke funnet"
    r"|ページが見つかりません|お探しのページは見つかりませんでした|页面不存在|找不到页面|页面未找到"
    r"|페이지를 찾을 수 없습니다|الصفحة غير موجودة|trang không tồn tại|halaman tidak ditemukan",
)
# Localized front pages: /en/, /de-ch/, /pt_BR, /es-419/, /zh-hant/. Only when the first part is
# a language or an edition (_ROOT_CODES): /tv, /ok or /go are sections or pages, not front pages.
_LANGUAGE_ROOT_RE = re.compile(r"^/([a-z]{2})(?:[-_](?:[a-z]{2}|[0-9]{3}|[a-z]{4}))?/?$", re.I)
# ISO 639-1 two-letter language codes (the alpha_2 codes of Debian's iso-codes iso_639-2.json).
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1_CODES = frozenset(_ISO_639_1.split())
# Country editions news sites serve at the root under a code that is no language's:
# theguardian.com/us and /au (its /uk is Ukrainian's code as well), nzherald-style /nz.
_EDITION_CODES = frozenset({"us", "au", "nz"})
_ROOT_CODES = ISO_639_1_CODES | _EDITION_CODES


def classify_result(
    result: FetchResult, page: PageInfo | None = None
) -> tuple[Verdict, str | None]:
    """The verdict for one fetch and a short reason (None for a plain ok)."""
    if result.failure is not None and not (
        result.failure is Failure.TOO_LARGE and result.status_code is not None
    ):
        return _classify_failure(result, result.failure)
    status = result.status_code
    if status is None:
        return Verdict.ERROR, "no answer was received"
    if 200 <= status < 300:
        return _classify_success(result, page)
    if status == 304:
        return Verdict.OK, "not modified since the last crawl"
    return _classify_status(status, result.attempts, result.retry_after)


def _classify_failure(result: FetchResult, failure: Failure) -> tuple[Verdict, str]:
    """Verdict for a fetch that got no usable HTTP answer."""
    verdict, reason = _FAILURES.get(failure, (Verdict.ERROR, "the fetch failed"))
    if failure is Failure.UNSUPPORTED_SCHEME:
        scheme = result.url.strip().partition(":")[0].lower()
        reason = f"{scheme}: links are not checked" if scheme.isalnum() else reason
    if failure is Failure.TOO_MANY_REDIRECTS and result.redirects:
        reason = f"too many redirects (gave up after {len(result.redirects)})"
    return verdict, reason


def _classify_success(result: FetchResult, page: PageInfo | None) -> tuple[Verdict, str | None]:
    """Verdict for a 2xx answer: ok, redirected, or soft404."""
    final = result.final_url
    moved = final is not None and normalize_url(final) != normalize_url(result.url)
    if moved and final is not None and is_soft404_redirect(result.url, final):
        return Verdict.SOFT404, f"a deep link redirected to the front page {safe_url(final)}"
    if page is not None and is_not_found_page(page):
        return Verdict.SOFT404, f"the page says it is not found: {_quote(page)}"
    if moved and final is not None:
        return Verdict.REDIRECTED, f"redirected to {safe_url(final)}{_via(result)}"
    if result.failure is Failure.TOO_LARGE or result.truncated:
        return Verdict.OK, "answered, but the page is larger than the size limit (read in part)"
    return Verdict.OK, None


def _seconds(value: float) -> str:
    """`120 s`; an absurd wait (a server's `Retry-After: 99999999999999999999`) short: `1e+20 s`."""
    return f"{value:.0f} s" if value < 1e7 else f"{value:.0e} s"


def _classify_status(status: int, attempts: int, retry_after: float | None) -> tuple[Verdict, str]:
    """Verdict for a non-2xx, non-304 status, per the table in the module docstring."""
    label = status_label(status)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if retry_after is not None:  # the wait asked for; one above cap or budget ends the retries
        tries += f" (Retry-After: {_seconds(retry_after)})"
    if status in _DEAD_STATUSES:
        return Verdict.DEAD, label
    if status in _BLOCKED_STATUSES:
        return Verdict.BLOCKED, f"{label}: {_BLOCKED_STATUSES[status]}{tries}"
    if 400 <= status < 500:
        return Verdict.ERROR, f"{label}: the server rejected the request as we made it"
    if 500 <= status < 600:
        return Verdict.ERROR, f"{label}: server error{tries}"
    return Verdict.ERROR, f"{label}: no usable answer (nothing to follow)"


def is_not_found_page(page: PageInfo) -> bool:
    """True if the page's title or first heading says the page is not found (many languages)."""
    title, heading = page.title, page.heading
    if title and _NOT_FOUND_RE.search(title.lower()):
        return True
    if not heading or heading == title:
        return False
    return _NOT_FOUND_RE.search(heading.lower()) is not None


def is_soft404_redirect(url: str, final_url: str | None) -> bool:
    """True if a deep link on a site was redirected to that same site's front page."""
    if final_url is None or not is_same_site(url, final_url):
        return False
    return not _is_home(normalize_url(url)) and _is_home(normalize_url(final_url))


def _is_home(url: str) -> bool:
    """True for a front page, including a language root such as /en/."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return is_front_page(url) or (not parts.query and _is_language_root(parts.path))


def _is_language_root(path: str) -> bool:
    """True for a language or edition root path: /en/, /pt_BR, /de-ch/, /us/ (not /tv or /ok)."""
    match = _LANGUAGE_ROOT_RE.match(path)
    return match is not None and match.group(1).lower() in _ROOT_CODES


def is_network_down(results: Iterable[Fetched]) -> bool:
    """True if no fetch got any HTTP answer and at least one failed at the network level."""
    network_failures = 0
    for result in results:
        if result.answered:
            return False
        network_failures += result.failure in NETWORK_FAILURES
    return network_failures > 0


def network_down_since(results: Sequence[Fetched]) -> int | None:
    """Where (in completion order) our own network went down, or None if it did not.

    0 when nothing answered at all (`is_network_down`). Otherwise the start of the trailing run
    of results that failed at the network level, when that run has at least two results and
    names a host that answered earlier in the crawl but now cannot be resolved or reached.
    """
    if is_network_down(results):
        return 0
    start = len(results)
    while start > 0 and not results[start - 1].answered:
        if results[start - 1].failure not in NETWORK_FAILURES:
            break
        start -= 1
    tail = results[start:]
    if len(tail) < 2:
        return None
    answered = {host_key(r.final_url or r.url) for r in results[:start] if r.answered}
    lost = any(r.failure in LOST_NETWORK_FAILURES and host_key(r.url) in answered for r in tail)
    return start if lost else None


def status_label(status: int) -> str:
    """A status with its standard phrase ("404 Not Found"), or just the number."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def safe_url(url: str) -> str:
    """A URL fit for a reason: no user info, query or fragment (where secrets live)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path or "/", "", ""))


def _via(result: FetchResult) -> str:
    """The redirect hops' codes (" via 301, 302"), or "" when none were recorded."""
    codes = [str(hop.status_code) for hop in result.redirects]
    return f" via {', '.join(codes)}" if codes else ""


def _quote(page: PageInfo) -> str:
    """The page's title (or heading) in quotes, shortened."""
    text = page.title or page.heading or ""
    if len(text) > MAX_QUOTED_TITLE:
        text = text[: MAX_QUOTED_TITLE - 1] + "…"
    return f"'{text}'"
