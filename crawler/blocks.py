"""What kind of container an element sits in: a related block, navigation, an ad slot or a
site-wide list; and whether a paragraph or list item is a "Related:" / "Read more:" paragraph.

Pure and memoised per page (`Kinds`); what an element's class, id, role, aria-label, data-*
attributes and leading heading say is cached across pages, as class names repeat across a site.
`crawler.related` asks these questions of each link it considers.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import islice
from typing import cast

from lxml import etree

from crawler.pagemeta import Element, attr, is_element, leading_text, text_of

RELATED, NAV, AD, LIST = "related", "nav", "ad", "list"
MAX_LABELLED_RUN = 8  # one-link paragraphs a lone "Read more:" paragraph may head

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
_CAMEL_RE = re.compile(r"([a-z])([A-Z])")


def is_block_title(anchor: Element) -> bool:
    """True for a link in the heading that opens a related block: it names the block
    ("More from <a>US & Canada</a>", BBC) and points at a section, not at a story."""
    heading = next(anchor.iterancestors(*_TITLE_TAGS), None)
    if heading is None:
        return False
    container = heading.getparent()
    for _ in range(3):  # the heading sits at most two wrappers below its block
        if container is None or container.tag in _STOP_TAGS:
            return False
        if _own_kind(container) == RELATED:
            return _leading_heading_tag(container) is heading
        container = container.getparent()
    return False


class Kinds:
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
            above = AD if AD in (above, own) else (own or above)
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
        return AD
    if tag in _NAV_TAGS or role.lower() in _NAV_ROLES or _NAV_TOKEN_RE.search(names):
        return NAV
    raw = [*words, aria_label, *(text for pair in data for text in pair), heading]
    labels = "\n".join(_fold(label) for label in raw if label)
    if _SITE_LIST_RE.search(labels) or ("latest" in labels and _LATEST_RE.search(labels)):
        return LIST
    return RELATED if _RELATED_RE.search(labels) else None


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


@lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    """Lower-case, accent-free, camelCase and -_ split: "relatedArticles" -> "related articles"."""
    spaced = _CAMEL_RE.sub(r"\1 \2", text).replace("-", " ").replace("_", " ").lower()
    if not spaced.isascii():
        decomposed = unicodedata.normalize("NFKD", spaced)
        spaced = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(spaced.split())
