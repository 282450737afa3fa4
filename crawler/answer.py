"""Pure: what one fetch says about a node — is the URL worth a GET, is the answer a page to
read, and which of the answer's facts go onto the node — and reading a live article.

`Crawl` decides when and how often to fetch; this module what an answer means, so each rule
can be tested with a plain `FetchResult` and no server.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import sys
from typing import TYPE_CHECKING

from crawler.classify import classify_result
from crawler.errors import SourceError
from crawler.model import FetchResult, Flag, Node, PageInfo, SourceKind, Verdict, one_copy
from crawler.related import parse_page
from crawler.sources import Article, parse_article
from crawler.urls import redact_url

if TYPE_CHECKING:
    from crawler.config import CrawlSettings
    from crawler.fetch import Fetcher

HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_html(content_type: str | None) -> bool:
    """True for an HTML content type (or none given, which servers often mean as HTML)."""
    if not content_type:
        return True
    return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES


def looks_like_page(url: str) -> bool:
    """Whether a URL probably names an HTML page, so a GET (not a HEAD) is worth it."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    authority = path.find("://")
    if authority >= 0:  # the path only: "http://example.com" is no MS-DOS program
        slash = path.find("/", authority + 3)
        path = path[slash:] if slash >= 0 else ""
    name = path.rpartition("/")[2]
    if "." not in name:
        return True  # no file extension to guess a type from (most article URLs)
    guessed, _ = mimetypes.guess_type(name)
    return guessed is None or guessed in HTML_TYPES or guessed == "text/plain"


def read_page(
    settings: CrawlSettings,
    content_type: str | None,
    body: bytes | None,
    url: str,
    follow: bool,
) -> PageInfo | None:
    """A page's metadata, and its related stories only when they will be followed."""
    if body is None or not is_html(content_type):
        return None
    return parse_page(
        body,
        url,
        max_related=settings.max_related_per_page,
        same_site=settings.related_same_site,
        max_links_scanned=settings.max_links_per_page,
        metadata_only=not follow,
    )


def apply_answer(node: Node, result: FetchResult, page: PageInfo | None) -> None:
    """Copy what the fetch and the page said onto the node: verdict, status, redirects, flags
    and the page's title, canonical URL and date (the body is the caller's to keep)."""
    # A 304 is judged as the stored page it confirms: a soft 404 stays one on a re-check.
    judged = result
    if result.status_code == 304 and page is not None:
        judged = dataclasses.replace(result, status_code=200)
    node.verdict, node.reason = classify_result(judged, page)
    node.status_code = result.status_code
    node.final_url = one_copy(result.final_url, node.url)
    node.redirects = list(result.redirects)
    node.attempts = result.attempts
    node.elapsed_ms = result.elapsed_ms
    content_type = result.content_type
    node.content_type = sys.intern(content_type) if content_type is not None else None
    node.etag, node.last_modified = result.etag, result.last_modified
    if result.attempts > 1:
        node.add_flag(Flag.RETRIED)
    if node.verdict is Verdict.DEAD:
        node.add_flag(Flag.DEAD)
    if page is not None:
        node.title, node.published = page.title, page.published
        node.canonical_url = one_copy(page.canonical_url, node.url, node.final_url)


async def read_article(
    source: str, fetcher: Fetcher, *, kind: SourceKind | None = None
) -> tuple[Article, FetchResult]:
    """Fetch a live article by URL and read it; SourceError when it cannot be had."""
    result = await fetcher.fetch(source, want_body=True)
    verdict, reason = classify_result(result, None)
    if result.body is None or verdict not in (Verdict.OK, Verdict.REDIRECTED):
        why = reason or verdict.value
        raise SourceError(f"{redact_url(source)}: cannot read the article: {why}")
    article = parse_article(
        source,
        result.body,
        kind,
        base_url=result.final_url or source,
        content_type=result.content_type,
    )
    return article, result
