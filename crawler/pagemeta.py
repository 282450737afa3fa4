"""Pure: a page's bytes -> an lxml tree, and what the page says about itself.

`decode_html` and `parse_html` turn untrusted bytes into a tree without raising: only the
first `MAX_HTML_BYTES` are read and libxml2 keeps its default limits (no `huge_tree`, depth
capped). The `extract_*` readers take the tree's root element and return None when they
find nothing they believe. The small tree helpers at the end (`attr`, `leading_text`,
`text_of`...) are shared with `crawler.related`; they read text the way a browser shows it,
leaving out comments and the insides of <script>, <style> and <template>.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from itertools import islice
from typing import Any, cast
from urllib.parse import urldefrag

from lxml import etree

from crawler.dates import parse_date
from crawler.urls import is_http_url, join_url

MAX_HTML_BYTES = 2 * 1024 * 1024
MAX_JSON_LD_SCRIPTS = 20
MAX_JSON_LD_CHARS = 500_000
MAX_JSON_DEPTH = 8
MAX_JSON_OBJECTS = 1000
MAX_META_TAGS = 500
MAX_DATE_ELEMENTS = 30

Element = etree._Element
Meta = dict[str, str]
JsonObjects = list[dict[str, Any]]

_CHARSET_RE = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:-]+)""",
    re.IGNORECASE,
)
# NUL and other C0 controls break nothing in browsers but libxml2 turns them into U+FFFD.
# In UTF-8 these bytes only ever stand for themselves, so they are deleted from the bytes.
_CONTROL_BYTES = bytes(c for c in range(32) if chr(c) not in "\t\n\r")
_JSON_WRAPPER_RE = re.compile(r"^\s*(<!\[CDATA\[|<!--)|(\]\]>|-->)\s*$")
_HIDDEN_TEXT_TAGS = frozenset({"script", "style", "template"})
# An absolute http(s) URL that needs no resolving: lowercase scheme, a plain host name or IPv4
# address, an optional port, and a path and query with no space, control character, backslash
# or fragment; and no ";" in the path, whose empty parameters ("/a;") urljoin drops.
_PLAIN_ABSOLUTE_RE = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"(?::[0-9]{1,5})?(?:/[^\x00-\x20\x7f\\#?;]*)?(?:\?[^\x00-\x20\x7f\\#]+)?",
)
# `collect_ids=False`: nothing looks elements up by id, and the id table costs parse time.
_PARSER = etree.HTMLParser(encoding="utf-8", recover=True, collect_ids=False)


# -- bytes -> tree ---------------------------------------------------------------------------


def decode_html(html: str | bytes) -> str:
    """The first `MAX_HTML_BYTES` of a page as text: BOM, then <meta charset>, then UTF-8."""
    if isinstance(html, str):
        return html[:MAX_HTML_BYTES]
    data = html[:MAX_HTML_BYTES]
    for encoding in _candidate_encodings(data):
        try:
            # An incremental decoder drops a character cut in half by the size cap.
            return codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("windows-1252", errors="replace")


def _candidate_encodings(data: bytes) -> list[str]:
    """Encodings worth trying, most trusted first."""
    if data.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    declared = declared_charset(data)
    return [enc for enc in (declared, "utf-8") if enc]


def declared_charset(data: bytes) -> str | None:
    """The charset a document declares in its first 4 KiB (<meta> or XML declaration)."""
    match = _CHARSET_RE.search(data[:4096])
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii", "replace").lower()


def parse_html(text: str) -> Element | None:
    """The <html> element of decoded page text; None for a page with no elements at all."""
    # UTF-8 bytes are libxml2's own encoding: parsing them is about twice as fast as a str.
    data = text.encode("utf-8", errors="replace").translate(None, _CONTROL_BYTES)
    try:
        return etree.fromstring(data, _PARSER)
    except (etree.LxmlError, ValueError, RecursionError):
        return None


# -- metadata --------------------------------------------------------------------------------


def extract_heading(root: Element) -> str | None:
    """The text of the first <h1>, whitespace collapsed."""
    h1 = next(root.iter("h1"), None)
    return (clean_text(text_of(h1)) or None) if h1 is not None else None


def extract_canonical(root: Element, url: str) -> str | None:
    """`<link rel=canonical>` resolved against the page URL, else og:url."""
    return canonical_from(root, url, read_meta(root))


def canonical_from(root: Element, url: str, meta: Meta) -> str | None:
    """`extract_canonical` with the page's meta tags already read."""
    links = (link for link in root.iter("link") if link.get("href") is not None)
    for count, link in enumerate(links, start=1):
        if "canonical" in tokens(link, "rel"):
            resolved = absolute_url(url, attr(link, "href"))
            if resolved:
                return resolved
        if count >= 200:
            break
    og_url = meta.get("og:url")
    return absolute_url(url, og_url) if og_url else None


def extract_language(root: Element) -> str | None:
    """The page language from <html lang>, else og:locale."""
    return language_from(root, read_meta(root))


def language_from(root: Element, meta: Meta) -> str | None:
    """`extract_language` with the page's meta tags already read."""
    lang = attr(root, "lang").strip() if root.tag == "html" else ""
    return lang or meta.get("og:locale") or None


# Meta names that carry the publication date, most specific first (htmldate and
# newspaper4k read much the same lists). JSON-LD `datePublished` comes between the two
# tiers: generic names such as `date` or `dc.date` are often the last-modified time.
_DATE_META = (
    "article:published_time", "og:published_time", "og:article:published_time",
    "datepublished", "article.published", "published_time", "publishdate", "publish-date",
    "publish_date", "publication_date", "pubdate", "parsely-pub-date", "sailthru.date",
    "dc.date.issued", "dcterms.issued", "ptime", "original-publish-date", "article:published",
    "og:pubdate", "citation_publication_date", "cxenseparse:recs:publishtime",
)  # fmt: skip
_WEAK_DATE_META = ("date", "dc.date", "dcterms.date", "displaydate", "dc.date.created",
                   "dcterms.created")  # fmt: skip
_DATE_CLASS_RE = re.compile(r"date|time|meta|byline|autor|author|posted|publi", re.IGNORECASE)
_NOT_DATE_TAGS = frozenset({"script", "style", "meta", "link", "html", "body"})
_CLASS_AND_ID = etree.XPath("//@class | //@id")
_DATE_PUBLISHED = etree.XPath("//*[@itemprop='datePublished']")


def extract_published(root: Element) -> str | None:
    """Publication date as ISO 8601: meta tags, JSON-LD, microdata, <time>, dated bylines."""
    return published_from(root, read_meta(root), json_ld_objects(root))


def published_from(root: Element, meta: Meta, objects: JsonObjects) -> str | None:
    """`extract_published` with the page's meta tags and JSON-LD objects already read."""
    for name in _DATE_META:
        found = parse_date(meta.get(name))
        if found:
            return found
    found = parse_date(json_ld_string(objects, "datePublished"))
    found = found or parse_date(json_ld_string(objects, "dateCreated"))
    for name in _WEAK_DATE_META:
        found = found or parse_date(meta.get(name))
    return found or _time_element_date(root) or _byline_date(root)


def _time_element_date(root: Element) -> str | None:
    """A date from itemprop=datePublished or a <time datetime> in the article."""
    for tag in islice(cast("list[Element]", _DATE_PUBLISHED(root)), 5):
        found = parse_date(attr(tag, "content") or attr(tag, "datetime") or text_of(tag, ""))
        if found:
            return found
    article = next(root.iter("article"), None)
    scope = article if article is not None else root
    for count, tag in enumerate(scope.iter("time"), start=1):
        found = parse_date(attr(tag, "datetime") or text_of(tag, ""))
        if found:
            return found
        if count >= 20:
            break
    return None


def _byline_date(root: Element) -> str | None:
    """A date shown in an element whose class or id says date, time, byline, author..."""
    for tag in islice(_date_elements(root), MAX_DATE_ELEMENTS):
        found = parse_date(attr(tag, "title")) or parse_date(leading_text(tag, 120))
        if found:
            return found
    return None


def _date_elements(root: Element) -> Iterator[Element]:
    """Body elements whose class or id names a date, time or byline, in document order."""
    # Matching the attribute strings with `filter` keeps the scan of every class in C.
    previous = None
    values = cast("list[Any]", _CLASS_AND_ID(root))  # smart strings: each knows its element
    for value in filter(_DATE_CLASS_RE.search, values):
        tag = value.getparent()
        if tag is not previous and tag is not None and tag.tag not in _NOT_DATE_TAGS:
            yield tag
        previous = tag


def read_meta(root: Element) -> Meta:
    """Meta tags as {lower-cased property/name/itemprop: first non-empty content}."""
    found: Meta = {}
    for count, tag in enumerate(root.iter("meta"), start=1):
        key = (attr(tag, "property") or attr(tag, "name") or attr(tag, "itemprop")).lower()
        value = clean_text(attr(tag, "content"))
        if key and value and key not in found:
            found[key] = value
        if count >= MAX_META_TAGS:
            break
    return found


# -- JSON-LD ---------------------------------------------------------------------------------


def json_ld_objects(root: Element) -> JsonObjects:
    """Every JSON object in the page's JSON-LD scripts, @graph and nesting flattened."""
    objects: JsonObjects = []
    for count, script in enumerate(root.iter("script"), start=1):
        if is_json_ld(script):
            objects.extend(walk_json(load_json(script.text or "")))
        if len(objects) > MAX_JSON_OBJECTS or count >= MAX_JSON_LD_SCRIPTS * 10:
            break
    return objects


def is_json_ld(script: Element) -> bool:
    """True for <script type="application/ld+json">."""
    return attr(script, "type").strip().lower() == "application/ld+json"


def load_json(text: str) -> Any:
    """Parsed JSON, or None when it is too big or not JSON."""
    if len(text) > MAX_JSON_LD_CHARS:
        return None
    try:
        # Some CMSs wrap the script in <![CDATA[ ]]> or <!-- -->, as Readability also allows.
        return json.loads(_JSON_WRAPPER_RE.sub("", text))
    except (ValueError, RecursionError):
        return None


def walk_json(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every dict inside a JSON value, outermost first, depth-limited."""
    if depth > MAX_JSON_DEPTH:
        return
    if isinstance(value, dict):
        yield value
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    for child in children:
        yield from walk_json(child, depth + 1)


def json_ld_string(objects: JsonObjects, key: str) -> str | None:
    """A string property, read from article-typed objects first (images carry dates too)."""
    for wanted in (True, False):
        for obj in objects:
            value = obj.get(key)
            if isinstance(value, str) and value.strip() and _is_article(obj) == wanted:
                return value
    return None


def _is_article(obj: dict[str, Any]) -> bool:
    """True if a JSON-LD object's @type is an Article, NewsArticle, BlogPosting..."""
    kinds = obj.get("@type")
    names = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(n, str) and n.endswith(_ARTICLE_TYPES) for n in names)


_ARTICLE_TYPES = ("Article", "BlogPosting", "Report", "LiveBlogPosting")


# -- tree helpers ----------------------------------------------------------------------------


def absolute_url(base: str, href: str) -> str | None:
    """`href` resolved against `base`, without fragment; None unless it is http(s)."""
    if _PLAIN_ABSOLUTE_RE.fullmatch(href) and not href[-1].isspace():  # join_url strips it
        # Already a plain absolute URL (the common case for canonical and related links):
        # resolving it against any base gives it back unchanged, so skip the general join.
        # (is_http_url still refuses what the URL Standard does: a port over 65535, 999.1.1.1.)
        return href if is_http_url(href) else None
    return resolve_url(base, href)


def resolve_url(base: str, href: str) -> str | None:
    """`absolute_url` the general way, without its shortcut for plain absolute URLs."""
    joined = join_url(base, href)
    if joined is None:
        return None
    url = urldefrag(joined)[0]
    return url if is_http_url(url) else None


def attr(element: Element | None, name: str) -> str:
    """An attribute's value, "" when absent."""
    if element is None:
        return ""
    value = element.get(name)
    return value if isinstance(value, str) else ""


def tokens(element: Element, name: str) -> list[str]:
    """An attribute split on whitespace, lower-cased for rel, kept as written otherwise."""
    words = attr(element, name).split()
    return [t.lower() for t in words] if name == "rel" else words


def iter_strings(element: Element) -> Iterator[str]:
    """The visible text pieces of an element in document order (no comments or scripts)."""
    if next(element.iter(*_HIDDEN_TEXT_TAGS), None) is None:
        # lxml's own walk, in C, already leaves comments out.
        return cast("Iterator[str]", element.itertext())
    return _visible_strings(element)


def _visible_strings(element: Element) -> Iterator[str]:
    """`iter_strings` for an element with a <script>, <style> or <template> inside."""
    # Recursion is safe: libxml2 stops nesting at 256 levels without `huge_tree`.
    if element.text and element.tag not in _HIDDEN_TEXT_TAGS and is_element(element):
        yield element.text
    for child in element:
        if is_element(child):
            yield from _visible_strings(child)
        if child.tail:
            yield child.tail


def is_element(node: Element) -> bool:
    """True for an element, False for a comment or processing instruction (whose tag is not a
    string in lxml)."""
    return isinstance(node.tag, str)


def source_line(element: Element) -> int | None:
    """The line libxml2 recorded for an element's start tag (None when it has none)."""
    return cast("int | None", element.sourceline)


def text_of(element: Element, separator: str = " ") -> str:
    """All visible text of an element, pieces joined by `separator`."""
    return separator.join(iter_strings(element))


def leading_text(element: Element, limit: int) -> str:
    """The first `limit` characters of an element's text (pieces stripped, space-joined)."""
    if len(element) == 0:  # no children: the common case of a bare link or heading
        text = element.text if element.tag not in _HIDDEN_TEXT_TAGS else None
        return text.strip()[:limit] if text else ""
    parts: list[str] = []
    size = 0
    for piece in iter_strings(element):
        piece = piece.strip()
        if not piece:
            continue
        parts.append(piece)
        size += len(piece) + 1
        if size >= limit:
            break
    return " ".join(parts)[:limit]


def clean_text(text: str | None) -> str:
    """Whitespace collapsed and stripped."""
    return " ".join(text.split()) if text else ""
