"""crawler.titles: Mozilla Readability's title rules, and what the crawler adds to them."""

from __future__ import annotations

import pytest

from crawler.pagemeta import Element, parse_html
from crawler.titles import extract_title, readability_title


def _tree(html: str) -> Element:
    root = parse_html(html)
    assert root is not None
    return root


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
