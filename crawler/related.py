"""Pure: a fetched page's HTML -> `PageInfo` (title, heading, canonical, date, related stories).

Nothing here does I/O and nothing raises on odd input: a page is untrusted bytes, so parsing
is bounded (the first `MAX_HTML_BYTES` only, at most `max_links_scanned` elements looked at,
JSON-LD scripts capped in number and size) and every reader returns None or () when it finds
nothing it believes. The tree is lxml's; metadata readers live in `crawler.pagemeta`, date
parsing in `crawler.dates` (both re-exported here), and what kind of container a link sits in
(a related block, navigation, an ad slot) in `crawler.blocks`.

Related stories come from four places, each named in `Link.origin`:

- "related-block": links inside an element whose class, id, aria-label, data-* attributes or
  leading heading say "related", "read more", "see also", "recommended"... (a few languages);
- "related-paragraph": a paragraph that starts "Related:", "Read more:", "See also:"...;
- "rel-related": `<link rel="related">` and `<a rel="related">`;
- "json-ld": schema.org `relatedLink` in a JSON-LD script.

Navigation, headers, footers, share and comment links are not related stories; ad widgets
(Taboola and Outbrain "recommended" boxes included) never are, whatever surrounds them. For a
link inside both a related block and a header/footer, the nearest of the two decides.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urlsplit

from crawler.blocks import AD, RELATED, Kinds, is_block_title
from crawler.dates import URL_DATE_RE, parse_date, url_date
from crawler.model import Link, PageInfo
from crawler.pagemeta import (
    MAX_HTML_BYTES,
    Element,
    absolute_url,
    attr,
    canonical_from,
    clean_text,
    decode_html,
    extract_canonical,
    extract_heading,
    extract_language,
    extract_published,
    is_json_ld,
    json_ld_objects,
    language_from,
    leading_text,
    load_json,
    parse_html,
    published_from,
    read_meta,
    source_line,
    tokens,
    walk_json,
)
from crawler.titles import extract_title, title_from
from crawler.urls import is_same_site, normalize_url

__all__ = [
    "DEFAULT_MAX_LINKS_SCANNED",
    "DEFAULT_MAX_RELATED",
    "MAX_HTML_BYTES",
    "decode_html",
    "extract_canonical",
    "extract_heading",
    "extract_language",
    "extract_published",
    "extract_related",
    "extract_title",
    "looks_like_story",
    "parse_date",
    "parse_page",
    "url_date",
]

MAX_TEXT_CHARS = 300
DEFAULT_MAX_RELATED = 50
DEFAULT_MAX_LINKS_SCANNED = 5000
# libxml2 counts lines in 16 bits unless told otherwise: 65535 means "somewhere past it".
_UNKNOWN_LINE = 65535

_SHARE_HOSTS = (
    "facebook.com/sharer", "facebook.com/share", "twitter.com/intent", "twitter.com/share",
    "x.com/intent", "x.com/share", "linkedin.com/share", "linkedin.com/cws/share",
    "pinterest.com/pin/create", "reddit.com/submit", "wa.me/", "api.whatsapp.com/send",
    "web.whatsapp.com/send", "t.me/share", "telegram.me/share", "getpocket.com/save",
    "news.ycombinator.com/submitlink", "tumblr.com/share", "plus.google.com/share",
)  # fmt: skip
_NOT_STORY_PATH_RE = re.compile(
    r"/(tag|tags|category|categories|author|authors|topic|topics|section|sections|profile"
    r"|log-?in|sign-?in|sign-?up|register|subscribe|subscriptions?|account|my-?account|logout"
    r"|newsletters?|comments?|feed|rss)(/|$|\.)",
    re.IGNORECASE,
)
# Measured on newspaper4k's url_lists/test_urls.txt: 19 of 20 stories, 3 of 20 non-stories.
_STORY_SEGMENT_RE = re.compile(r"[-_][^-_]*[-_]|\d{5,}")
_INDEX_STEMS = frozenset({"index", "default", "home", "main", "start", "welcome"})
_LONG_ID_RE = re.compile(r"\d{5,}|[0-9a-f]{8}-[0-9a-f]{4}")
_PAGE_SUFFIX_RE = re.compile(r"\.(s?html?|php|aspx?|jsp|cms)$", re.IGNORECASE)
_MEDIA_PATH_RE = re.compile(
    r"\.(jpe?g|png|gif|webp|svg|mp[34]|m4v|flv|mov|webm|avi|wav|ogg|zip|css|js|ico)$", re.IGNORECASE
)
_COMMENT_FRAGMENT_RE = re.compile(r"^(comments?|respond|reply|disqus_thread)", re.IGNORECASE)
Candidate = tuple[str, str | None, str, int | None]  # href, text, origin, line


# -- entry point -----------------------------------------------------------------------------


def parse_page(
    html: str | bytes,
    url: str,
    *,
    max_related: int = DEFAULT_MAX_RELATED,
    same_site: bool = True,
    max_links_scanned: int = DEFAULT_MAX_LINKS_SCANNED,
    metadata_only: bool = False,
) -> PageInfo:
    """Read a page's metadata and (unless `metadata_only`) its related-story links; never
    raises, whatever the bytes."""
    root = parse_html(decode_html(html))
    if root is None:
        return PageInfo(published=url_date(url))
    related: tuple[Link, ...] = ()
    if not metadata_only:
        related = tuple(
            extract_related(
                root,
                url,
                max_related=max_related,
                same_site=same_site,
                max_links_scanned=max_links_scanned,
            )
        )
    # Read once, used by several readers: the title, canonical, date and language all look
    # at the meta tags, and the title and date at the JSON-LD objects.
    meta, objects = read_meta(root), json_ld_objects(root)
    return PageInfo(
        title=title_from(root, meta, objects),
        heading=extract_heading(root),
        canonical_url=canonical_from(root, url, meta),
        published=published_from(root, meta, objects) or url_date(url),
        language=language_from(root, meta),
        related=related,
    )


# -- related links ---------------------------------------------------------------------------


def extract_related(
    root: Element,
    url: str,
    *,
    max_related: int = DEFAULT_MAX_RELATED,
    same_site: bool = True,
    max_links_scanned: int = DEFAULT_MAX_LINKS_SCANNED,
) -> list[Link]:
    """Related-story links in page order: absolute, fragment-free, deduplicated, capped."""
    picker = _Picker(url, max_related, same_site)
    if max_links_scanned <= 0:
        return picker.links
    for count, tag in enumerate(root.iter("a", "link", "script"), start=1):
        if picker.full:
            break
        for candidate in _related_candidates(tag, picker.kinds):
            picker.offer(*candidate)
        if count >= max_links_scanned:
            break
    return picker.links


def _related_candidates(tag: Element, kinds: Kinds) -> list[Candidate]:
    """(href, text, origin, line) for each related link this one element declares."""
    if tag.tag == "script":
        return _json_ld_related(tag) if is_json_ld(tag) else []
    href = attr(tag, "href")
    # A link within this page is refused whatever its origin: skip reading where it sits.
    if not href or href.startswith("#"):
        return []
    if tag.tag == "link":
        related = "related" in tokens(tag, "rel")
        return [(href, None, "rel-related", _line(source_line(tag)))] if related else []
    origin = _anchor_origin(tag, kinds)
    return [(href, _anchor_text(tag), origin, _line(source_line(tag)))] if origin else []


def _json_ld_related(script: Element) -> list[Candidate]:
    """The `relatedLink` URLs of one JSON-LD script (string, list, or objects with url/@id)."""
    text = script.text or ""
    found: list[Candidate] = []
    for obj in walk_json(load_json(text)):
        value = obj.get("relatedLink")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                item = item.get("url") or item.get("@id")
            if isinstance(item, str):
                found.append((item, None, "json-ld", _line_in(script, text, item)))
    return found


def _line(sourceline: int | None) -> int | None:
    """libxml2's line number, None when it is unknown or past its 16-bit counter."""
    return sourceline if sourceline and sourceline < _UNKNOWN_LINE else None


def _line_in(script: Element, text: str, needle: str) -> int | None:
    """The line of `needle` inside a script's text (the script starts on `sourceline`)."""
    start, at = _line(source_line(script)), text.find(needle)
    return start + text.count("\n", 0, at) if start is not None and at >= 0 else start


def _anchor_origin(anchor: Element, kinds: Kinds) -> str | None:
    """Why an <a> is a related story ("rel-related", ...), or None if it is not one."""
    kind = kinds.resolve(anchor)
    if kind == AD:
        return None
    if "related" in tokens(anchor, "rel"):
        return "rel-related"
    if kinds.in_related_paragraph(anchor):
        return "related-paragraph"
    return "related-block" if kind == RELATED and not is_block_title(anchor) else None


class _Picker:
    """Filters, resolves and deduplicates candidate links; stops at `max_related`."""

    def __init__(self, url: str, limit: int, same_site: bool) -> None:
        self.url = url
        self.limit = limit
        self.same_site = same_site
        self.kinds = Kinds()
        self.links: list[Link] = []
        self._seen = {normalize_url(url)}

    @property
    def full(self) -> bool:
        """True once `limit` links were kept."""
        return len(self.links) >= self.limit

    def offer(self, href: str, text: str | None, origin: str, line: int | None) -> None:
        """Keep `href` if it is a related story not seen before."""
        if self.full or _is_share_or_comment(href):
            return
        resolved = absolute_url(self.url, href)
        if resolved is None or _NOT_STORY_PATH_RE.search(_path_of(resolved)):
            return
        if self.same_site and not is_same_site(resolved, self.url):
            return
        # A related block also lists section and topic pages; only stories are related.
        if origin == "related-block" and not looks_like_story(resolved):
            return
        key = normalize_url(resolved)
        if key in self._seen:
            return
        self._seen.add(key)
        self.links.append(Link(resolved, line, text, href, origin))


def looks_like_story(url: str) -> bool:
    """True if a URL looks like one story, not a section: a dated path, a slug or a long id."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if _MEDIA_PATH_RE.search(parts.path):
        return False
    if URL_DATE_RE.search(parts.path):
        return True
    raw_segments = [s for s in parts.path.split("/") if s]
    if raw_segments and _PAGE_SUFFIX_RE.search(raw_segments[-1]):
        # A named page (not a folder) is one document; only index-like names stand for a section.
        stem = _PAGE_SUFFIX_RE.sub("", raw_segments[-1]).lower()
        if stem not in _INDEX_STEMS:
            return True
    segments = [_PAGE_SUFFIX_RE.sub("", s) for s in raw_segments]
    return any(_STORY_SEGMENT_RE.search(s) for s in segments) or bool(
        _LONG_ID_RE.search(parts.query)
    )


def _is_share_or_comment(href: str) -> bool:
    """True for share buttons, mail links and links to a comment section."""
    lowered = href.strip().lower()
    if lowered.startswith(("mailto:", "whatsapp:", "sms:", "tel:", "javascript:")):
        return True
    if any(host in lowered for host in _SHARE_HOSTS):
        return True
    fragment = urldefrag(href)[1]
    return bool(fragment and _COMMENT_FRAGMENT_RE.match(fragment)) or "replytocom=" in lowered


# -- small helpers ---------------------------------------------------------------------------


def _path_of(url: str) -> str:
    """The path of a URL, "" when it cannot be split (a bad IPv6 host, say)."""
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def _anchor_text(anchor: Element) -> str | None:
    """Visible text of a link (or its title / image alt), whitespace collapsed and capped."""
    text = clean_text(leading_text(anchor, MAX_TEXT_CHARS))
    if not text:
        text = clean_text(attr(anchor, "title"))
    if not text:
        img = next(anchor.iterdescendants("img"), None)
        text = clean_text(attr(img, "alt"))
    return text or None
