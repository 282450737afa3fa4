"""crawler.pagemeta: bytes -> lxml tree, the metadata readers on a tree, and the text helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.pagemeta import (
    MAX_HTML_BYTES,
    Element,
    decode_html,
    extract_canonical,
    extract_heading,
    extract_language,
    extract_published,
    extract_title,
    iter_strings,
    leading_text,
    parse_html,
    readability_title,
    source_line,
    text_of,
)

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


def test_title_inside_inline_svg_is_not_the_page_title() -> None:
    root = _tree("<body><svg><title>icon</title></svg><title>Real title</title></body>")
    assert extract_title(root) == "Real title"


# -- title: Mozilla Readability's rules (Readability.js 0.6) ---------------------------------

_LONG = "Storm floods the coastal towns"  # 5 words: never put back by the 4-words rule


def _ld(obj: str) -> str:
    return f'<script type="application/ld+json">{obj}</script>'


def _meta(key: str, value: str) -> str:
    attr = "property" if key.startswith("og:") else "name"
    return f'<meta {attr}="{key}" content="{value}">'


_TITLE_TAGS = ["dc:title", "dcterm:title", "og:title", "weibo:article:title",
               "weibo:webpage:title", "title", "twitter:title", "parsely-title"]  # fmt: skip


@pytest.mark.parametrize("first", range(len(_TITLE_TAGS)))
def test_title_meta_tags_in_readability_order(first: int) -> None:
    # Every tag from `first` on is present, in reverse order in the page: the most preferred wins.
    tags = "".join(_meta(k, f"From {k} tag") for k in reversed(_TITLE_TAGS[first:]))
    root = _tree(f"<head><title>From the title element</title>{tags}</head>")
    assert extract_title(root) == f"From {_TITLE_TAGS[first]} tag"


def test_json_ld_article_beats_meta_tags_and_other_types_are_ignored() -> None:
    head = _meta("dc:title", "From dc title") + _ld(
        '[{"@type": "WebSite", "name": "Site"}, {"@type": "NewsArticle", "headline": "Lead"}]'
    )
    assert extract_title(_tree(head)) == "Lead"
    # Only schema.org article types count: a WebPage's name is not the title.
    page = _meta("dc:title", "From dc title") + _ld('{"@type": "WebPage", "name": "Page"}')
    assert extract_title(_tree(page)) == "From dc title"


def test_json_ld_name_is_preferred_unless_only_the_headline_matches_the_title() -> None:
    ld = _ld(f'{{"@type": "NewsArticle", "name": "Example News", "headline": "{_LONG}"}}')
    # aktualne.cz: the site's name in `name`, the headline matches <title>.
    assert extract_title(_tree(f"<title>{_LONG} - Example News</title>{ld}")) == _LONG
    # Neither matches <title>: `name`, Readability's default.
    assert extract_title(_tree(f"<title>Something else entirely here</title>{ld}")) == (
        "Example News"
    )


def test_title_meta_names_are_normalised_and_the_last_tag_wins() -> None:
    root = _tree(
        '<meta name="DC.Title" content="first"><meta name="dc.title" content="Dublin Core">'
        '<meta property="og:title" content="Open Graph">'
    )
    assert extract_title(root) == "Dublin Core"


def test_title_html_entities_left_escaped_in_metadata_are_unescaped() -> None:
    root = _tree(
        '<meta property="og:title" content="Tom &amp;amp; Jerry&amp;#39;s &amp;#x1F600; day">'
    )
    assert extract_title(root) == "Tom & Jerry's \U0001f600 day"
    # A reference out of Unicode's range (or too long to read) is U+FFFD, as HTML parsers do.
    huge = _tree(f'<meta property="og:title" content="a &amp;#{"9" * 5000}; &amp;#0; b">')
    assert extract_title(huge) == "a \ufffd \ufffd b"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # The last " | - \ / > » " separated part is cut.
        (f"{_LONG} | Example News", _LONG),
        (f"Part one - {_LONG} / Example", f"Part one - {_LONG}"),
        # Fewer than 3 words left: the first part is cut instead.
        (f"News | {_LONG}", _LONG),
        # A separator needs spaces around it.
        (f"{_LONG}-Example News", f"{_LONG}-Example News"),
        # "Kicker: title": the part after the last colon, or the first if that is too short...
        (f"Breaking: {_LONG}", _LONG),
        (f"Video: {_LONG}: live", f"{_LONG}: live"),
        # ...unless more than 5 words come before the colon.
        (f"What the storm did to the towns: {_LONG}", f"What the storm did to the towns: {_LONG}"),
        # 4 words or fewer left: the whole title is kept...
        ("Storm hits coast - Example News", "Storm hits coast - Example News"),
        ("Breaking: storm hits", "Breaking: storm hits"),
        # ...except when a hierarchical separator took off exactly one word.
        ("Storm hits coast » Example", "Storm hits coast"),
        ("Storm hits coast » Example News", "Storm hits coast » Example News"),
    ],
)
def test_readability_title_rules(title: str, expected: str) -> None:
    assert readability_title(_tree(f"<title>{title}</title><h1>Other</h1><h1>x</h1>")) == expected


def test_readability_title_keeps_a_colon_title_an_h1_or_h2_repeats() -> None:
    title = f"Breaking: {_LONG}"
    assert readability_title(_tree(f"<title>{title}</title><h2> {title} </h2>")) == title
    assert readability_title(_tree(f"<title>{title}</title><h2>Breaking</h2>")) == _LONG


def test_readability_title_too_short_or_too_long_gives_way_to_the_only_h1() -> None:
    one_h1 = f"<h1> {_LONG}\n  <em>today</em></h1>"
    assert readability_title(_tree(f"<title>Home</title>{one_h1}")) == f"{_LONG} today"
    long_title = "word " * 40
    assert readability_title(_tree(f"<title>{long_title}</title>{one_h1}")) == f"{_LONG} today"
    # Two <h1>: the title stays; an <h1> of 4 words or fewer: the title comes back.
    assert readability_title(_tree(f"<title>Home</title>{one_h1}<h1>b</h1>")) == "Home"
    assert readability_title(_tree("<title>Home</title><h1>Storm hits coast</h1>")) == "Home"
    # 15 to 150 characters: the <h1> is not looked at.
    assert readability_title(_tree(f"<title>Fifteen chars!!</title>{one_h1}")) == (
        "Fifteen chars!!"
    )


def test_readability_title_reads_document_title_whitespace_and_skips_svg() -> None:
    # document.title collapses ASCII whitespace only: a no-break space is no separator space.
    root = _tree(f"<svg><title>icon</title></svg><title>\n  {_LONG}\n|\tSite </title>")
    assert readability_title(root) == _LONG
    nbsp = _tree(f"<title>{_LONG}&nbsp;|&nbsp;Site</title>")
    assert readability_title(nbsp) == f"{_LONG}\xa0|\xa0Site"
    assert readability_title(_tree("<p>no title</p>")) == ""


# -- title: what the crawler adds to Readability ---------------------------------------------


def test_title_cuts_a_suffix_equal_to_og_site_name() -> None:
    site = _meta("og:site_name", "Example News")
    root = _tree(_meta("og:title", f"{_LONG} | Example News") + site)
    assert extract_title(root) == _LONG
    other = _tree(_meta("og:title", f"{_LONG} | Part two") + site)
    assert extract_title(other) == f"{_LONG} | Part two"


def test_metadata_title_suffix_is_cut_when_another_title_tag_confirms_it() -> None:
    root = _tree(_meta("title", f"{_LONG} » Local » Example") + _meta("twitter:title", _LONG))
    assert extract_title(root) == _LONG


def test_metadata_title_is_not_cut_by_the_h1() -> None:
    # The Guardian: og:title carries " | author"; Readability keeps it, so does the crawler.
    root = _tree(_meta("og:title", f"{_LONG} | Jane Writer") + f"<h1>{_LONG}</h1>")
    assert extract_title(root) == f"{_LONG} | Jane Writer"


def test_title_element_suffix_is_cut_when_the_h1_confirms_it() -> None:
    # xinhuanet.com: "-Site" without spaces, which Readability's separators do not cover.
    root = _tree(f"<title>{_LONG}-Example News</title><h1>{_LONG}</h1>")
    assert extract_title(root) == _LONG
    assert extract_title(_tree(f"<title>{_LONG}-Example News</title>")) == f"{_LONG}-Example News"


def test_page_without_title_falls_back_to_the_first_h1() -> None:
    root = _tree("<h1>Storm hits</h1><h1>Second</h1>")
    assert extract_title(root) == "Storm hits"
    assert extract_title(_tree("<p>nothing</p>")) is None


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
