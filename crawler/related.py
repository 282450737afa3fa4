"""Pure: a fetched page's HTML -> `PageInfo` (title, heading, canonical, date, related stories).

Nothing here does I/O and nothing raises on odd input: a page is untrusted bytes, so parsing
is bounded (the first `MAX_HTML_BYTES` only, at most `max_links_scanned` elements looked at,
JSON-LD scripts capped in number and size) and every reader returns None or () when it finds
nothing it believes. The tree is lxml's; metadata readers live in `crawler.pagemeta`, date
parsing in `crawler.dates`, and both are re-exported here.

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
import unicodedata
from functools import lru_cache
from itertools import islice
from typing import cast
from urllib.parse import urldefrag, urlsplit

from lxml import etree

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
    is_element,
    is_json_ld,
    json_ld_objects,
    language_from,
    leading_text,
    load_json,
    parse_html,
    published_from,
    read_meta,
    source_line,
    text_of,
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
MAX_LABELLED_RUN = 8  # one-link paragraphs a lone "Read more:" paragraph may head
# libxml2 counts lines in 16 bits unless told otherwise: 65535 means "somewhere past it".
_UNKNOWN_LINE = 65535

_RELATED_WORDS = (
    r"\brelated|\brelacionad|\bread ?more\b|\bmore on this\b|\bmore from\b|\bsee also\b"
    r"|\byou (may|might) also like\b|\brecommend|\bfurther reading\b|\bmore stories\b"
    r"|\b(also read|read also)\b|\blire aussi\b|\bleia tambem\b|\bahnliche|\bmehr zum thema\b"
    r"|\blesen sie auch\b|\blees ook\b|\blea tambien\b|\bver tambien\b"
)
_RELATED_RE = re.compile(_RELATED_WORDS, re.MULTILINE)
# A leading "[" or "(" allows the Washington Post's "[Read: ...]" interstitial links.
_PARAGRAPH_RE = re.compile(
    r"^[\[(]?\s*(related( \w+)?|read more|see also|also read|read also|read|more|a? ?lire aussi"
    r"|leia tambem|leia mais|lesen sie auch|mehr zum thema|lees ook|lea tambien|ver tambien"
    r"|relacionad\w*)\s*[:：»|–—]"
)
# Site-wide lists (most read, trending, latest news ...) are not about this story, even when
# they sit inside a block marked related (the Telegraph's "News latest" in its related aside).
_SITE_LIST_RE = re.compile(
    r"\bmost (read|popular|viewed|shared|watched|emailed|commented)\b|\btrending\b"
    r"|\btop stories\b|\bmust reads?\b|\bmais lidas\b|\bmeistgelesen|\bles plus lus\b"
    r"|\blo mas leido\b"
)
# A separate pattern: a `^` branch in the one above would make every search several times slower.
_LATEST_RE = re.compile(r"^(?:the )?(?:news )?latest(?: news| stories| headlines)?$", re.M)
# Class names that are script hooks or state ("js-outbrain-anchor", "hide-read-more-ad") say
# what is done to an element, not what it is: they must not make a block an ad or navigation.
_MODIFIER_LINE_RE = re.compile(r"^(js|is|has|no|hide|hidden|show|with|without)[-_].*$", re.M)
_BEM_MODIFIER_RE = re.compile(r"--.*$", re.MULTILINE)
# Which class or id tokens (one per line, lower-cased) mark an ad slot or navigation: whole
# names ("ad", "nav"), prefixes ("ad-", "nav_"), suffixes ("-ads", "-nav") and contained words.
_AD_TOKEN_RE = re.compile(
    r"sponsor|promo|outbrain|taboola|advertis|[-_]ads?$|^(ads?|adv|advert\w*|dfp\w*)$"
    r"|^(ad[-_]|ob[-_]|trc_)",
    re.MULTILINE,
)
_NAV_TOKEN_RE = re.compile(
    r"menu|share|social|comment|[-_]nav$|^nav[-_]"
    r"|^(nav|navbar|navigation|breadcrumbs?|masthead|site[-_]header|site[-_]footer)$",
    re.MULTILINE,
)
_NAV_TAGS = frozenset({"nav", "header", "footer", "menu"})
_LABEL_ATTRS = frozenset({"class", "id", "role", "aria-label"})
_NAV_ROLES = frozenset({"navigation", "banner", "contentinfo", "menu", "menubar"})
_HEADING_TAGS = frozenset({"h2", "h3", "h4", "h5", "strong", "b"})
_TITLE_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_WRAPPER_TAGS = frozenset({"div", "header", "span", "section"})
_BLOCK_TAGS = frozenset({"div", "section", "aside", "ul", "ol", "article", "p", "table", "dl"})
_STOP_TAGS = frozenset({"body", "html"})

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
_CAMEL_RE = re.compile(r"([a-z])([A-Z])")

_RELATED, _NAV, _AD, _LIST = "related", "nav", "ad", "list"
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


def _related_candidates(tag: Element, kinds: _Kinds) -> list[Candidate]:
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


def _anchor_origin(anchor: Element, kinds: _Kinds) -> str | None:
    """Why an <a> is a related story ("rel-related", ...), or None if it is not one."""
    kind = kinds.resolve(anchor)
    if kind == _AD:
        return None
    if "related" in tokens(anchor, "rel"):
        return "rel-related"
    if kinds.in_related_paragraph(anchor):
        return "related-paragraph"
    return "related-block" if kind == _RELATED and not _is_block_title(anchor) else None


def _is_block_title(anchor: Element) -> bool:
    """True for a link in the heading that opens a related block: it names the block
    ("More from <a>US & Canada</a>", BBC) and points at a section, not at a story."""
    heading = next(anchor.iterancestors(*_TITLE_TAGS), None)
    if heading is None:
        return False
    container = heading.getparent()
    for _ in range(3):  # the heading sits at most two wrappers below its block
        if container is None or container.tag in _STOP_TAGS:
            return False
        if _own_kind(container) == _RELATED:
            return _leading_heading_tag(container) is heading
        container = container.getparent()
    return False


class _Kinds:
    """Memoised "what kind of container is this element in" (related, nav, ad or None), and
    "is this <p>/<li> a related paragraph" with the per-element readings it needs."""

    def __init__(self) -> None:
        # Keyed by the element itself: holding it keeps lxml's proxy (and its hash) alive.
        self._resolved: dict[Element, str | None] = {}
        self._paragraphs: dict[Element, bool] = {}
        self._openings: dict[Element, str] = {}
        self._link_only: dict[Element, bool] = {}

    def resolve(self, tag: Element) -> str | None:
        """The kind that governs `tag`: an ad anywhere above wins, else the nearest kind."""
        chain: list[Element] = []
        node: Element | None = tag
        while node is not None and node.tag not in _STOP_TAGS and node not in self._resolved:
            chain.append(node)
            node = node.getparent()
        above = self._resolved.get(node) if node is not None else None
        for element in reversed(chain):
            own = _own_kind(element)
            above = _AD if _AD in (above, own) else (own or above)
            self._resolved[element] = above
        return above

    def in_related_paragraph(self, anchor: Element) -> bool:
        """True if the nearest <p> or <li> around `anchor` starts "Related:", "Read more:"..."""
        block = next(anchor.iterancestors("p", "li"), None)
        if block is None:
            return False
        if block not in self._paragraphs:
            self._paragraphs[block] = self._is_related_paragraph(block)
        return self._paragraphs[block]

    def _is_related_paragraph(self, block: Element) -> bool:
        """True if a <p>/<li> starts "Related:", or is one of a run of one-link paragraphs that
        a lone "Read more:" paragraph heads (the Washington Post's layout)."""
        if self._label(block) is not None:
            return True
        siblings = list(islice(block.itersiblings(block.tag, preceding=True), MAX_LABELLED_RUN))
        # Only a label among the siblings can head a run: without one, skip the costlier checks.
        if all(self._label(s) is None for s in siblings) or not self._is_link_only(block):
            return False
        for sibling in siblings:
            label = self._label(sibling)
            if label is not None:
                return not label.string[label.end() :].strip()
            if self._opening(sibling) and not self._is_link_only(sibling):
                return False
        return False

    def _label(self, block: Element) -> re.Match[str] | None:
        """The "Related:" / "Read more:" label that opens a block, if any."""
        return _PARAGRAPH_RE.match(self._opening(block))

    def _opening(self, block: Element) -> str:
        """The folded first 60 characters of a block's text."""
        if block not in self._openings:
            self._openings[block] = _fold(leading_text(block, 60))
        return self._openings[block]

    def _is_link_only(self, block: Element) -> bool:
        """True if all the text of an element is the text of its one link."""
        if block not in self._link_only:
            self._link_only[block] = _is_link_only(block)
        return self._link_only[block]


def _is_link_only(block: Element) -> bool:
    """True if all the text of an element is the text of its one link."""
    anchors = list(islice(block.iterdescendants("a"), 2))
    if len(anchors) != 1:
        return False
    # Text right inside the block is outside the link: a cheap "no" for most paragraphs.
    if _has_words(block.text) or any(_has_words(child.tail) for child in block):
        return False
    return text_of(block).split() == text_of(anchors[0]).split()


def _has_words(text: str | None) -> bool:
    """True if `text` has anything but whitespace."""
    return bool(text and not text.isspace())


def _own_kind(tag: Element) -> str | None:
    """What this element alone says it is: an ad slot, navigation, a site-wide list, a related
    block or nothing."""
    name, keys = tag.tag, cast("list[str]", tag.keys())
    if name in _BLOCK_TAGS:
        heading = _leading_heading(tag) or _previous_heading(tag) or ""
    elif name in _NAV_TAGS or _has_label(keys):
        heading = ""
    else:
        return None  # the common case, kept cheap: nothing here could name a block
    data = tuple((key[5:], attr(tag, key)[:100]) for key in keys if key.startswith("data-"))
    names = (attr(tag, "class"), attr(tag, "id"), attr(tag, "role"), attr(tag, "aria-label"))
    return _kind_of(str(name), *names, heading, data)


def _has_label(keys: list[str]) -> bool:
    """True if any of these attribute names can say what an element is."""
    if not _LABEL_ATTRS.isdisjoint(keys):
        return True
    return any(key.startswith("data-") for key in keys)


@lru_cache(maxsize=8192)
def _kind_of(
    tag: str,
    classes: str,
    ids: str,
    role: str,
    aria_label: str,
    heading: str,
    data: tuple[tuple[str, str], ...],
) -> str | None:
    """`_own_kind` from what an element says: cached, as class names repeat across a site."""
    words = f"{classes} {ids}".split()
    # One token per line, so the anchored patterns below test each token on its own.
    # A BEM modifier ("fc-item--is-commentable") styles its block; the block name says what it is.
    names = _MODIFIER_LINE_RE.sub("", _BEM_MODIFIER_RE.sub("", "\n".join(words).lower()))
    if _AD_TOKEN_RE.search(names):
        return _AD
    if tag in _NAV_TAGS or role.lower() in _NAV_ROLES or _NAV_TOKEN_RE.search(names):
        return _NAV
    raw = [*words, aria_label, *(text for pair in data for text in pair), heading]
    labels = "\n".join(_fold(label) for label in raw if label)
    if _SITE_LIST_RE.search(labels) or ("latest" in labels and _LATEST_RE.search(labels)):
        return _LIST
    return _RELATED if _RELATED_RE.search(labels) else None


def _leading_heading(tag: Element) -> str | None:
    """The text of a heading that opens `tag` (looking through up to two wrapper levels)."""
    heading = _leading_heading_tag(tag)
    return leading_text(heading, 80) if heading is not None else None


def _leading_heading_tag(tag: Element, depth: int = 0) -> Element | None:
    """The heading element that opens `tag`, through up to two wrapper levels."""
    first = _first_child_element(tag)
    if first is None:
        return None
    if first.tag in _HEADING_TAGS:
        return first
    if first.tag in _WRAPPER_TAGS and depth < 2:
        return _leading_heading_tag(first, depth + 1)
    return None


def _previous_heading(tag: Element) -> str | None:
    """The text of an <h2>..<h4> right before `tag`, as in `<h2>Related</h2><ul>...`."""
    sibling = next(tag.itersiblings(etree.Element, preceding=True), None)
    if sibling is not None and sibling.tag in ("h2", "h3", "h4"):
        return leading_text(sibling, 80)
    return None


def _first_child_element(tag: Element) -> Element | None:
    """The first child element, skipping whitespace and comments; None if text comes first."""
    if tag.text and tag.text.strip():
        return None
    for child in tag:
        if is_element(child):
            return child
        if child.tail and child.tail.strip():
            return None
    return None


class _Picker:
    """Filters, resolves and deduplicates candidate links; stops at `max_related`."""

    def __init__(self, url: str, limit: int, same_site: bool) -> None:
        self.url = url
        self.limit = limit
        self.same_site = same_site
        self.kinds = _Kinds()
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


@lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    """Lower-case, accent-free, camelCase and -_ split: "relatedArticles" -> "related articles"."""
    spaced = _CAMEL_RE.sub(r"\1 \2", text).replace("-", " ").replace("_", " ").lower()
    if not spaced.isascii():
        decomposed = unicodedata.normalize("NFKD", spaced)
        spaced = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(spaced.split())
