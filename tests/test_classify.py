"""crawler.classify: one table row per rule, and no soft-404 false positives on real pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.classify import (
    classify_result,
    is_network_down,
    is_not_found_page,
    is_soft404_redirect,
    safe_url,
    status_label,
)
from crawler.model import Failure, FetchResult, Hop, PageInfo, Verdict
from crawler.related import parse_page

URL = "https://news.example.com/2024/05/01/story"
HOME = "https://news.example.com/"
OK_PAGE = PageInfo(title="Storm hits coast", heading="Storm hits coast")


def _answer(status: int, **kwargs: object) -> FetchResult:
    fields: dict[str, object] = {"final_url": URL, "statuses": (status,), **kwargs}
    return FetchResult(URL, status_code=status, **fields)  # type: ignore[arg-type]


def _failed(failure: Failure, url: str = URL) -> FetchResult:
    return FetchResult(url, failure=failure, statuses=(None,))


def _moved(final: str, *codes: int) -> FetchResult:
    hops = tuple(Hop(URL if i == 0 else final, code) for i, code in enumerate(codes))
    return FetchResult(URL, status_code=200, final_url=final, redirects=hops, statuses=(200,))


# (case, result, page, verdict, reason or a part of it; None: the reason must be None)
CASES: list[tuple[str, FetchResult, PageInfo | None, Verdict, str | None]] = [
    ("200", _answer(200), OK_PAGE, Verdict.OK, None),
    ("200 no page", _answer(200), None, Verdict.OK, None),
    ("200 retried", _answer(200, attempts=3, statuses=(503, 503, 200)), None, Verdict.OK, None),
    ("204", _answer(204), None, Verdict.OK, None),
    ("304", _answer(304), None, Verdict.OK, "not modified"),
    ("200 too large", _answer(200, failure=Failure.TOO_LARGE), None, Verdict.OK, "size limit"),
    ("301 to other", _moved("https://news.example.com/2024/05/01/story-2", 301), None,
     Verdict.REDIRECTED, "redirected to https://news.example.com/2024/05/01/story-2 via 301"),
    ("chain", _moved("https://other.example.org/a/b", 301, 302), None,
     Verdict.REDIRECTED, "via 301, 302"),
    ("https upgrade", _moved("https://news.example.com/2024/05/01/story?x=1", 308), None,
     Verdict.REDIRECTED, "story via 308"),
    ("same url after hop", _moved(URL, 302), None, Verdict.OK, None),
    ("tracking only", _moved(URL + "?utm_source=x", 302), None, Verdict.OK, None),
    ("deep to home", _moved(HOME, 301), None, Verdict.SOFT404, "front page"),
    ("deep to /en/", _moved("https://www.news.example.com/en/", 302), None, Verdict.SOFT404, None),
    ("deep to /tv", _moved("https://news.example.com/tv", 302), None, Verdict.REDIRECTED,
     "redirected to https://news.example.com/tv via 302"),
    ("to other home", _moved("https://other.example.org/", 301), None, Verdict.REDIRECTED, None),
    ("page says 404", _answer(200), PageInfo(title="Page not found | Example"), Verdict.SOFT404,
     "'Page not found | Example'"),
    ("h1 says 404", _answer(200), PageInfo(title="Example", heading="Seite nicht gefunden"),
     Verdict.SOFT404, "not found"),
    ("404", _answer(404), None, Verdict.DEAD, "404 Not Found"),
    ("410", _answer(410), None, Verdict.DEAD, "410 Gone"),
    ("414", _answer(414), None, Verdict.DEAD, "414 Request-URI Too Long"),
    ("401", _answer(401), None, Verdict.BLOCKED, "401 Unauthorized: login required"),
    ("402", _answer(402), None, Verdict.BLOCKED, "paywall"),
    ("403", _answer(403), None, Verdict.BLOCKED, "403 Forbidden: the server refused us"),
    ("418", _answer(418), None, Verdict.BLOCKED, "bot wall"),
    ("429", _answer(429, attempts=4), None, Verdict.BLOCKED, "rate-limited after 4 attempts"),
    ("429 long wait", _answer(429, retry_after=120.0), None, Verdict.BLOCKED,
     "429 Too Many Requests: rate-limited (Retry-After: 120 s)"),
    ("451", _answer(451), None, Verdict.BLOCKED, "legal"),
    ("999", _answer(999), None, Verdict.BLOCKED, "999: the server refused us"),
    ("400", _answer(400), None, Verdict.ERROR, "400 Bad Request: the server rejected the request"),
    ("405", _answer(405, method="GET"), None, Verdict.ERROR, "405 Method Not Allowed"),
    ("406", _answer(406), None, Verdict.ERROR, "406 Not Acceptable"),
    ("408", _answer(408), None, Verdict.ERROR, "408"),
    ("500", _answer(500), None, Verdict.ERROR, "500 Internal Server Error: server error"),
    ("503 retried", _answer(503, attempts=4), None, Verdict.ERROR, "after 4 attempts"),
    ("503 long wait", _answer(503, retry_after=3600.0), None, Verdict.ERROR,
     "503 Service Unavailable: server error (Retry-After: 3600 s)"),
    ("503 absurd wait", _answer(503, retry_after=1e28), None, Verdict.ERROR,
     "server error (Retry-After: 1e+28 s)"),
    ("599", _answer(599), None, Verdict.ERROR, "599: server error"),
    ("300", _answer(300), None, Verdict.ERROR, "nothing to follow"),
    ("no status", FetchResult(URL), None, Verdict.ERROR, "no answer"),
    ("dns", _failed(Failure.DNS), None, Verdict.DEAD, "does not resolve"),
    ("refused", _failed(Failure.REFUSED), None, Verdict.DEAD, "refused the connection"),
    ("loop", _failed(Failure.REDIRECT_LOOP), None, Verdict.DEAD, "loop"),
    ("connect", _failed(Failure.CONNECT), None, Verdict.ERROR, "could not connect"),
    ("timeout", _failed(Failure.TIMEOUT), None, Verdict.ERROR, "in time"),
    ("reset", _failed(Failure.RESET), None, Verdict.ERROR, "reset"),
    ("tls", _failed(Failure.TLS), None, Verdict.ERROR, "TLS"),
    ("protocol", _failed(Failure.PROTOCOL), None, Verdict.ERROR, "malformed HTTP"),
    ("too large, no status", _failed(Failure.TOO_LARGE), None, Verdict.ERROR, "size limit"),
    ("too many redirects",
     FetchResult(URL, status_code=301, failure=Failure.TOO_MANY_REDIRECTS,
                 redirects=tuple(Hop(f"{URL}/{i}", 301) for i in range(11))),
     None, Verdict.ERROR, "too many redirects (gave up after 11)"),
    ("bad redirect", FetchResult(URL, status_code=302, failure=Failure.BAD_REDIRECT), None,
     Verdict.ERROR, "not an http(s) URL"),
    ("invalid url", _failed(Failure.INVALID_URL, "http://exa mple..com/"), None, Verdict.ERROR,
     "malformed"),
    ("ftp", _failed(Failure.UNSUPPORTED_SCHEME, "ftp://files.example.com/a"), None,
     Verdict.SKIPPED, "ftp: links are not checked"),
    ("private", _failed(Failure.PRIVATE_ADDRESS), None, Verdict.SKIPPED, "private"),
    ("robots", _failed(Failure.ROBOTS), None, Verdict.SKIPPED, "robots.txt"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("result", "page", "verdict", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify_result(
    result: FetchResult, page: PageInfo | None, verdict: Verdict, reason: str | None
) -> None:
    got_verdict, got_reason = classify_result(result, page)
    assert got_verdict is verdict
    if reason is None and verdict is Verdict.OK:
        assert got_reason is None
    elif reason is not None:
        assert got_reason is not None and reason in got_reason
    if verdict is not Verdict.OK:
        assert got_reason, "every verdict but ok has a reason"


def test_every_failure_has_a_rule() -> None:
    for failure in Failure:
        verdict, reason = classify_result(_failed(failure))
        assert verdict is not Verdict.OK
        assert reason and reason != "the fetch failed"


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([301, 302, 307]),
    st.text(alphabet="abcdefghijklmnop=&", min_size=1, max_size=20),
    st.sampled_from([*Failure, None]),
    st.sampled_from([200, 302, 403, 404, 500, None]),
)
def test_reasons_never_carry_query_strings_or_user_info(
    hop: int, query: str, failure: Failure | None, status: int | None
) -> None:
    secret = f"token=SECRET{query}"
    final = f"https://user:pw@other.example.org/path?{secret}#frag-SECRET"
    result = FetchResult(
        f"https://news.example.com/a?{secret}",
        status_code=status,
        final_url=final,
        redirects=(Hop(URL, hop),),
        failure=failure,
        detail=f"error for {final}",
    )
    _, reason = classify_result(result, PageInfo(title="x"))
    assert reason is None or ("SECRET" not in reason and "pw@" not in reason)


@pytest.mark.parametrize(
    ("title", "heading"),
    [
        ("Page not found", None),
        ("PAGE NOT FOUND", None),
        ("404 Not Found", None),
        ("Example News", "SEITE NICHT GEFUNDEN"),
        ("СТРАНИЦА НЕ НАЙДЕНА", "СТРАНИЦА НЕ НАЙДЕНА"),
        ("404 | The Guardian", None),
        ("Error 404 - Example News", None),
        ("Not Found", None),
        ("Example News", "Sorry, we can't find that page"),
        ("Example", "This page doesn't exist"),
        ("Oops!", "The page you requested could not be found"),
        ("Page introuvable - Le Site", None),
        ("Seite nicht gefunden", None),
        ("Página no encontrada", None),
        ("Página não encontrada - Folha", None),
        ("Pagina non trovata", None),
        ("Pagina niet gevonden", None),
        ("Strona nie została znaleziona", None),
        ("Stránka nenalezena", None),
        ("Страница не найдена", None),
        ("ページが見つかりません", None),
        ("页面不存在", None),
    ],
)
def test_is_not_found_page_says_yes(title: str, heading: str | None) -> None:
    assert is_not_found_page(PageInfo(title=title, heading=heading))


@pytest.mark.parametrize(
    "title",
    [
        "Storm hits coast",
        "404 days later: the long road back",
        "Missing hiker found alive after 10 days",
        "The founders who found their way",
        "Notfound Inc raises $10m",
        "Missing plane still not found",
        "Police cannot find the suspect",
        "Experts could not find a link between the cases",
        "Why the page of history is missing",
        "",
    ],
)
def test_is_not_found_page_says_no(title: str) -> None:
    assert not is_not_found_page(PageInfo(title=title or None, heading=title or None))


def _real_pages(corpus: Path) -> list[tuple[Path, str]]:
    pages = corpus / "c_news_pages"
    found = [
        (p, "https://example.com/a/b")
        for p in sorted((pages / "readability").glob("*/source.html"))
    ]
    found += [
        (p, "https://example.com/a/b") for p in sorted((pages / "newspaper4k/html").glob("*.html"))
    ]
    index = json.loads((pages / "htmldate/SUBSET_index.json").read_text())
    found += [(pages / "htmldate" / entry["file"], url) for url, entry in index.items()]
    return found


def test_no_soft404_false_positives_on_real_pages(corpus_dir: Path) -> None:
    pages = _real_pages(corpus_dir)
    flagged = [
        path.name for path, url in pages if is_not_found_page(parse_page(path.read_bytes(), url))
    ]
    print(f"\nsoft-404 check on {len(pages)} real article pages: {len(flagged)} flagged")
    assert len(pages) == 26 + 19 + 55
    assert flagged == []


@pytest.mark.parametrize(
    ("url", "final", "expected"),
    [
        (URL, HOME, True),
        (URL, "http://www.news.example.com", True),
        (URL, "https://news.example.com/index.html", True),
        (URL, "https://news.example.com/de-ch/", True),
        ("https://news.example.com/?p=123", HOME, True),
        (HOME, "https://www.news.example.com/", False),  # the front page itself
        ("https://news.example.com/?utm_source=x", HOME, False),
        (URL, "https://news.example.com/2024/05/01/story-2", False),
        (URL, "https://news.example.com/?q=1", False),
        ("https://t.co/abc123", "https://other.example.org/", False),  # a shortener's target
        (URL, None, False),
        (URL, "http://[bad", False),
        # Language and locale roots (ISO 639-1, optionally a region or script), any case.
        (URL, "https://news.example.com/en", True),
        (URL, "https://news.example.com/en-gb/", True),
        (URL, "https://news.example.com/pt_BR/", True),
        (URL, "https://news.example.com/DE/", True),
        (URL, "https://news.example.com/es-419/", True),
        (URL, "https://news.example.com/zh-hant/", True),
        (URL, "https://news.example.com/uk/", True),  # Ukrainian, and the Guardian's UK edition
        (URL, "https://news.example.com/us/", True),  # country editions with no language code
        (URL, "https://news.example.com/au", True),
        # Two-letter paths that are no language: sections and pages, not front pages.
        ("https://bbc.com/news/some-story", "https://bbc.com/tv", False),
        ("http://127.0.0.1:8765/redir", "http://127.0.0.1:8765/ok", False),
        (URL, "https://news.example.com/go/", False),
        (URL, "https://news.example.com/TV", False),
        (URL, "https://news.example.com/tv-gb/", False),
        (URL, "https://news.example.com/en/?q=1", False),
        (URL, "https://news.example.com/en-gb-x/", False),
        (URL, "https://news.example.com/en/news/", False),
    ],
)
def test_is_soft404_redirect(url: str, final: str | None, expected: bool) -> None:
    assert is_soft404_redirect(url, final) is expected


_DOWN = _failed(Failure.DNS)
_ANSWERED = _answer(404)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], False),
        ([_DOWN], True),
        ([_DOWN, _failed(Failure.TIMEOUT), _failed(Failure.REFUSED)], True),
        ([_failed(Failure.CONNECT)], True),
        ([_DOWN, _ANSWERED], False),
        ([_ANSWERED], False),
        ([_DOWN, FetchResult(URL, failure=Failure.TIMEOUT, statuses=(503, None))], False),
        ([_failed(Failure.TLS), _failed(Failure.ROBOTS)], False),
        ([_failed(Failure.UNSUPPORTED_SCHEME), _failed(Failure.PRIVATE_ADDRESS)], False),
    ],
)
def test_is_network_down(results: list[FetchResult], expected: bool) -> None:
    assert is_network_down(iter(results)) is expected


def test_status_label_and_safe_url() -> None:
    assert status_label(404) == "404 Not Found"
    assert status_label(599) == "599"
    assert safe_url("https://u:p@x.com/a/b?token=1#f") == "https://x.com/a/b"
    assert safe_url("https://x.com") == "https://x.com/"
