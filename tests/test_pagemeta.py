"""crawler.pagemeta: bytes -> lxml tree, the metadata readers on a tree, and the text helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.pagemeta import (
    MAX_HTML_BYTES,
    Element,
    absolute_url,
    decode_html,
    extract_canonical,
    extract_heading,
    extract_language,
    extract_published,
    iter_strings,
    leading_text,
    parse_html,
    resolve_url,
    source_line,
    text_of,
)
from crawler.titles import extract_title

PAGE = "https://news.example.com/2024/05/01/the-article-itself"


def _tree(html: str) -> Element:
    root = parse_html(html)
    assert root is not None
    return root


def _first(root: Element, tag: str) -> Element:
    found = next(root.iter(tag), None)
    assert found is not None
    return found


# -- bytes -> tree ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n", "<!-- only a comment -->"])
def test_a_page_without_elements_has_no_tree(text: str) -> None:
    assert parse_html(text) is None


def test_tree_is_rooted_at_html_even_for_a_fragment() -> None:
    root = _tree("<p>hello</p>")
    assert root.tag == "html"
    assert text_of(_first(root, "p")) == "hello"


def test_declared_charset_does_not_override_the_decoded_text() -> None:
    # decode_html already chose the encoding; libxml2 must not re-read the bytes as latin-1.
    text = decode_html('<meta charset="iso-8859-1"><h1>café</h1>'.encode("latin-1"))
    assert extract_heading(_tree(text)) == "café"
    utf8 = '<meta charset="iso-8859-1"><h1>Māori ’s</h1>'
    assert extract_heading(_tree(utf8)) == "Māori ’s"


def test_control_characters_are_dropped_not_replaced() -> None:
    root = _tree("<h1>Big\x00 news\x01\x1f</h1>")
    assert extract_heading(root) == "Big news"


def test_lone_surrogates_do_not_break_parsing() -> None:
    assert extract_heading(_tree("<h1>a\udcffb</h1>")) == "a?b"


def test_source_line_is_the_start_tag_line() -> None:
    root = _tree("<html>\n<body>\n\n<p>x</p>\n<a\nhref='/y'>y</a></body></html>")
    assert source_line(_first(root, "p")) == 4
    # A start tag spread over lines is recorded on the line where it ends.
    assert source_line(_first(root, "a")) == 6


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000))
def test_parse_html_never_raises(text: str) -> None:
    root = parse_html(text)
    assert root is None or root.tag == "html"


def test_deep_nesting_is_cut_by_libxml2_so_the_text_walk_stays_shallow() -> None:
    root = _tree("<div>" * 50_000 + "<h1>deep</h1>" + "</div>" * 50_000)
    assert max(len(list(e.iterancestors())) for e in root.iter("div")) < 300
    # The walk that skips <script> text recurses; at the deepest depth kept it still works.
    nested = _tree("<div>" * 250 + "<script>x()</script>deep" + "</div>" * 250)
    assert text_of(nested) == "deep"


# -- text helpers ----------------------------------------------------------------------------


def test_text_leaves_out_comments_scripts_styles_and_templates() -> None:
    root = _tree(
        "<div>a<!--c-->b<script>s()</script>c<style>p{}</style>d<template>t</template>e</div>"
    )
    div = _first(root, "div")
    assert list(iter_strings(div)) == ["a", "b", "c", "d", "e"]
    assert text_of(div) == "a b c d e"


def test_text_without_hidden_parts_is_the_plain_walk() -> None:
    div = _first(_tree("<div> a <b>bold<!--x--></b> tail <i>it</i></div>"), "div")
    assert list(iter_strings(div)) == [" a ", "bold", " tail ", "it"]


def test_leading_text_strips_pieces_and_stops_at_the_limit() -> None:
    div = _first(_tree("<div>  Read <b> more </b>: " + "<i>word</i> " * 100 + "</div>"), "div")
    assert leading_text(div, 14) == "Read more : wo"
    assert leading_text(_first(_tree("<h2>  Related  </h2>"), "h2"), 80) == "Related"
    assert leading_text(_first(_tree("<p><script>x</script></p>"), "p"), 80) == ""


# -- metadata readers on a tree --------------------------------------------------------------


def test_readers_take_the_tree_root() -> None:
    root = _tree(
        '<html lang="en-GB"><head><title>Storm hits coast - Example News</title>'
        '<link rel="canonical" href="/2024/05/01/storm">'
        '<meta property="article:published_time" content="2024-05-01T08:00:00Z">'
        "</head><body><h1>Storm <em>hits</em> coast</h1></body></html>"
    )
    assert extract_title(root) == "Storm hits coast"
    assert extract_heading(root) == "Storm hits coast"
    assert extract_canonical(root, PAGE) == "https://news.example.com/2024/05/01/storm"
    assert extract_published(root) == "2024-05-01T08:00:00+00:00"
    assert extract_language(root) == "en-GB"


def test_canonical_needs_an_href_and_skips_other_rels() -> None:
    root = _tree(
        '<link rel="canonical"><link rel="alternate" href="/amp">'
        '<link rel="canonical" href="/the/page">'
    )
    assert extract_canonical(root, PAGE) == "https://news.example.com/the/page"
    assert extract_canonical(_tree('<link rel="canonical" href="mailto:x@y">'), PAGE) is None


def test_language_falls_back_to_og_locale() -> None:
    root = _tree('<head><meta property="og:locale" content="pt_BR"></head>')
    assert extract_language(root) == "pt_BR"
    assert extract_language(_tree("<p>x</p>")) is None


def test_byline_date_takes_the_first_dated_element_in_page_order() -> None:
    root = _tree(
        '<div class="article-meta"><span>by Jane</span></div>'
        '<p id="PostedOn">Posted on 3 March 2021</p>'
        '<span class="date">2020-01-01</span>'
    )
    assert extract_published(root) == "2021-03-03"


def test_byline_date_reads_the_title_attribute_and_skips_scripts() -> None:
    root = _tree(
        '<script class="date">var d = "2019-01-01";</script>'
        '<abbr class="published" title="2022-02-02T10:00:00Z">last year</abbr>'
    )
    assert extract_published(root) == "2022-02-02T10:00:00+00:00"


def test_byline_date_looks_at_a_bounded_number_of_elements() -> None:
    decoys = '<span class="meta">no date here</span>' * 40
    root = _tree(decoys + '<span class="date">2020-01-01</span>')
    assert extract_published(root) is None


def test_itemprop_and_time_in_article() -> None:
    itemprop = _tree('<span itemprop="datePublished" content="2018-08-08">Aug</span>')
    assert extract_published(itemprop) == "2018-08-08"
    time_outside = _tree(
        '<aside><time datetime="2001-01-01">x</time></aside>'
        '<article><time datetime="2018-08-08">8 Aug</time></article>'
    )
    assert extract_published(time_outside) == "2018-08-08"


def test_metadata_on_every_corpus_page_reads_without_error(corpus_dir: Path) -> None:
    pages = sorted((corpus_dir / "c_news_pages").rglob("*.html"))
    titled = 0
    for path in pages:
        root = parse_html(decode_html(path.read_bytes()))
        assert root is not None
        titled += extract_title(root) is not None
    assert len(pages) >= 100
    assert titled >= len(pages) - 2


def test_decode_html_caps_the_size() -> None:
    text = decode_html(b"a" * (MAX_HTML_BYTES + 10))
    assert len(text) == MAX_HTML_BYTES


# -- absolute_url's shortcut for plain absolute URLs --------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_HOSTS = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 999)] * 4).map(lambda t: ".".join(map(str, t))),
)
_PATH_CHARS = st.sampled_from(
    [*"abcXYZ019/.-_~%;:@!$&'()*+,=?#\\ \t\x00\x7féü日\xa0\u3000\u2028\x85", "..", "//"]
)
_HREFS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP", "ftp"]),
    _HOSTS,
    st.one_of(st.just(""), st.integers(0, 99999).map(lambda p: f":{p}")),
    st.lists(_PATH_CHARS, max_size=12).map(lambda parts: "/" + "".join(parts)),
)


@settings(max_examples=1000)
@given(
    base=st.sampled_from([PAGE, "http://127.0.0.2:8080/a/b?c", "https://x.test", "file:///tmp/x"]),
    href=st.one_of(_HREFS, _HREFS.map(lambda h: h.replace("/", "", 1)), st.text(max_size=40)),
)
def test_plain_absolute_shortcut_agrees_with_the_general_join(base: str, href: str) -> None:
    assert absolute_url(base, href) == resolve_url(base, href)


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://news.example.com/a?b=1", "https://news.example.com/a?b=1"),
        ("http://127.0.0.2:65535/x", "http://127.0.0.2:65535/x"),
        ("http://127.0.0.2:65536/x", None),  # no such port
        ("https://news.example.com/a#top", "https://news.example.com/a"),  # the general path
        ("https://news.example.com/a;", "https://news.example.com/a"),  # urljoin's empty params
        ("https://news.example.com/a;v=1?b", "https://news.example.com/a;v=1?b"),
        ("/relative/story", "https://news.example.com/relative/story"),
    ],
)
def test_absolute_url_examples(href: str, expected: str | None) -> None:
    assert absolute_url(PAGE, href) == expected
