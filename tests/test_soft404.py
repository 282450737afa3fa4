"""The site-wide soft-404 probe's pure parts (the probe itself runs in tests/test_crawl.py)."""

from __future__ import annotations

import pytest

from crawler.soft404 import canonical_is_front_page, probe_url


def test_probe_url_is_a_fresh_sibling_of_the_page() -> None:
    first = probe_url("https://news.example/world/story.html?id=3#top")
    second = probe_url("https://news.example/world/story.html?id=3#top")
    assert first.startswith("https://news.example/world/story.html-")
    assert "?" not in first and "#" not in first
    assert first != second  # random: a site cannot have cached an answer for it


def test_probe_url_of_a_directory_url() -> None:
    assert probe_url("https://news.example/world/").startswith("https://news.example/world/index-")


@pytest.mark.parametrize(
    ("url", "canonical", "expected"),
    [
        ("https://news.example/world/story", "https://news.example/", True),
        ("https://news.example/world/story", "https://www.news.example/index.html", True),
        ("https://news.example/world/story", "https://news.example/world/story", False),
        ("https://news.example/world/story", "https://other.example/", False),
        ("https://news.example/", "https://news.example/", False),  # the front page itself
        ("https://news.example/world/story", None, False),
    ],
)
def test_canonical_is_front_page(url: str, canonical: str | None, expected: bool) -> None:
    assert canonical_is_front_page(url, canonical) is expected
