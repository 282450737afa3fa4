"""Pure: find the URLs an article or page refers to, in plain text, HTML or Markdown.

Every extractor returns `Link`s in document order with duplicates kept (the crawl flags
them), never raises and does work bounded by the input size.

Choices made on purpose (lychee's extractor is the model, see its `html5gum.rs`):
- Plain text: only `http(s)://` URLs and `www.` hosts; the boundaries follow the GFM
  autolink extension and linkify-it (trailing punctuation dropped, a closing bracket or
  quote kept only when balanced inside the URL). A hand-written matcher: measured against
  linkify-it-py it ties on linkify-it's own scheme-ful fixtures (76/76 each) and does
  better on GFM's autolink examples (linkify-it-py misses GFM's `(business))+ok` and
  `&hl;` rules), with no extra dependency (tests/test_extract.py prints the rates).
- HTML: `href`, `src` and `cite` on any element (custom elements too), `srcset`,
  `video[poster]`, `object[data]`, `form[action]`, meta refresh. Nothing inside verbatim
  elements (`pre`, `code`, ...), no `rel=preconnect`/`dns-prefetch` hints. Bare URLs in
  HTML text are not links (lychee's default). Parsed with lxml directly: BeautifulSoup
  over lxml does not record source lines.
- Relative links need a base; without one they are dropped, as lychee does (a
  protocol-relative `//host/x` is read as https).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import replace
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html
from lxml import etree
from markdown_it import MarkdownIt
from markdown_it.token import Token

from crawler.model import Link, SourceKind
from crawler.pagemeta import declared_charset

SKIPPED_SCHEMES = frozenset({"javascript", "data", "mailto", "tel", "about", "blob", "vbscript"})
HINT_RELS = frozenset({"preconnect", "dns-prefetch"})  # connection hints, not documents
VERBATIM_TAGS = frozenset(
    {"pre", "code", "kbd", "samp", "var", "listing", "xmp", "plaintext", "textarea", "noscript"}
)
MAX_TITLED_LINKS = 500  # bounds the title-to-URL pairing on pathological input
RELATED_HEADING = re.compile(r"^\s*related (?:article|story|stories|articles)\s*:\s*(\S.*)$", re.I)

# -- plain text --------------------------------------------------------------------------------

_URL_CHARS = r"[^\s<>｜\x00-\x1f\x7f]*"
_CANDIDATE = re.compile(
    rf"(?<![A-Za-z0-9_])https?://{_URL_CHARS}|(?<![A-Za-z0-9_@./:\-])www\.{_URL_CHARS}", re.I
)
_TRAILING = frozenset(".,:;!?*~")
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_QUOTES = frozenset("\"'`")
_HOST = re.compile(r"(?:[^\W_]|[^\x00-\x7f])(?:[\w\-]|[^\x00-\x7f])*", re.ASCII)
_AUTHORITY = re.compile(
    r"(?:[\w.~%!$&'*+,;=:\-]+@)?"  # user info
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/?#:@<>()\[\]{}'\"`,;!*|\\^]+)(?::(?P<port>\d+))?"
)


def _entity_start(url: str, end: int) -> int:
    """Where a GFM entity-like tail (`&hl;`) ending at `end` starts, else `end - 1`."""
    index = end - 2
    while index >= 0 and url[index].isascii() and url[index].isalnum():
        index -= 1
    return index if index < end - 2 and index >= 0 and url[index] == "&" else end - 1


def _trim(url: str) -> str:
    """Drop what trails a URL in prose: punctuation, unbalanced closers, odd quotes."""
    counts = {char: url.count(char) for char in "()[]{}\"'`"}
    end = len(url)
    while end:
        last = url[end - 1]
        if last == ";":
            end = _entity_start(url, end)
            continue
        unbalanced = last in _CLOSERS and counts[last] > counts[_CLOSERS[last]]
        odd_quote = last in _QUOTES and counts[last] % 2 == 1
        prose = last > "\x7f" and unicodedata.category(last) in {"Po", "Pe", "Pf", "Pi", "Ps"}
        if not (last in _TRAILING or unbalanced or odd_quote or prose):
            break
        if last in counts:
            counts[last] -= 1
        end -= 1
    return url[:end]


def _is_valid_host(host: str, *, www: bool) -> bool:
    """True for a host made of non-empty alphanumeric labels (linkify-it / GFM rules)."""
    if host.startswith("["):
        return True
    labels = host.removesuffix(".").split(".")  # `example.com.` is the same host, fully qualified
    if www and len(labels) < 2:
        return False
    for index, label in enumerate(labels):
        if not _HOST.fullmatch(label) or label.endswith("-"):
            return False
        if "_" in label and index >= len(labels) - 2:  # GFM: none in the last two labels
            return False
    return True


def _checked(url: str) -> str | None:
    """The URL ending where its authority ends if no path follows; None without a valid host."""
    www = url[:4].lower() == "www."
    head = 0 if www else url.find("://") + 3
    match = _AUTHORITY.match(url, head) if www or head > 2 else None  # trim may eat "http://"
    if match is None or not _is_valid_host(match["host"], www=www):
        return None
    if match["port"] is not None and int(match["port"]) > 65535:
        return None
    if match.end() < len(url) and url[match.end()] not in "/?#":
        url = url[: match.end()]  # `https://x.org)[next]`: linkify-it ends the link at the host
    return url


def find_urls(text: str) -> Iterator[tuple[int, str]]:
    """Yield (offset, url as written) for every bare http(s) or www. URL in `text`."""
    for match in _CANDIDATE.finditer(text):
        url = _checked(_trim(match.group()))
        if url:
            yield match.start(), url


def _absolute_text_url(raw: str) -> str:
    """`www.` hosts get the `http://` a browser would assume (as GFM does)."""
    return f"http://{raw}" if raw[:4].lower() == "www." else raw


def _text_links(text: str, first_line: int, origin: str) -> list[Link]:
    """Bare URLs in `text`, whose first line is `first_line`."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    return [
        Link(
            url=_absolute_text_url(raw),
            line=first_line + bisect_right(starts, offset) - 1,
            raw=raw,
            origin=origin,
        )
        for offset, raw in find_urls(text)
    ]


def extract_text_links(text: str) -> list[Link]:
    """Bare and `<...>` http(s) URLs in plain text, titled from "Related article:" lines."""
    links = _text_links(text, 1, "text")
    return _title_from_headings(links, text.splitlines())


# -- "Related article: TITLE" context ---------------------------------------------------------


def _words(text: str) -> list[str]:
    """Lower-case words without accents or apostrophes, for comparing titles with slugs."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", re.sub(r"['’]", "", folded))


def _slug_words(url: str) -> set[str]:
    """Words of the last non-empty path segment (`/2025/07/19/some-title-here.html`)."""
    try:
        segments = [s for s in urlsplit(url).path.split("/") if s]
    except ValueError:
        return set()
    if not segments:
        return set()
    slug = re.sub(r"\.[a-z0-9]{2,5}$", "", unquote(segments[-1]), flags=re.I)
    return {w for w in _words(slug) if not w.isdigit()}


def _overlap(title: set[str], slug: set[str]) -> float:
    """Share of words common to a title and a slug, relative to the shorter of the two."""
    common = len(title & slug)
    return common / min(len(title), len(slug)) if common >= 2 else 0.0


def _headings(lines: Sequence[str]) -> list[tuple[int, str, str]]:
    """(line number, title, possible continuation line) for each "Related article:" line."""
    found = []
    for index, line in enumerate(lines):
        match = RELATED_HEADING.match(line)
        if match:
            nxt = lines[index + 1].strip() if index + 1 < len(lines) else ""
            found.append((index + 1, match.group(1).strip(), "" if "://" in nxt else nxt))
    return found


def _continues(line: str, slug: set[str]) -> bool:
    """True when a wrapped title's next line belongs to it: most of its words are in the slug."""
    words = _words(line)
    return bool(words) and 2 * sum(w in slug for w in words) >= len(words)


def _candidates(links: list[Link], after: int) -> list[tuple[int, Link, set[str]]]:
    """(index, link, slug words) for the first occurrence of each URL below line `after`."""
    seen: set[str] = set()
    found: list[tuple[int, Link, set[str]]] = []
    for index, link in enumerate(links):
        if (link.line or 0) > after and link.url not in seen and len(found) < MAX_TITLED_LINKS:
            seen.add(link.url)
            found.append((index, link, _slug_words(link.url)))
    return found


def _title_from_headings(links: list[Link], lines: Sequence[str]) -> list[Link]:
    """Give each "Related article" title to the first later link whose slug matches it."""
    headings = _headings(lines)[:MAX_TITLED_LINKS]
    if not headings:
        return links
    titled = list(links)
    candidates = _candidates(links, headings[0][0])
    for line, title, continuation in headings:
        words = set(_words(title))
        for position, (index, link, slug) in enumerate(candidates):
            if (link.line or 0) > line and _overlap(words, slug) >= 0.6:
                if _continues(continuation, slug):
                    title = f"{title} {continuation}"
                titled[index] = replace(link, text=title)
                del candidates[position]
                break
    return titled


# -- HTML --------------------------------------------------------------------------------------

_ANY_ELEMENT_ATTRS = frozenset({"href", "src", "cite", "srcset"})
_ELEMENT_ATTRS = {("video", "poster"), ("object", "data"), ("form", "action")}
_REFRESH = re.compile(r"^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]*)", re.I)


def _resolve(raw: str, base: str | None) -> str | None:
    """The absolute URL a reference points at, or None when it is not one to check."""
    value = re.sub(r"[\t\n\r]", "", raw).strip()  # WHATWG URL parsing drops these
    if not value or value.startswith("#"):
        return None
    try:
        scheme = urlsplit(value).scheme.lower()
        if scheme in SKIPPED_SCHEMES:
            return None
        if not scheme and base:
            value = urljoin(base, value)
        elif not scheme:
            value = f"https:{value}" if value.startswith("//") else ""
        parts = urlsplit(value)
    except ValueError:  # e.g. `https://example]org/`: an unbalanced IPv6 bracket
        # Kept, unlike lychee, when it plainly means to be a web link: the crawl then reports it
        # as malformed instead of the article's broken link going unnoticed.
        return value if value.lower().startswith(("http://", "https://")) else None
    if not value or (parts.scheme in {"http", "https"} and not parts.hostname):
        return None
    return value.replace(" ", "%20")


def _srcset_urls(value: str) -> list[str]:
    """The URLs of a `srcset` (HTML §4.8.4.3.10: a URL may itself contain commas)."""
    urls = (m.group(1).rstrip(",") for m in re.finditer(r"[\s,]*(\S+)(?:\s+[^,]*)?", value))
    return [url for url in urls if url]


def _collapse(text: str | None) -> str | None:
    """Whitespace-collapsed text, None when empty."""
    collapsed = " ".join((text or "").split())
    return collapsed or None


def _element_text(el: etree._Element) -> str | None:
    """Anchor text (or an image's alt), else the element's alt/title attribute."""
    tag = str(el.tag).lower()
    if tag in {"a", "area"}:
        text = _collapse("".join(map(str, el.itertext())))
        if text:
            return text
        for img in el.iter("img"):
            if alt := _collapse(img.get("alt")):
                return alt
    return _collapse(el.get("alt")) or _collapse(el.get("title")) or _collapse(el.get("aria-label"))


def _raw_values(el: etree._Element) -> Iterator[tuple[str, str]]:
    """(attribute, raw reference) pairs of one element, in attribute order."""
    tag = str(el.tag).lower()
    if tag == "base" or (tag == "link" and HINT_RELS & set((el.get("rel") or "").lower().split())):
        return
    if tag == "meta" and (el.get("http-equiv") or "").lower() == "refresh":
        match = _REFRESH.match(el.get("content") or "")
        if match and match.group(1).strip():
            yield "refresh", match.group(1)
        return
    for name, value in el.items():
        name = str(name).lower()
        if name == "srcset":
            yield from ((name, url) for url in _srcset_urls(str(value)))
        elif name in _ANY_ELEMENT_ATTRS or (tag, name) in _ELEMENT_ATTRS:
            yield name, str(value)


def _element_links(el: etree._Element, base: str | None, line_offset: int) -> list[Link]:
    """The links one element carries, each URL once per element."""
    tag = str(el.tag).lower()
    links: list[Link] = []
    for attr, raw in _raw_values(el):
        url = _resolve(raw, base)
        if url is None or any(link.url == url for link in links):
            continue
        source_line = getattr(el, "sourceline", None)  # lxml-stubs type it as `...`
        line = source_line + line_offset if isinstance(source_line, int) else None
        links.append(Link(url=url, line=line, raw=raw.strip(), origin=f"{tag}[{attr}]"))
    if links:
        text = _element_text(el)
        links = [replace(link, text=text) for link in links]
    return links


def _decode_markup(data: bytes) -> str:
    """HTML bytes as text: byte-order mark, then the declared charset, then UTF-8 (lossy)."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    for charset in (declared_charset(data), "utf-8"):
        try:
            return data.decode(charset or "utf-8")
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("windows-1252", errors="replace")


def _parse_html(html: str | bytes) -> etree._Element | None:
    """lxml's tolerant HTML tree, or None for an empty document."""
    if isinstance(html, bytes):
        html = _decode_markup(html)
    data = html.encode("utf-8", "replace")  # bytes: lxml refuses str with an encoding decl
    parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True)
    try:
        return lxml.html.document_fromstring(data, parser=parser)
    except (etree.LxmlError, ValueError):  # "Document is empty"
        return None


def _base_of(root: etree._Element, base_url: str | None) -> str | None:
    """The document's `<base href>` resolved against `base_url`, else `base_url`."""
    for base in root.iter("base"):
        href = (base.get("href") or "").strip()
        if href:
            return _resolve(href, base_url) or base_url
    return base_url


def _walk(root: etree._Element) -> Iterator[etree._Element]:
    """Elements in document order, skipping what lies inside verbatim elements."""
    stack = [root]
    while stack:
        el = stack.pop()
        yield el
        if str(el.tag).lower() not in VERBATIM_TAGS:
            stack.extend(c for c in reversed(el) if isinstance(c.tag, str))


def _html_links(
    html: str | bytes, base_url: str | None, max_links: int | None, line_offset: int = 0
) -> list[Link]:
    """All links of an HTML document or fragment, lines shifted by `line_offset`."""
    root = _parse_html(html)
    if root is None or max_links == 0:
        return []
    base = _base_of(root, base_url)
    links: list[Link] = []
    for el in _walk(root):
        links.extend(_element_links(el, base, line_offset))
        if max_links is not None and len(links) >= max_links:
            return links[:max_links]
    return links


def extract_html_links(
    html: str | bytes, base_url: str | None = None, *, max_links: int | None = None
) -> list[Link]:
    """Links in an HTML page: anchors, media, stylesheets, scripts, citations, meta refresh."""
    return _html_links(html, base_url, max_links)


# -- Markdown ----------------------------------------------------------------------------------


class _Markdown(MarkdownIt):
    """CommonMark with GFM tables; destinations kept as written (no percent-encoding)."""

    def normalizeLink(self, url: str) -> str:
        """Keep the destination as written; the crawl normalizes URLs itself."""
        return url

    def normalizeLinkText(self, link: str) -> str:
        """Keep autolink text as written."""
        return link


_MARKDOWN = _Markdown("commonmark").enable(["table", "strikethrough"])


class _InlineScan:
    """Links of one inline token's children, in element order (a link before its image)."""

    def __init__(self, base_url: str | None, line: int) -> None:
        self.base_url = base_url
        self.line = line
        self.links: list[Link | None] = []
        self.open: list[tuple[int, Token, list[str]]] = []  # (slot, link_open, text so far)

    def feed(self, token: Token) -> None:
        """Take one child token."""
        kind = token.type
        if kind in {"softbreak", "hardbreak"}:
            self._text(" ")
            self.line += 1
        elif kind == "link_open":
            self.open.append((len(self.links), token, []))
            self.links.append(None)  # filled at link_close, where the URL is written
        elif kind == "link_close" and self.open:
            slot, opened, parts = self.open.pop()
            origin = "markdown:autolink" if opened.markup == "autolink" else "markdown"
            href = str(opened.attrs.get("href", ""))
            self.links[slot] = self._link(href, origin, _collapse("".join(parts)))
        elif kind == "image":
            src = str(token.attrs.get("src", ""))
            self.links.append(self._link(src, "markdown:image", token.content or None))
        elif kind in {"text", "code_inline"}:
            self._text(token.content)
            if kind == "text" and not self.open:
                self.links.extend(_text_links(token.content, self.line, "markdown:bare"))
        elif kind == "html_inline":
            self.links.extend(_html_links(token.content, self.base_url, None, self.line - 1))
            self.line += token.content.count("\n")

    def _link(self, raw: str, origin: str, text: str | None) -> Link | None:
        """A link on the current line, None when its destination is not one to check."""
        url = _resolve(raw, self.base_url)
        return Link(url=url, line=self.line, text=text, raw=raw, origin=origin) if url else None

    def _text(self, content: str) -> None:
        """Add text to every open link's label."""
        for _, _, parts in self.open:
            parts.append(content)


def extract_markdown_links(markdown: str, base_url: str | None = None) -> list[Link]:
    """Inline, reference, image, autolink and bare-URL links; nothing in code."""
    links: list[Link] = []
    for token in _MARKDOWN.parse(markdown):
        if token.map is None:
            continue
        if token.type == "html_block":
            links.extend(_html_links(token.content, base_url, None, token.map[0]))
        elif token.type == "inline":
            scan = _InlineScan(base_url, token.map[0] + 1)
            for child in token.children or []:
                scan.feed(child)
            links.extend(link for link in scan.links if link is not None)
    return links


def extract_links(content: str, kind: SourceKind, base_url: str | None = None) -> list[Link]:
    """Links in `content` read as `kind`; `base_url` resolves relative HTML/Markdown links."""
    if kind is SourceKind.HTML:
        return extract_html_links(content, base_url)
    if kind is SourceKind.MARKDOWN:
        return extract_markdown_links(content, base_url)
    return extract_text_links(content)
