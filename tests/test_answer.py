"""What one fetch says about a node: the pure rules of crawler/answer.py."""

from __future__ import annotations

import pytest

from crawler.answer import apply_answer, is_html, looks_like_page, read_page
from crawler.config import CrawlSettings
from crawler.model import FetchResult, Flag, Node, PageInfo, Relation, Verdict

NOT_FOUND_PAGE = PageInfo(title="Page not found", heading="Sorry, this page does not exist")


def node() -> Node:
    url = "https://news.example.com/story"
    return Node(url=url, normalized_url=url, relation=Relation.REFERENCE, depth=1)


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://news.example.com/2024/05/01/story", True),
        ("https://news.example.com/story.html", True),
        ("https://news.example.com/notes.txt", True),
        ("https://news.example.com/a.v2/story?file=report.pdf#x.zip", True),
        ("http://example.com", True),  # ".com" is no file type here
        ("http://example.com?download=a.pdf", True),
        ("https://news.example.com/report.pdf", False),
        ("https://news.example.com/photo.JPG?size=large", False),
    ],
)
def test_looks_like_page_reads_the_path_only(url: str, page: bool) -> None:
    assert looks_like_page(url) is page


@pytest.mark.parametrize(
    ("content_type", "html"),
    [
        (None, True),
        ("", True),
        ("text/html; charset=utf-8", True),
        ("APPLICATION/XHTML+XML", True),
        ("application/pdf", False),
        ("text/plain", False),
    ],
)
def test_is_html_reads_the_media_type_only(content_type: str | None, html: bool) -> None:
    assert is_html(content_type) is html


def test_read_page_reads_html_only_and_lists_related_stories_only_when_followed() -> None:
    body = (
        b"<html><head><title>Talks resume</title></head><body><article><p>Text</p></article>"
        b'<aside class="related"><ul><li><a href="/news/2024/other-story.html">Other</a></li>'
        b"</ul></aside>"
        b"</body></html>"
    )
    url = "https://news.example.com/story"
    settings = CrawlSettings()
    followed = read_page(settings, "text/html", body, url, follow=True)
    leaf = read_page(settings, "text/html", body, url, follow=False)
    assert followed is not None and leaf is not None
    assert followed.title == leaf.title == "Talks resume"
    assert [link.url for link in followed.related] == [
        "https://news.example.com/news/2024/other-story.html"
    ]
    assert leaf.related == ()
    assert read_page(settings, "application/pdf", body, url, follow=True) is None
    assert read_page(settings, "text/html", None, url, follow=True) is None


def test_apply_answer_copies_the_fetch_and_flags_retries_and_dead_links() -> None:
    target = node()
    result = FetchResult(
        url=target.url, status_code=404, attempts=2, statuses=(503, 404), etag='"v1"'
    )
    apply_answer(target, result, None)
    assert (target.verdict, target.status_code, target.attempts) == (Verdict.DEAD, 404, 2)
    assert target.etag == '"v1"'
    assert Flag.RETRIED in target.flags and Flag.DEAD in target.flags


def test_apply_answer_judges_a_304_as_the_stored_page_it_confirms() -> None:
    # A stored soft 404 that the server says has not changed is still a soft 404, not "ok".
    target = node()
    result = FetchResult(url=target.url, status_code=304)
    apply_answer(target, result, NOT_FOUND_PAGE)
    assert target.verdict is Verdict.SOFT404
    assert target.status_code == 304
    assert target.title == "Page not found"
    fresh = node()
    apply_answer(fresh, result, None)  # nothing stored to judge: the 304 itself is the answer
    assert fresh.verdict is Verdict.OK


def test_apply_answer_keeps_one_copy_of_urls_spelled_like_the_nodes_own() -> None:
    # A crawl holds every node until it ends: equal URLs share one string, unequal ones stay.
    target = node()
    spelled_alike = "".join(target.url)  # equal, but another object
    page = PageInfo(title="Story", canonical_url="".join(target.url))
    result = FetchResult(url=target.url, status_code=200, final_url=spelled_alike)
    apply_answer(target, result, page)
    assert target.final_url == target.url and target.final_url is target.url
    assert target.canonical_url is target.url
    moved = node()
    result = FetchResult(url=moved.url, status_code=200, final_url=moved.url + "?page=2")
    apply_answer(moved, result, PageInfo(canonical_url=moved.url + "?page=2"))
    assert moved.final_url == moved.url + "?page=2" and moved.canonical_url == moved.final_url
    assert moved.canonical_url is moved.final_url
    blank = node()
    apply_answer(blank, FetchResult(url=blank.url, status_code=200, content_type=""), None)
    assert blank.content_type == ""  # an empty Content-Type header is kept as sent, not None
