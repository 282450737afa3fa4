"""Read an article: a file or standard input does I/O here; fetched bytes are parsed purely.

A live URL is not read here: the crawler fetches it (the only module with an HTTP client)
and hands the body to `parse_article`, as trafilatura pairs `get_rules` with `parse_robots`.
"""

from __future__ import annotations

import codecs
import itertools
import re
import sys
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import lxml.html
from lxml import etree
from markdown_it import MarkdownIt

from crawler.errors import SourceError
from crawler.extract import extract_links
from crawler.model import Link, SourceKind
from crawler.pagemeta import declared_charset

MAX_SOURCE_BYTES = 50 * 1024 * 1024
STDIN = "-"

_EXTENSIONS = {
    ".txt": SourceKind.TEXT,
    ".text": SourceKind.TEXT,
    ".html": SourceKind.HTML,
    ".htm": SourceKind.HTML,
    ".xhtml": SourceKind.HTML,
    ".md": SourceKind.MARKDOWN,
    ".markdown": SourceKind.MARKDOWN,
    ".mdown": SourceKind.MARKDOWN,
}
_CONTENT_TYPES = {
    "text/html": SourceKind.HTML,
    "application/xhtml+xml": SourceKind.HTML,
    "text/markdown": SourceKind.MARKDOWN,
    "text/x-markdown": SourceKind.MARKDOWN,
    "text/plain": SourceKind.TEXT,
}
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM it starts with
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HTML_SNIFF = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.I)
_MARKDOWN_SNIFF = re.compile(
    r"!?\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"\n]*\")?\)|^ {0,3}\[[^\]\n]+\]:\s*\S+", re.M
)
_MARKDOWN = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Article:
    """An article as read: where from, what kind, its text and the links it cites."""

    source: str
    kind: SourceKind
    text: str
    base_url: str | None
    links: tuple[Link, ...]
    title: str | None


def is_url_source(source: str) -> bool:
    """True when `source` is an http(s) URL (the crawler fetches those)."""
    try:
        parts = urlsplit(source.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """(lower-case media type, charset parameter) of a Content-Type header."""
    if not content_type:
        return "", None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


def detect_kind(name: str, content: str, content_type: str | None = None) -> SourceKind:
    """Text, HTML or Markdown: by file extension, then Content-Type, then by sniffing."""
    path = urlsplit(name).path if is_url_source(name) else name
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    media_type, _ = _media_type(content_type)
    if media_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[media_type]
    head = content[:4096]
    if _HTML_SNIFF.search(head):
        return SourceKind.HTML
    if _MARKDOWN_SNIFF.search(content[:65536]):
        return SourceKind.MARKDOWN
    return SourceKind.TEXT


def _codec(charset: str | None) -> str | None:
    """Python's codec for a declared charset, None when unknown."""
    try:
        return codecs.lookup(charset.strip().strip("\"'")).name if charset else None
    except LookupError:
        return None


def _decode(data: bytes, codec: str) -> str | None:
    """`data` in `codec`, None when it does not decode. Latin-1 means windows-1252 (WHATWG)."""
    for name in ("cp1252", codec) if codec == "iso8859-1" else (codec,):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return None


def decode_bytes(data: bytes, content_type: str | None = None) -> str:
    """Bytes to text: byte-order mark, header charset, `<meta>`/XML declaration, else UTF-8."""
    # WHATWG "decode": a BOM wins over the transport charset, which wins over <meta>.
    for bom, bom_codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(bom_codec, errors="replace")
    declared = declared_charset(data)
    if _codec(declared) in {"utf-16", "utf-16-le", "utf-16-be", "utf-32"}:
        declared = "utf-8"  # HTML §13.2.3.2: a <meta> cannot declare UTF-16 in an ASCII file
    for charset in (_media_type(content_type)[1], declared):
        codec = _codec(charset)
        text = _decode(data, codec) if codec else None
        if text is not None:
            return text
    return data.decode("utf-8", errors="replace")


def _html_title(text: str) -> str | None:
    """The page's `<title>`, else its first `<h1>`, whitespace-collapsed."""
    try:
        data = text.encode("utf-8", "replace")
        root = lxml.html.document_fromstring(data, parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (etree.LxmlError, ValueError):
        return None
    for tag in ("title", "h1"):
        for el in root.iter(tag):
            title = " ".join("".join(map(str, el.itertext())).split())
            if title:
                return title
    return None


def _title(text: str, kind: SourceKind) -> str | None:
    """The article's own title when its format marks one (plain text does not)."""
    if kind is SourceKind.HTML:
        return _html_title(text)
    if kind is SourceKind.MARKDOWN:
        tokens = _MARKDOWN.parse(text)
        for opening, inline in itertools.pairwise(tokens):
            if opening.type == "heading_open" and opening.tag == "h1":
                return " ".join(inline.content.split()) or None
    return None


def parse_article(
    source: str,
    data: bytes | str,
    kind: SourceKind | None = None,
    *,
    base_url: str | None = None,
    content_type: str | None = None,
) -> Article:
    """Decode, classify and extract the links of an already-read article."""
    text = data if isinstance(data, str) else decode_bytes(data, content_type)
    if "\x00" in text[:8192]:
        raise SourceError(f"{source}: binary data, not a text, HTML or Markdown article")
    kind = kind or detect_kind(source, text, content_type)
    links = tuple(extract_links(text, kind, base_url))
    return Article(source, kind, text, base_url, links, _title(text, kind))


def _read_limited(stream: BinaryIO, source: str, max_bytes: int) -> bytes:
    """At most `max_bytes` from `stream`; a SourceError when there is more."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceError(f"{source}: larger than the {max_bytes:,}-byte limit for an article")
    return data


def _read_file(source: str, max_bytes: int) -> bytes:
    """The bytes of a file, every OS failure turned into a one-line SourceError."""
    path = Path(source)
    if path.is_dir():
        raise SourceError(f"{source}: is a directory, not an article")
    try:
        with path.open("rb") as stream:
            return _read_limited(stream, source, max_bytes)
    except FileNotFoundError as exc:
        raise SourceError(f"{source}: no such file") from exc
    except OSError as exc:
        raise SourceError(f"{source}: cannot read ({exc.strerror or exc})") from exc


def read_source(
    source: str,
    kind: SourceKind | None = None,
    *,
    stdin: BinaryIO | None = None,
    max_bytes: int = MAX_SOURCE_BYTES,
) -> Article:
    """Read an article from a file path or `-` (standard input) and extract its links."""
    if is_url_source(source):
        raise SourceError(f"{source}: a URL is fetched by the crawler, not read as a file")
    if source == STDIN:
        data = _read_limited(stdin or sys.stdin.buffer, "standard input", max_bytes)
    else:
        data = _read_file(source, max_bytes)
    return parse_article(source, data, kind)
