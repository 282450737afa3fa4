"""Pure: a page's title, as Mozilla Readability reads it, plus the crawler's site-name cuts.

Readability.js 0.6 (`_getJSONLD`, `_getArticleMetadata`, `_getArticleTitle`) ported rule for
rule; `title_from` lists what the crawler adds on top. Measured on real pages by
`make accuracy` (docs/accuracy.md): the title against Readability's own output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

from crawler.pagemeta import (
    MAX_META_TAGS,
    Element,
    JsonObjects,
    Meta,
    attr,
    clean_text,
    extract_heading,
    json_ld_objects,
    read_meta,
    text_of,
)

MAX_SITE_NAME_CHARS = 60
_SEPARATORS = (" | ", " - ", " – ", " — ", " -- ", " :: ", " · ", " » ", " / ")
_SEPARATOR_CHARS = "|-–—·»/_~"
# Mozilla Readability's title (Readability.js 0.6: `_getJSONLD`, `_getArticleMetadata`,
# `_getArticleTitle`), ported rule for rule; `title_from` lists what the crawler adds on top.
_TITLE_META = ("dc:title", "dcterm:title", "og:title", "weibo:article:title",
               "weibo:webpage:title", "title", "twitter:title", "parsely-title")  # fmt: skip
_TITLE_PROPERTY_RE = re.compile(
    r"\s*(article|dc|dcterm|og|twitter)\s*:\s*"
    r"(author|creator|description|published_time|title|site_name)\s*",
    re.IGNORECASE,
)
_TITLE_NAME_RE = re.compile(
    r"^\s*(?:(dc|dcterm|og|twitter|parsely|weibo:(article|webpage))\s*[-.:]\s*)?"
    r"(author|creator|pub-date|description|title|site_name)\s*$",
    re.IGNORECASE,
)
_JSON_LD_ARTICLE_RE = re.compile(
    r"^Article|AdvertiserContentArticle|NewsArticle|AnalysisNewsArticle|AskPublicNewsArticle"
    r"|BackgroundNewsArticle|OpinionNewsArticle|ReportageNewsArticle|ReviewNewsArticle|Report"
    r"|SatiricalArticle|ScholarlyArticle|MedicalScholarlyArticle|SocialMediaPosting"
    r"|BlogPosting|LiveBlogPosting|DiscussionForumPosting|TechArticle|APIReference$"
)
_TITLE_SEPARATOR_RE = re.compile(r" [|\-\\/>»] ")
_HIERARCHICAL_SEPARATOR_RE = re.compile(r" [\\/>»] ")
_FIRST_TITLE_PART_RE = re.compile(r"^[^|\-\\/>»]*[|\-\\/>»]")
_SEPARATOR_RUN_RE = re.compile(r"[|\-\\/>»]+")
_WHITESPACE_RE = re.compile(r"\s+")
_WHITESPACE_RUN_RE = re.compile(r"\s{2,}")
_ASCII_WHITESPACE_RE = re.compile(r"[\t\n\f\r ]+")
_NON_WORD_RE = re.compile(r"\W+", re.ASCII)
_ENTITY_RE = re.compile(r"&(quot|amp|apos|lt|gt);|&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_NAMED_ENTITIES = {"quot": '"', "amp": "&", "apos": "'", "lt": "<", "gt": ">"}
_SHORT_TITLE_CHARS, _LONG_TITLE_CHARS = 15, 150


def extract_title(root: Element) -> str | None:
    """The article title as Mozilla Readability reads it (see `title_from`)."""
    return title_from(root, read_meta(root), json_ld_objects(root))


def title_from(root: Element, meta: Meta, objects: JsonObjects) -> str | None:
    """`extract_title` with the page's meta tags and JSON-LD objects already read.

    Readability's order: the JSON-LD article's name or headline, then the meta tags dc:title,
    dcterm:title, og:title, weibo titles, title, twitter:title, parsely-title; without any, the
    <title> as `readability_title` trims it. What the crawler adds: JSON-LD is read as
    `json_ld_objects` reads it (no @context needed, nested objects and <!-- --> wrappers
    accepted); a " | Suffix" is cut when it is og:site_name, or when another title meta tag
    (for a metadata title) or the <h1> (for a <title>) is the title without it; a page with no
    title at all gets its first <h1>.
    """
    declared = [clean_text(_unescape_entities(t)) for t in _metadata_titles(root, objects)]
    declared = [t for t in declared if t]
    if declared:
        title, others = declared[0], declared[1:]
    else:
        heading = extract_heading(root)
        title = clean_text(_unescape_entities(readability_title(root))) or heading or ""
        others = [heading] if heading else []
    title = _cut_confirmed_suffix(title, others)
    return _cut_site_name(title, meta.get("og:site_name")) or None


def _metadata_titles(root: Element, objects: JsonObjects) -> Iterator[str]:
    """The JSON-LD title, then each title meta tag, in Readability's order of preference."""
    yield _json_ld_title(root, objects)
    values = _title_meta_values(root)
    yield from (values[key] for key in _TITLE_META if key in values)


def _json_ld_title(root: Element, objects: JsonObjects) -> str:
    """The first JSON-LD article's `name`, or its `headline` when only that one matches <title>."""
    article = next((obj for obj in objects if _is_readability_article(obj)), None)
    if article is None:
        return ""
    name, headline = article.get("name"), article.get("headline")
    if isinstance(name, str) and isinstance(headline, str) and name != headline:
        # Some sites put their own name in `name` (aktualne.cz): keep whichever matches <title>.
        page_title = readability_title(root)
        name_matches = _text_similarity(name, page_title) > 0.75
        headline_matches = _text_similarity(headline, page_title) > 0.75
        return headline if headline_matches and not name_matches else name
    if isinstance(name, str):
        return name.strip()
    return headline.strip() if isinstance(headline, str) else ""


def _is_readability_article(obj: dict[str, Any]) -> bool:
    """True if a JSON-LD object's @type is one Readability reads a title from."""
    kinds = obj.get("@type")
    names = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(n, str) and _JSON_LD_ARTICLE_RE.search(n) for n in names)


def _text_similarity(text_a: str, text_b: str) -> float:
    """Readability's `_textSimilarity`: 1 - the share of `text_b` made of words not in `text_a`."""
    tokens_a = [t for t in _NON_WORD_RE.split(text_a.lower()) if t]
    tokens_b = [t for t in _NON_WORD_RE.split(text_b.lower()) if t]
    if not tokens_a or not tokens_b:
        return 0.0
    unique_b = [t for t in tokens_b if t not in tokens_a]
    return 1 - len(" ".join(unique_b)) / len(" ".join(tokens_b))


def _title_meta_values(root: Element) -> dict[str, str]:
    """Readability's reading of meta tags: a `property` list, else a `name`; the last one wins."""
    values: dict[str, str] = {}
    for count, tag in enumerate(root.iter("meta"), start=1):
        if count > MAX_META_TAGS:
            break
        content = attr(tag, "content")
        if not content:
            continue
        match = _TITLE_PROPERTY_RE.search(attr(tag, "property"))
        if match is not None:
            key = _WHITESPACE_RE.sub("", match.group(0).lower())
        elif _TITLE_NAME_RE.match(attr(tag, "name")):
            key = _WHITESPACE_RE.sub("", attr(tag, "name").lower()).replace(".", ":")
        else:
            continue
        values[key] = content.strip()
    return values


def readability_title(root: Element) -> str:
    """Readability's `_getArticleTitle`: the <title> with a site name or section cut off.

    A " | - \\ / > » " separated last part is cut (the first part instead when fewer than 3
    words would be left); else a "Kicker: title" keeps the part after the colon unless an
    <h1>/<h2> is the whole title; else a title under 15 or over 150 characters gives way to
    the page's only <h1>. A result of 4 words or fewer falls back to the whole <title>, unless
    a hierarchical separator (\\ / > ») took off exactly one word.
    """
    original = _document_title(root)
    title = original
    hierarchical = False
    if _TITLE_SEPARATOR_RE.search(title):
        hierarchical = _HIERARCHICAL_SEPARATOR_RE.search(title) is not None
        title = original[: list(_TITLE_SEPARATOR_RE.finditer(original))[-1].start()]
        if _word_count(title) < 3:
            title = _FIRST_TITLE_PART_RE.sub("", original, count=1)
    elif ": " in title:
        if not any(text_of(h, "").strip() == title for h in root.iter("h1", "h2")):
            title = original[original.rfind(":") + 1 :]
            if _word_count(title) < 3:
                title = original[original.find(":") + 1 :]
            elif _word_count(original[: original.find(":")]) > 5:
                title = original
    elif not _SHORT_TITLE_CHARS <= _js_length(title) <= _LONG_TITLE_CHARS:
        h1s = list(islice(root.iter("h1"), 2))
        if len(h1s) == 1:
            title = _WHITESPACE_RUN_RE.sub(" ", text_of(h1s[0], "").strip())
    title = _WHITESPACE_RUN_RE.sub(" ", title.strip())
    words = _word_count(title)
    if words <= 4 and (
        not hierarchical or words != _word_count(_SEPARATOR_RUN_RE.sub("", original)) - 1
    ):
        title = original
    return title


def _document_title(root: Element) -> str:
    """`document.title`: the first <title> outside inline SVG, ASCII whitespace collapsed."""
    for count, tag in enumerate(root.iter("title"), start=1):
        if not any(a.tag == "svg" for a in tag.iterancestors()):
            return _ASCII_WHITESPACE_RE.sub(" ", text_of(tag, "")).strip()
        if count >= 5:
            break
    return ""


def _word_count(text: str) -> int:
    """JavaScript's `text.split(/\\s+/).length`: a leading or trailing space counts a word."""
    return len(_WHITESPACE_RE.split(text))


def _js_length(text: str) -> int:
    """A string's length in UTF-16 code units, as JavaScript counts it."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _unescape_entities(text: str) -> str:
    """Readability's `_unescapeHtmlEntities`: the five named and all numeric references."""
    return _ENTITY_RE.sub(_entity, text) if "&" in text else text


def _entity(match: re.Match[str]) -> str:
    """One reference of `_ENTITY_RE` as its character; U+FFFD where an HTML parser puts one."""
    if match.group(1):
        return _NAMED_ENTITIES[match.group(1)]
    digits = (match.group(2) or match.group(3)).lstrip("0")
    # More than 8 digits is past U+10FFFF in either base (and int() caps how many it reads).
    number = int(digits or "0", 16 if match.group(2) else 10) if len(digits) <= 8 else -1
    return chr(number) if 0 < number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else "\ufffd"


def _cut_site_name(title: str, site_name: str | None) -> str:
    """`title` without a trailing " | Site" whose site part is og:site_name (the crawler's rule)."""
    site = clean_text(site_name).lower()
    if not site or len(site) > MAX_SITE_NAME_CHARS:
        return title
    for sep in _SEPARATORS:
        head, _, tail = title.rpartition(sep)
        if head.strip() and tail.strip().lower() == site:
            return head.strip()
    return title


def _cut_confirmed_suffix(title: str, others: list[str]) -> str:
    """`title` without a " | Suffix" when one of `others` is exactly the title before it."""
    for other in sorted(others, key=len, reverse=True):
        rest = title[len(other) :].strip() if title.startswith(other) else ""
        if rest and rest[0] in _SEPARATOR_CHARS and len(rest) <= MAX_SITE_NAME_CHARS:
            return other
    return title
