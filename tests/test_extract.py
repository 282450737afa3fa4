"""Link extraction against linkify-it's, GFM's and lychee's fixtures, plus edge cases."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extract import (
    SKIPPED_SCHEMES,
    extract_html_links,
    extract_links,
    extract_markdown_links,
    extract_text_links,
)
from crawler.model import Link, SourceKind

REPO = Path(__file__).resolve().parents[1]
SCHEMEFUL = re.compile(r"(?i)https?://")


def urls(links: list[Link]) -> list[str]:
    """Just the URLs, in order."""
    return [link.url for link in links]


# -- linkify-it fixtures -----------------------------------------------------------------------


def linkify_cases(path: Path) -> list[tuple[str, str]]:
    """(input, expected first link) pairs, read as FORMAT.md describes links.txt."""
    lines = path.read_text(encoding="utf-8").split("\n")
    cases, index = [], 0
    while index < len(lines):
        line = lines[index]
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        if not line.strip() or line.startswith("%"):
            index += 1
        elif nxt.strip() and not nxt.startswith("%"):
            cases.append((line, nxt))
            index += 2
        else:
            cases.append((line, line))
            index += 1
    return cases


def first_raw(text: str) -> str | None:
    """The first link's text as written, as linkify-it's tests compare it."""
    links = extract_text_links(text)
    return links[0].raw if links else None


def test_linkify_it_links(corpus_dir: Path) -> None:
    cases = linkify_cases(corpus_dir / "a_url_extraction/linkify-it/links.txt")
    schemeful = [(text, want) for text, want in cases if SCHEMEFUL.match(want)]
    passed = sum(first_raw(text) == want for text, want in schemeful)
    passed_all = sum(first_raw(text) == want for text, want in cases)
    print(f"\nlinkify-it links: http(s) {passed}/{len(schemeful)}, all {passed_all}/{len(cases)}")
    assert len(schemeful) >= 70
    assert passed == len(schemeful)
    # The rest are schema-less domains, e-mail, ftp: and // links: out of policy for prose.
    assert passed_all >= 79


def test_linkify_it_not_links(corpus_dir: Path) -> None:
    path = corpus_dir / "a_url_extraction/linkify-it/not_links.txt"
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]
    inputs = [ln for ln in lines if not ln.startswith("%")]
    found = {text: urls(extract_text_links(text)) for text in inputs}
    wrong = {text: got for text, got in found.items() if got}
    print(f"\nlinkify-it not_links.txt: {len(inputs) - len(wrong)}/{len(inputs)} correctly empty")
    assert len(inputs) >= 30
    assert wrong == {}


# -- GFM spec ----------------------------------------------------------------------------------

FENCE = "`" * 32


def gfm_examples(path: Path, section: str | None = None) -> list[tuple[str, str, bool]]:
    """(markdown, expected html, needs the autolink extension) for each example block."""
    text = path.read_text(encoding="utf-8")
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    examples = []
    pattern = rf"^{FENCE} example( autolink)?\n(.*?)^\.\n(.*?)^{FENCE}$"
    for match in re.finditer(pattern, text, re.M | re.S):
        markdown = match.group(2).replace("→", "\t")
        autolink = bool(match.group(1)) or section == "Autolinks"  # extensions.txt's section
        examples.append((markdown, match.group(3), autolink))
    return examples


BASE = "https://example.org/dir/page"


def expected_hrefs(expected_html: str) -> list[str]:
    """hrefs/srcs the oracle renders, filtered by our policy, resolved and decoded."""
    raw = re.findall(r'<(?:a [^>]*?href|img [^>]*?src)="([^"]*)"', expected_html)
    kept = []
    for href in map(html.unescape, raw):
        scheme = href.split(":", 1)[0].lower() if ":" in href else ""
        if href and not href.startswith("#") and scheme not in SKIPPED_SCHEMES:
            kept.append(unquote(urljoin(BASE, href)))
    return kept


def found_hrefs(markdown: str, autolink: bool) -> list[str]:
    """Our links, decoded; bare URLs only when the example turns the GFM extension on."""
    links = extract_markdown_links(markdown, BASE)
    return [unquote(ln.url) for ln in links if autolink or ln.origin != "markdown:bare"]


def gfm_pass_rate(examples: list[tuple[str, str, bool]]) -> tuple[int, list[str]]:
    """Number of examples whose links match the oracle, and the failing inputs."""
    failures = []
    for markdown, expected, autolink in examples:
        if expected.strip() == "<IGNORE>":
            extract_markdown_links(markdown, BASE)  # must only not crash
            continue
        if found_hrefs(markdown, autolink) != expected_hrefs(expected):
            failures.append(markdown)
    return len(examples) - len(failures), failures


@pytest.mark.parametrize(
    ("filename", "section", "minimum", "allowed_failures"),
    [
        ("spec_links_section_excerpt.txt", None, 80, 0),
        # 1 by policy: a bare ftp:// URL in prose is not a web reference we check.
        ("spec_autolinks_sections_excerpt.txt", None, 28, 1),
        ("extensions.txt", "Autolinks", 3, 0),
    ],
)
def test_gfm_spec(
    corpus_dir: Path, filename: str, section: str | None, minimum: int, allowed_failures: int
) -> None:
    examples = gfm_examples(corpus_dir / "a_url_extraction/gfm-spec" / filename, section)
    passed, failures = gfm_pass_rate(examples)
    print(f"\nGFM {filename} {section or ''}: {passed}/{len(examples)}")
    for markdown in failures:
        print("  FAIL", repr(markdown))
    assert len(examples) >= minimum
    assert passed >= len(examples) - allowed_failures


# -- lychee fixtures (EXPECTED.md) -------------------------------------------------------------


def lychee(corpus_dir: Path, name: str) -> str:
    """One lychee fixture's text."""
    return (corpus_dir / "a_url_extraction/lychee" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "TEST_HTML5.html",
            {
                "https://example.com/head/home",
                "https://example.com/css/style_full_url.css",
                "https://example.com/body/a",
                "https://example.com/body/div_empty_a",
            },
        ),
        ("TEST_HTML5_LOWERCASE_DOCTYPE.html", {"https://example.com/body/a"}),
        (
            "TEST_HTML5_MINIFIED.html",
            {
                "https://example.com/",
                "https://example.com/favicon.ico",
                "https://example.com/docs/",
                "https://example.com/forum",
            },
        ),
        # lychee drops `https://example]org/...`; we keep it so the crawl reports it as malformed.
        (
            "TEST_HTML5_MALFORMED_LINKS.html",
            {"https://example.com/valid", "https://example]org/malformed_two"},
        ),
        (
            "TEST_HTML5_CUSTOM_ELEMENTS.html",
            {
                "https://example.com/some-weird-element",
                "https://example.com/even-weirder-src",
                "https://example.com/even-weirder-href",
                "https://example.com/citations",
            },
        ),
        ("LINK_PERIOD.html", {"https://www.example.com/smth."}),
        ("TEST_VERBATIM.html", set()),
        ("TEST_EMAIL_QUERY_PARAMS.html", set()),  # mailto: is never checked
    ],
)
def test_lychee_html(corpus_dir: Path, name: str, expected: set[str]) -> None:
    assert set(urls(extract_html_links(lychee(corpus_dir, name)))) == expected


def test_lychee_minified_keeps_duplicates(corpus_dir: Path) -> None:
    found = urls(extract_html_links(lychee(corpus_dir, "TEST_HTML5_MINIFIED.html")))
    assert found.count("https://example.com/") == 2
    assert "https://fonts.externalsite.com" not in found


def test_lychee_relative_links_resolve_with_base(corpus_dir: Path) -> None:
    found = urls(extract_html_links(lychee(corpus_dir, "TEST_HTML5.html"), "https://site.test/"))
    assert "https://site.test/images/icon.png" in found
    assert "https://site.test/js/script.js" in found
    assert len(found) == 7


def test_lychee_markdown(corpus_dir: Path) -> None:
    found = urls(extract_markdown_links(lychee(corpus_dir, "TEST.md")))
    # lychee's 12 less what we never check: the relative logo (no base), #awesome and the mail.
    assert found == [
        "https://en.wikipedia.org/wiki/Static_program_analysis",
        "https://endler.dev",
        "https://github.com/analysis-tools-dev/static-analysis/issues/350",
        "https://ldra.com",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        "https://licensebuttons.net/p/zero/1.0/88x31.png",
        "http://example.com",
        "https://example.com",
    ]
    with_base = extract_markdown_links(lychee(corpus_dir, "TEST.md"), "https://site.test/a/b/")
    assert with_base[0].url == "https://site.test/a/assets/banner.svg"
    assert with_base[0].origin == "markdown:image"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("TEST_CODE_BLOCKS.md", []),
        ("TEST_STYLESHEET_LINK.md", []),
        ("TEST_EMAIL.md", ["https://endler.dev"]),
        ("TEST_EMAIL_QUERY_PARAMS.md", []),
        ("TEST_SCHEMES.md", ["https://example.com", "http://example.com"]),
    ],
)
def test_lychee_markdown_fixtures(corpus_dir: Path, name: str, expected: list[str]) -> None:
    assert urls(extract_markdown_links(lychee(corpus_dir, name))) == expected


def test_lychee_text_schemes(corpus_dir: Path) -> None:
    # Prose is checked for http(s) only; slack:// and file:// are not web references.
    assert urls(extract_text_links(lychee(corpus_dir, "TEST_SCHEMES.txt"))) == [
        "https://example.com"
    ]


# -- the shipped example article ---------------------------------------------------------------


def test_example_article() -> None:
    path = REPO / "config/examples/syria-russia.txt"
    text = path.read_text(encoding="utf-8")
    links = extract_links(text, SourceKind.TEXT)
    lines = text.splitlines()
    assert len(links) == 3
    assert links[1].url == links[2].url
    assert [lines[link.line - 1].strip() for link in links if link.line] == urls(links)
    assert (
        links[0].text
        == "Syria Could Let Russia Keep Air and Naval Bases, New Defense Minister Says"
    )
    assert links[1].text == (
        "Syria’s New Leadership Urges Russia to ‘Address Past Mistakes’ in First Talks"
        " Since Assad’s Ouster"
    )
    assert links[2].text is None
    assert {link.origin for link in links} == {"text"}


def test_related_title_needs_matching_slug() -> None:
    text = "Related article: Something Else Entirely Here\n\nhttps://news.test/2025/cats-and-dogs\n"
    assert extract_text_links(text)[0].text is None


# -- plain-text boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See https://example.com/a.", "https://example.com/a"),
        ("Is it https://example.com/a?", "https://example.com/a"),
        ("https://example.com/a, and", "https://example.com/a"),
        ("https://example.com/a;", "https://example.com/a"),
        ("https://example.com/a!", "https://example.com/a"),
        ("(see https://example.com/a)", "https://example.com/a"),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("(https://en.wikipedia.org/wiki/Foo_(bar))", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ('"https://example.com/q"', "https://example.com/q"),
        ("'https://example.com/q'", "https://example.com/q"),
        ("“https://example.com/q”", "https://example.com/q"),
        ("[https://example.com/q]", "https://example.com/q"),
        ("<http://x.example/a>", "http://x.example/a"),
        ("https://ru.wikipedia.org/wiki/Москва.", "https://ru.wikipedia.org/wiki/Москва"),
        ("Visit www.example.com/news.", "http://www.example.com/news"),
        ("https://a.test/x?q=1&hl;", "https://a.test/x?q=1"),
        ("https://a.test/x?q=1&hl=en", "https://a.test/x?q=1&hl=en"),
        ("See http://example.com./page today", "http://example.com./page"),  # fully qualified
        ("at https://www.bbc.co.uk./news.", "https://www.bbc.co.uk./news"),
        ("Was it http://example.com.?", "http://example.com"),
    ],
)
def test_text_boundaries(text: str, expected: str) -> None:
    assert urls(extract_text_links(text)) == [expected]


def test_text_www_keeps_raw() -> None:
    (link,) = extract_text_links("go to www.example.com now")
    assert (link.url, link.raw, link.line) == ("http://www.example.com", "www.example.com", 1)


@pytest.mark.parametrize(
    "text",
    [
        "ftp://example.com",
        "mailto:a@b.example",
        "http://",
        "example.com",
        "xhttp://a.b",
        "http://example.com../x",
        "http://./x",
    ],
)
def test_text_non_links(text: str) -> None:
    assert extract_text_links(text) == []


def test_text_duplicates_and_lines() -> None:
    links = extract_text_links("a https://x.test/1\n\nb https://x.test/1 https://x.test/2\n")
    assert [(link.url, link.line) for link in links] == [
        ("https://x.test/1", 1),
        ("https://x.test/1", 3),
        ("https://x.test/2", 3),
    ]


# -- HTML --------------------------------------------------------------------------------------


def test_html_base_href_resolution() -> None:
    page = '<html><head><base href="/news/"></head><body><a href="story">S</a></body></html>'
    (link,) = extract_html_links(page, "https://paper.test/index.html")
    assert (link.url, link.raw, link.text, link.origin) == (
        "https://paper.test/news/story",
        "story",
        "S",
        "a[href]",
    )


def test_html_kinds_text_and_lines() -> None:
    page = (
        "<html><head>\n"
        '<link rel="preconnect" href="https://fonts.test">\n'
        '<link rel="dns-prefetch" href="//cdn.test">\n'
        '<link rel="canonical" href="https://paper.test/a">\n'
        '<meta http-equiv="refresh" content="5; url=https://paper.test/r">\n'
        "</head><body>\n"
        '<a href="https://x.test/1">  Some\n   text </a>\n'
        '<img src="/i.png" alt="A picture" srcset="/i2.png 2x, /i3.png 3x">\n'
        '<a href="javascript:void(0)">js</a><a href="#top">top</a><a href="mailto:a@b.c">m</a>\n'
        '<a href="tel:+1">t</a><img src="data:image/png;base64,AAAA">\n'
        '<blockquote cite="https://q.test/src">q</blockquote>\n'
        '<iframe src="https://v.test/embed"></iframe>\n'
        "<pre><a href='https://hidden.test/'>x</a></pre><code>https://hidden.test/c</code>\n"
        "</body></html>"
    )
    links = extract_html_links(page, "https://paper.test/")
    assert [(ln.url, ln.line, ln.origin) for ln in links] == [
        ("https://paper.test/a", 4, "link[href]"),
        ("https://paper.test/r", 5, "meta[refresh]"),
        ("https://x.test/1", 7, "a[href]"),
        ("https://paper.test/i.png", 9, "img[src]"),
        ("https://paper.test/i2.png", 9, "img[srcset]"),
        ("https://paper.test/i3.png", 9, "img[srcset]"),
        ("https://q.test/src", 12, "blockquote[cite]"),
        ("https://v.test/embed", 13, "iframe[src]"),
    ]
    assert links[2].text == "Some text"
    assert links[3].text == "A picture"


def test_html_bytes_with_meta_charset() -> None:
    page = '<meta charset="iso-8859-1"><a href="https://x.test/caf\xe9">caf\xe9</a>'.encode(
        "latin-1"
    )
    (link,) = extract_html_links(page)
    assert (link.url, link.text) == ("https://x.test/café", "café")


def test_html_max_links_caps_work() -> None:
    page = "<html><body>" + "<a href='https://x.test/p'>p</a>\n" * 100_000 + "</body></html>"
    links = extract_html_links(page, max_links=10)
    assert len(links) == 10
    assert extract_html_links("<a href='https://x.test/'>x</a>", max_links=0) == []


def test_html_empty_and_junk() -> None:
    assert extract_html_links("") == []
    assert extract_html_links(b"\x00\xff\xfe") == []
    assert extract_html_links('<?xml version="1.0" encoding="utf-8"?><a href="http://a.test">') == [
        Link(url="http://a.test", line=1, text=None, raw="http://a.test", origin="a[href]")
    ]


# -- Markdown ----------------------------------------------------------------------------------


def test_markdown_code_is_skipped() -> None:
    markdown = (
        "Intro https://a.test/1 and `https://hidden.test/span` and [x](https://a.test/2)\n\n"
        "```\nhttps://hidden.test/fence [y](https://hidden.test/fl)\n```\n\n"
        "    https://hidden.test/indented\n\n"
        "<https://a.test/3>\n"
    )
    links = extract_markdown_links(markdown)
    assert [(ln.url, ln.line, ln.origin) for ln in links] == [
        ("https://a.test/1", 1, "markdown:bare"),
        ("https://a.test/2", 1, "markdown"),
        ("https://a.test/3", 9, "markdown:autolink"),
    ]
    assert links[1].text == "x"


def test_markdown_reference_image_and_raw_html() -> None:
    markdown = (
        'Title\n=====\n\nSee [the story][s] and ![chart](img/c.png "t")\n'
        "and <a href='/raw'>raw</a>.\n\n"
        '<div>\n<a href="https://block.test/">b</a>\n</div>\n\n'
        "[s]: https://ref.test/story\n"
    )
    links = extract_markdown_links(markdown, "https://site.test/post/")
    assert [(ln.url, ln.line, ln.text, ln.origin) for ln in links] == [
        ("https://ref.test/story", 4, "the story", "markdown"),
        ("https://site.test/post/img/c.png", 4, "chart", "markdown:image"),
        ("https://site.test/raw", 5, None, "a[href]"),
        ("https://block.test/", 8, "b", "a[href]"),
    ]


def test_markdown_element_order_and_url_lines() -> None:
    # As rendered (and as lychee's pulldown-cmark reports): the link, then its image; each
    # on the line where its URL is written.
    links = extract_markdown_links("[![i](https://a.test/i.png)\nmore](https://a.test/page)")
    assert [(ln.url, ln.line, ln.text) for ln in links] == [
        ("https://a.test/page", 2, "more"),
        ("https://a.test/i.png", 1, "i"),
    ]


def test_dispatch() -> None:
    assert urls(extract_links("<a href='/x'>x</a>", SourceKind.HTML, "https://s.test/")) == [
        "https://s.test/x"
    ]
    assert urls(extract_links("[x](/y)", SourceKind.MARKDOWN, "https://s.test/")) == [
        "https://s.test/y"
    ]
    assert urls(extract_links("[x](/y) https://t.test", SourceKind.TEXT)) == ["https://t.test"]


# -- never raises ------------------------------------------------------------------------------

PIECES = st.sampled_from(
    ["http://", "https://", "www.", "a.b", "(", ")", "[", "]", "<", ">", '"', "'", "`", "\n", " ",
     ".", ",", ";", "&amp;", "#", "?", "/", ":", "@", "%", "\x00", "\ud800", "é", "<a href=",
     "<base href=", "](", "![", "```", "    ", "<pre>", "Related article: a b c"]
)  # fmt: skip
JUNK = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(JUNK, st.sampled_from(list(SourceKind)), st.sampled_from([None, "https://b.test/x/"]))
def test_never_raises(content: str, kind: SourceKind, base: str | None) -> None:
    for link in extract_links(content, kind, base):
        assert isinstance(link, Link)
        assert link.url


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_html_bytes_never_raise(data: bytes) -> None:
    assert isinstance(extract_html_links(data, "https://b.test/"), list)
