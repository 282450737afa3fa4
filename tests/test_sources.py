"""Reading articles: kind detection, decoding, stdin, and every way a source can fail."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from crawler.errors import CrawlerError, SourceError
from crawler.model import SourceKind
from crawler.sources import (
    MAX_SOURCE_BYTES,
    Article,
    decode_bytes,
    detect_kind,
    is_url_source,
    parse_article,
    read_source,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config/examples/syria-russia.txt"


# -- kind detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("story.txt", SourceKind.TEXT),
        ("story.HTML", SourceKind.HTML),
        ("story.htm", SourceKind.HTML),
        ("notes.md", SourceKind.MARKDOWN),
        ("notes.markdown", SourceKind.MARKDOWN),
        ("https://paper.test/2025/story.html?x=1", SourceKind.HTML),
    ],
)
def test_kind_by_extension(name: str, kind: SourceKind) -> None:
    # The extension wins over content that looks like something else.
    assert detect_kind(name, "[x](https://a.test) <html>") is kind


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("text/html; charset=utf-8", SourceKind.HTML),
        ("application/xhtml+xml", SourceKind.HTML),
        ("text/markdown", SourceKind.MARKDOWN),
        ("TEXT/PLAIN", SourceKind.TEXT),
    ],
)
def test_kind_by_content_type(content_type: str, kind: SourceKind) -> None:
    assert detect_kind("https://paper.test/story", "# hi [x](/y)", content_type) is kind


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("<!DOCTYPE html><p>hi</p>", SourceKind.HTML),
        ("\n  <html lang=en><body>x</body></html>", SourceKind.HTML),
        ("Read [the story](https://paper.test/a) today.", SourceKind.MARKDOWN),
        ("Intro\n\n[1]: https://paper.test/a\n", SourceKind.MARKDOWN),
        ("Plain words and https://paper.test/a (a link).", SourceKind.TEXT),
        ("", SourceKind.TEXT),
    ],
)
def test_kind_by_sniffing(content: str, kind: SourceKind) -> None:
    assert detect_kind("-", content) is kind


# -- decoding ----------------------------------------------------------------------------------


def test_decode_meta_charset_latin1() -> None:
    data = '<html><head><meta charset="iso-8859-1"></head><p>Café “x”</p>'.encode("cp1252")
    assert "Café “x”" in decode_bytes(data)


def test_decode_boms() -> None:
    assert decode_bytes(b"\xef\xbb\xbfcaf\xc3\xa9") == "café"
    assert decode_bytes("\ufeffcafé".encode("utf-16-le")) == "café"
    assert decode_bytes("\ufeffcafé".encode("utf-16-be")) == "café"
    # WHATWG: the byte-order mark wins over a transport charset.
    assert decode_bytes(b"\xef\xbb\xbfcaf\xc3\xa9", "text/plain; charset=iso-8859-1") == "café"


def test_decode_header_charset_wins_over_meta() -> None:
    data = '<meta charset="utf-8"><p>Привет</p>'.encode("windows-1251")
    assert "Привет" in decode_bytes(data, "text/html; charset=windows-1251")
    assert "Привет" in decode_bytes(data, 'text/html; charset="Windows-1251"')


def test_decode_falls_back_to_utf8_with_replacement() -> None:
    assert decode_bytes("café".encode()) == "café"
    assert decode_bytes(b"caf\xc3\xa9 \xff!") == "café \ufffd!"
    assert decode_bytes(b"abc", "text/plain; charset=no-such-charset") == "abc"
    assert decode_bytes(b"") == ""


# -- parse_article -----------------------------------------------------------------------------


def test_parse_html_article() -> None:
    page = (
        b"<html><head><title> The  Story </title></head><body>\n"
        b"<a href='/next'>Next</a>\n</body></html>"
    )
    article = parse_article(
        "https://paper.test/a", page, base_url="https://paper.test/a", content_type="text/html"
    )
    assert (article.kind, article.title, article.base_url) == (
        SourceKind.HTML,
        "The Story",
        "https://paper.test/a",
    )
    assert [(ln.url, ln.line, ln.text) for ln in article.links] == [
        ("https://paper.test/next", 2, "Next")
    ]


def test_parse_markdown_article_title() -> None:
    markdown = "```\n# not a title\n```\n\nWeekly  notes\n===\n\nSee <https://a.test/x>.\n"
    article = parse_article("notes.md", markdown)
    assert article.kind is SourceKind.MARKDOWN
    assert article.title == "Weekly notes"
    assert [link.url for link in article.links] == ["https://a.test/x"]


def test_parse_text_article_has_no_title() -> None:
    article = parse_article("-", b"Intro.\nhttps://a.test/x\n", SourceKind.TEXT)
    assert article.title is None
    assert isinstance(article, Article)
    assert [(link.url, link.line) for link in article.links] == [("https://a.test/x", 2)]


def test_parse_binary_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=re.escape("blob.bin")):
        parse_article("blob.bin", b"\x00\x01\x02PNG\x00\x00" * 10)


# -- read_source -------------------------------------------------------------------------------


def test_read_example_file() -> None:
    article = read_source(str(EXAMPLE))
    assert article.kind is SourceKind.TEXT
    assert article.source == str(EXAMPLE)
    assert len(article.links) == 3
    assert article.links[0].text is not None


def test_read_latin1_html_file(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes('<meta charset="latin-1"><a href="https://a.test/é">é</a>'.encode("latin-1"))
    article = read_source(str(path))
    assert [(ln.url, ln.text) for ln in article.links] == [("https://a.test/é", "é")]


def test_read_stdin() -> None:
    stdin = io.BytesIO(b"Some [link](https://a.test/md) here\n")
    article = read_source("-", stdin=stdin)
    assert article.source == "-"
    assert article.kind is SourceKind.MARKDOWN
    assert [link.url for link in article.links] == ["https://a.test/md"]
    forced = read_source("-", SourceKind.TEXT, stdin=io.BytesIO(b"[x](https://a.test/md)"))
    assert forced.kind is SourceKind.TEXT


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "article.txt"
    with pytest.raises(SourceError) as info:
        read_source(str(missing))
    message = str(info.value)
    assert str(missing) in message
    assert "\n" not in message
    assert isinstance(info.value, CrawlerError)
    assert info.value.exit_code == 1


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="directory") as info:
        read_source(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_oversize_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as stream:
        stream.truncate(MAX_SOURCE_BYTES + 1)  # sparse: nothing is written to disk
    with pytest.raises(SourceError, match="limit") as info:
        read_source(str(path))
    assert str(path) in str(info.value)
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"x" * 64)
    assert read_source(str(exact), max_bytes=64).text == "x" * 64
    with pytest.raises(SourceError, match="limit"):
        read_source(str(exact), max_bytes=63)


def test_oversize_stdin() -> None:
    with pytest.raises(SourceError, match="standard input"):
        read_source("-", stdin=io.BytesIO(b"y" * 101), max_bytes=100)


def test_url_is_not_read_here() -> None:
    assert is_url_source("https://paper.test/story")
    assert is_url_source("HTTP://paper.test")
    assert not is_url_source("story.html")
    assert not is_url_source("-")
    assert not is_url_source("ftp://paper.test/story")
    assert not is_url_source("https:///nohost")
    with pytest.raises(SourceError, match=re.escape("https://paper.test/story")):
        read_source("https://paper.test/story")
