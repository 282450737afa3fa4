"""Pure: a fetched page's HTML -> `PageInfo` (title, heading, canonical, date, related stories).

Nothing here does I/O and nothing raises on odd input: a page is untrusted bytes, so parsing
is bounded (the first `MAX_HTML_BYTES` only, at most `max_links_scanned` elements looked at,
JSON-LD scripts capped in number and size) and every reader returns None or () when it finds
nothing it believes.

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

import codecs
import email.utils
import json
import re
import unicodedata
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urldefrag, urlsplit

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning
from bs4.element import NavigableString

from crawler.model import Link, PageInfo
from crawler.urls import is_http_url, is_same_site, join_url, normalize_url

MAX_HTML_BYTES = 2 * 1024 * 1024
MAX_JSON_LD_SCRIPTS = 20
MAX_JSON_LD_CHARS = 500_000
MAX_JSON_DEPTH = 8
MAX_META_TAGS = 500
MAX_TEXT_CHARS = 300
DEFAULT_MAX_RELATED = 50
DEFAULT_MAX_LINKS_SCANNED = 5000

_SEPARATORS = (" | ", " - ", " – ", " — ", " -- ", " :: ", " · ", " » ", " / ")
_SEPARATOR_CHARS = "|-–—·»/_~"
MAX_SITE_NAME_CHARS = 60
_RELATED_WORDS = (
    r"\brelated|\brelacionad|\bread ?more\b|\bmore on this\b|\bmore from\b|\bsee also\b"
    r"|\byou (may|might) also like\b|\brecommend|\bfurther reading\b|\bmore stories\b"
    r"|\b(also read|read also)\b|\blire aussi\b|\bleia tambem\b|\bahnliche|\bmehr zum thema\b"
    r"|\blesen sie auch\b|\blees ook\b|\blea tambien\b|\bver tambien\b"
)
_RELATED_RE = re.compile(_RELATED_WORDS)
# A leading "[" or "(" allows the Washington Post's "[Read: ...]" interstitial links.
_PARAGRAPH_RE = re.compile(
    r"^[\[(]?\s*(related( \w+)?|read more|see also|also read|read also|read|more|a? ?lire aussi"
    r"|leia tambem|leia mais|lesen sie auch|mehr zum thema|lees ook|lea tambien|ver tambien"
    r"|relacionad\w*)\s*[:：»|–—]"
)
MAX_LABELLED_RUN = 8  # one-link paragraphs a lone "Read more:" paragraph may head
# Site-wide lists (most read, trending, latest news ...) are not about this story, even when
# they sit inside a block marked related (the Telegraph's "News latest" in its related aside).
_SITE_LIST_RE = re.compile(
    r"^(the )?(news )?latest( news| stories| headlines)?$|\bmost (read|popular|viewed|shared"
    r"|watched|emailed|commented)\b|\btrending\b|\btop stories\b|\bmust reads?\b"
    r"|\bmais lidas\b|\bmeistgelesen|\bles plus lus\b|\blo mas leido\b"
)
# Class names that are script hooks or state ("js-outbrain-anchor", "hide-read-more-ad") say
# what is done to an element, not what it is: they must not make a block an ad or navigation.
_MODIFIER_TOKEN_RE = re.compile(r"^(js|is|has|no|hide|hidden|show|with|without)[-_]")
_AD_TOKEN_RE = re.compile(
    r"^(ad|ads|adv|advert\w*|dfp\w*|ad[-_].*|.*[-_]ads?|.*sponsor.*|.*promo.*|.*outbrain.*"
    r"|.*taboola.*|trc_.*|ob[-_].*|.*advertis.*)$"
)
_NAV_TOKEN_RE = re.compile(
    r"^(nav|navbar|navigation|nav[-_].*|.*[-_]nav|.*menu.*|breadcrumbs?|.*share.*|.*social.*"
    r"|.*comment.*|masthead|site[-_]header|site[-_]footer)$"
)
_NAV_TAGS = frozenset({"nav", "header", "footer", "menu"})
_NAV_ROLES = frozenset({"navigation", "banner", "contentinfo", "menu", "menubar"})
_HEADING_TAGS = frozenset({"h2", "h3", "h4", "h5", "strong", "b"})
_TITLE_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_WRAPPER_TAGS = frozenset({"div", "header", "span", "section"})
_BLOCK_TAGS = frozenset({"div", "section", "aside", "ul", "ol", "article", "p", "table", "dl"})
_STOP_TAGS = frozenset({"body", "html", "[document]"})

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
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
_CAMEL_RE = re.compile(r"([a-z])([A-Z])")
_SPACE_RE = re.compile(r"\s+")
_JSON_WRAPPER_RE = re.compile(r"^\s*(<!\[CDATA\[|<!--)|(\]\]>|-->)\s*$")

_RELATED, _NAV, _AD, _LIST = "related", "nav", "ad", "list"


# -- entry point -----------------------------------------------------------------------------


def parse_page(
    html: str | bytes,
    url: str,
    *,
    max_related: int = DEFAULT_MAX_RELATED,
    same_site: bool = True,
    max_links_scanned: int = DEFAULT_MAX_LINKS_SCANNED,
) -> PageInfo:
    """Read a page's metadata and related-story links; never raises, whatever the bytes."""
    text = decode_html(html)
    soup = _make_soup(text)
    if soup is None:
        return PageInfo()
    related = extract_related(
        soup,
        url,
        max_related=max_related,
        same_site=same_site,
        max_links_scanned=max_links_scanned,
        source=text,
    )
    return PageInfo(
        title=extract_title(soup),
        heading=extract_heading(soup),
        canonical_url=extract_canonical(soup, url),
        published=extract_published(soup) or url_date(url),
        language=extract_language(soup),
        related=tuple(related),
    )


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
    match = _CHARSET_RE.search(data[:4096])
    declared = match.group(1).decode("ascii", "replace").lower() if match else None
    return [enc for enc in (declared, "utf-8") if enc]


def _make_soup(text: str) -> BeautifulSoup | None:
    """Parse with lxml; None if even lxml gives up."""
    # NUL and other C0 controls break nothing in browsers but can upset libxml2.
    cleaned = text.translate(_CONTROL_CHARS)
    try:
        with warnings.catch_warnings():
            # A body that looks like a URL or like XML is still what we were given to parse.
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            return BeautifulSoup(cleaned, "lxml")
    except (ValueError, TypeError, AssertionError, RecursionError):
        return None


_CONTROL_CHARS = {c: None for c in range(32) if chr(c) not in "\t\n\r"}


# -- metadata --------------------------------------------------------------------------------


def extract_title(soup: Tag) -> str | None:
    """The article headline: JSON-LD headline, og:title, twitter:title or <title>, site name cut."""
    meta = _meta(soup)
    head = _title_tag(soup)
    candidates = [
        _headline(_json_ld_objects(soup)),
        meta.get("og:title"),
        meta.get("twitter:title"),
        head,
    ]
    title = next((c for c in candidates if c), None)
    if title is None:
        return extract_heading(soup)
    confirmations = [c for c in (*candidates, extract_heading(soup)) if c and c != title]
    return _trim_site_name(title, confirmations, meta.get("og:site_name"))


def _trim_site_name(title: str, others: list[str], site_name: str | None) -> str:
    """Cut a " - Site" suffix when another title source or og:site_name confirms it."""
    for other in sorted(others, key=len, reverse=True):
        rest = title[len(other) :].strip() if title.startswith(other) else ""
        if rest and rest[0] in _SEPARATOR_CHARS and len(rest) <= MAX_SITE_NAME_CHARS:
            return other
    for sep in _SEPARATORS:
        head, _, tail = title.rpartition(sep)
        if head and site_name and tail.strip().lower() == site_name.strip().lower():
            return head.strip()
    return title


def _title_tag(soup: Tag) -> str | None:
    """The text of the first <title> (outside inline SVG)."""
    for tag in soup.find_all("title", limit=5):
        if tag.find_parent("svg") is None:
            return _clean_text(tag.get_text()) or None
    return None


def extract_heading(soup: Tag) -> str | None:
    """The text of the first <h1>, whitespace collapsed."""
    h1 = soup.find("h1")
    return (_clean_text(h1.get_text(" ")) or None) if isinstance(h1, Tag) else None


def extract_canonical(soup: Tag, url: str) -> str | None:
    """`<link rel=canonical>` resolved against the page URL, else og:url."""
    for link in soup.find_all("link", href=True, limit=200):
        if "canonical" in _tokens(link, "rel"):
            resolved = _absolute(url, _attr(link, "href"))
            if resolved:
                return resolved
    og_url = _meta(soup).get("og:url")
    return _absolute(url, og_url) if og_url else None


def extract_language(soup: Tag) -> str | None:
    """The page language from <html lang>, else og:locale."""
    html = soup.find("html")
    lang = _attr(html, "lang").strip() if isinstance(html, Tag) else ""
    return lang or _meta(soup).get("og:locale") or None


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
MAX_DATE_ELEMENTS = 30


def extract_published(soup: Tag) -> str | None:
    """Publication date as ISO 8601: meta tags, JSON-LD, microdata, <time>, dated bylines."""
    meta = _meta(soup)
    for name in _DATE_META:
        found = parse_date(meta.get(name))
        if found:
            return found
    found = parse_date(_json_ld_date(_json_ld_objects(soup)))
    for name in _WEAK_DATE_META:
        found = found or parse_date(meta.get(name))
    return found or _time_element_date(soup) or _byline_date(soup)


def _time_element_date(soup: Tag) -> str | None:
    """A date from itemprop=datePublished or a <time datetime> in the article."""
    for tag in soup.find_all(attrs={"itemprop": "datePublished"}, limit=5):
        found = parse_date(_attr(tag, "content") or _attr(tag, "datetime") or tag.get_text())
        if found:
            return found
    article = soup.find("article")
    scope = article if isinstance(article, Tag) else soup
    for tag in scope.find_all("time", limit=20):
        found = parse_date(_attr(tag, "datetime") or tag.get_text())
        if found:
            return found
    return None


def _byline_date(soup: Tag) -> str | None:
    """A date shown in an element whose class or id says date, time, byline, author..."""
    for tag in soup.find_all(_is_date_element, limit=MAX_DATE_ELEMENTS):
        found = parse_date(_attr(tag, "title")) or parse_date(_leading_text(tag, 120))
        if found:
            return found
    return None


def _is_date_element(tag: Tag) -> bool:
    """True for a body element whose class or id names a date, time or byline."""
    if tag.name in ("script", "style", "meta", "link", "html", "body"):
        return False
    label = _attr(tag, "class") + " " + _attr(tag, "id")
    return bool(_DATE_CLASS_RE.search(label))


def _meta(soup: Tag) -> dict[str, str]:
    """Meta tags as {lower-cased property/name/itemprop: first non-empty content}."""
    found: dict[str, str] = {}
    for tag in soup.find_all("meta", limit=MAX_META_TAGS):
        key = (_attr(tag, "property") or _attr(tag, "name") or _attr(tag, "itemprop")).lower()
        value = _clean_text(_attr(tag, "content"))
        if key and value and key not in found:
            found[key] = value
    return found


# -- dates -----------------------------------------------------------------------------------

_ISO_DATE_RE = re.compile(
    r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?)?(?:\D|$)")
_SLASH_DATE_RE = re.compile(r"(?<!\d)(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?!\d)")
_DMY_DATE_RE = re.compile(r"(?<!\d)(\d{1,2})[./](\d{1,2})[./](\d{4})(?!\d)")
_MONTH_ABBREVIATIONS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_MONTHS = {name: number for number, name in enumerate(_MONTH_ABBREVIATIONS, start=1)}
_MONTH_NAME = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_MDY_TEXT_RE = re.compile(_MONTH_NAME + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.IGNORECASE)
_DMY_TEXT_RE = re.compile(r"(\d{1,2})\.?\s+" + _MONTH_NAME + r",?\s+(\d{4})", re.IGNORECASE)
_URL_DATE_RE = re.compile(
    r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$|\D)|/((?:19|20)\d{2})(\d{2})(\d{2})/"
)
MIN_YEAR, MAX_YEAR = 1990, 2100


def parse_date(text: str | None) -> str | None:
    """A date or date-time in common web formats as ISO 8601 ("2019-01-03" or with time)."""
    if not text or len(text) > 200:
        return None
    text = text.strip()
    for parser in (_parse_iso, _parse_compact, _parse_rfc2822, _parse_numeric, _parse_month_name):
        found = parser(text)
        if found:
            return found
    return None


def url_date(url: str) -> str | None:
    """A full date written in a URL path (/2019/01/03/, /2019-01-03-, /20190103/)."""
    match = _URL_DATE_RE.search(_path_of(url))
    if match is None:
        return None
    year, month, day = (g for g in match.groups() if g is not None)
    return _iso_day(int(year), int(month), int(day))


def _parse_iso(text: str) -> str | None:
    """ISO 8601 / RFC 3339 and the "2017-11-03 03:01:00.000000" database form."""
    match = _ISO_DATE_RE.search(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    if hour is None:
        return _iso_day(int(year), int(month), int(day))
    return _iso_time((year, month, day, hour, minute, second or "0"), zone)


def _parse_compact(text: str) -> str | None:
    """Compact dates: 20170113 or 20170113000004 (the nytimes `ptime` meta)."""
    match = _COMPACT_DATE_RE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    if hour is None:
        return _iso_day(int(year), int(month), int(day))
    return _iso_time((year, month, day, hour, minute, second or "0"), None)


def _parse_rfc2822(text: str) -> str | None:
    """RFC 2822 dates as in feeds and HTTP headers: Thu, 02 Nov 2023 10:00:00 GMT."""
    if "," not in text[:5]:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.isoformat() if MIN_YEAR <= parsed.year <= MAX_YEAR else None


def _parse_numeric(text: str) -> str | None:
    """Numeric dates: 2019/01/03, and 03.01.2019 when dots or a day > 12 settle the order."""
    match = _SLASH_DATE_RE.search(text)
    if match:
        return _iso_day(int(match[1]), int(match[2]), int(match[3]))
    match = _DMY_DATE_RE.search(text)
    if match is None:
        return None
    first, second, year = int(match[1]), int(match[2]), int(match[3])
    # Dots are European day.month.year; a slash is read as month/day only when day > 12.
    if "." in match[0] or first > 12:
        return _iso_day(year, second, first)
    return _iso_day(year, first, second) if second > 12 else None


def _parse_month_name(text: str) -> str | None:
    """English month names: November 2, 2023 / Nov. 2nd 2023 / 2 November 2023."""
    match = _MDY_TEXT_RE.search(text)
    if match:
        return _iso_day(int(match[3]), _MONTHS[match[1].lower()], int(match[2]))
    match = _DMY_TEXT_RE.search(text)
    if match:
        return _iso_day(int(match[3]), _MONTHS[match[2].lower()], int(match[1]))
    return None


def _iso_day(year: int, month: int, day: int) -> str | None:
    """The day as YYYY-MM-DD if it is a real day in the plausible range."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _iso_time(fields: tuple[str, ...], zone: str | None) -> str | None:
    """A date-time as ISO 8601, with its UTC offset when the source gave one."""
    day = _iso_day(int(fields[0]), int(fields[1]), int(fields[2]))
    if day is None:
        return None
    year, month, dom, hour, minute, second = (int(f) for f in fields)
    try:
        moment = datetime(year, month, dom, hour, minute, second, tzinfo=_zone(zone))
    except ValueError:
        return day
    return moment.isoformat()


def _zone(zone: str | None) -> timezone | None:
    """A zone written Z, +01:00, +0100 or -08 as a fixed offset; None when absent."""
    if not zone:
        return None
    if zone == "Z":
        return UTC
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    if minutes >= 24 * 60:
        return None
    return timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))


# -- JSON-LD ---------------------------------------------------------------------------------


def _json_ld_objects(soup: Tag) -> list[dict[str, Any]]:
    """Every JSON object in the page's JSON-LD scripts, @graph and nesting flattened."""
    objects: list[dict[str, Any]] = []
    for script in soup.find_all("script", limit=MAX_JSON_LD_SCRIPTS * 10):
        if _is_json_ld(script):
            objects.extend(_walk_json(_load_json(script.get_text())))
        if len(objects) > 1000:
            break
    return objects


def _is_json_ld(script: Tag) -> bool:
    """True for <script type="application/ld+json">."""
    return _attr(script, "type").strip().lower() == "application/ld+json"


def _load_json(text: str) -> Any:
    """Parsed JSON, or None when it is too big or not JSON."""
    if len(text) > MAX_JSON_LD_CHARS:
        return None
    try:
        # Some CMSs wrap the script in <![CDATA[ ]]> or <!-- -->, as Readability also allows.
        return json.loads(_JSON_WRAPPER_RE.sub("", text))
    except (ValueError, RecursionError):
        return None


def _walk_json(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
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
        yield from _walk_json(child, depth + 1)


def _headline(objects: list[dict[str, Any]]) -> str | None:
    """The `headline` of the page's article object, else the first one found."""
    value = _json_ld_string(objects, "headline")
    return _clean_text(value) or None


def _json_ld_date(objects: list[dict[str, Any]]) -> str | None:
    """The `datePublished` (else `dateCreated`) of the article object, else of any object."""
    return _json_ld_string(objects, "datePublished") or _json_ld_string(objects, "dateCreated")


def _json_ld_string(objects: list[dict[str, Any]], key: str) -> str | None:
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


def _json_ld_related(script: Tag) -> list[str]:
    """The `relatedLink` URLs of one JSON-LD script (string, list, or objects with url/@id)."""
    urls: list[str] = []
    for obj in _walk_json(_load_json(script.get_text())):
        value = obj.get("relatedLink")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                item = item.get("url") or item.get("@id")
            if isinstance(item, str):
                urls.append(item)
    return urls


# -- related links ---------------------------------------------------------------------------


def extract_related(
    soup: Tag,
    url: str,
    *,
    max_related: int = DEFAULT_MAX_RELATED,
    same_site: bool = True,
    max_links_scanned: int = DEFAULT_MAX_LINKS_SCANNED,
    source: str | None = None,
) -> list[Link]:
    """Related-story links in page order: absolute, fragment-free, deduplicated, capped."""
    picker = _Picker(url, max_related, same_site, source)
    for tag in soup.find_all(("a", "link", "script"), limit=max_links_scanned):
        if picker.full:
            break
        for href, text, origin in _related_candidates(tag, picker.kinds):
            picker.offer(href, text, origin)
    return picker.links


def _related_candidates(tag: Tag, kinds: _Kinds) -> list[tuple[str, str | None, str]]:
    """(href, text, origin) for each related link this one element declares."""
    if tag.name == "script":
        if not _is_json_ld(tag):
            return []
        return [(href, None, "json-ld") for href in _json_ld_related(tag)]
    href = _attr(tag, "href")
    if not href:
        return []
    if tag.name == "link":
        return [(href, None, "rel-related")] if "related" in _tokens(tag, "rel") else []
    origin = _anchor_origin(tag, kinds)
    return [(href, _anchor_text(tag), origin)] if origin else []


def _anchor_origin(anchor: Tag, kinds: _Kinds) -> str | None:
    """Why an <a> is a related story ("rel-related", ...), or None if it is not one."""
    kind = kinds.resolve(anchor)
    if kind == _AD:
        return None
    if "related" in _tokens(anchor, "rel"):
        return "rel-related"
    if kinds.in_related_paragraph(anchor):
        return "related-paragraph"
    return "related-block" if kind == _RELATED and not _is_block_title(anchor) else None


def _is_block_title(anchor: Tag) -> bool:
    """True for a link in the heading that opens a related block: it names the block
    ("More from <a>US & Canada</a>", BBC) and points at a section, not at a story."""
    heading = anchor.find_parent(_TITLE_TAGS)
    if heading is None:
        return False
    container = heading.parent
    for _ in range(3):  # the heading sits at most two wrappers below its block
        if not isinstance(container, Tag) or container.name in _STOP_TAGS:
            return False
        if _own_kind(container) == _RELATED:
            return _leading_heading_tag(container) is heading
        container = container.parent
    return False


class _Kinds:
    """Memoised "what kind of container is this element in" (related, nav, ad or None)."""

    def __init__(self) -> None:
        self._resolved: dict[int, str | None] = {}
        self._paragraphs: dict[int, bool] = {}

    def resolve(self, tag: Tag) -> str | None:
        """The kind that governs `tag`: an ad anywhere above wins, else the nearest kind."""
        chain: list[Tag] = []
        node: Tag | None = tag
        while node is not None and node.name not in _STOP_TAGS and id(node) not in self._resolved:
            chain.append(node)
            node = node.parent
        above = self._resolved.get(id(node)) if node is not None else None
        for element in reversed(chain):
            own = _own_kind(element)
            above = _AD if _AD in (above, own) else (own or above)
            self._resolved[id(element)] = above
        return above

    def in_related_paragraph(self, anchor: Tag) -> bool:
        """True if the nearest <p> or <li> around `anchor` starts "Related:", "Read more:"..."""
        block = anchor.find_parent(("p", "li"))
        if block is None:
            return False
        key = id(block)
        if key not in self._paragraphs:
            self._paragraphs[key] = _is_related_paragraph(block)
        return self._paragraphs[key]


def _is_related_paragraph(block: Tag) -> bool:
    """True if a <p>/<li> starts "Related:", or is one of a run of one-link paragraphs that a
    lone "Read more:" paragraph heads (the Washington Post's layout)."""
    if _PARAGRAPH_RE.match(_fold(_leading_text(block, 60))):
        return True
    if not _is_link_only(block):
        return False
    for sibling in block.find_previous_siblings(block.name, limit=MAX_LABELLED_RUN):
        if not isinstance(sibling, Tag):
            continue
        text = _fold(_leading_text(sibling, 60))
        label = _PARAGRAPH_RE.match(text)
        if label is not None:
            return not text[label.end() :].strip()
        if text and not _is_link_only(sibling):
            return False
    return False


def _is_link_only(block: Tag) -> bool:
    """True if all the text of an element is the text of its one link."""
    anchors = block.find_all("a", limit=2)
    if len(anchors) != 1:
        return False
    return _clean_text(block.get_text(" ")) == _clean_text(anchors[0].get_text(" "))


def _own_kind(tag: Tag) -> str | None:
    """What this element alone says it is: an ad slot, navigation, a site-wide list, a related
    block or nothing."""
    # A BEM modifier ("fc-item--is-commentable") styles its block; the block name says what it is.
    tokens = [t.lower().split("--", 1)[0] for t in (*_tokens(tag, "class"), *_tokens(tag, "id"))]
    tokens = [t for t in tokens if t and not _MODIFIER_TOKEN_RE.match(t)]
    if any(_AD_TOKEN_RE.match(t) for t in tokens):
        return _AD
    if tag.name in _NAV_TAGS or _attr(tag, "role").lower() in _NAV_ROLES:
        return _NAV
    if any(_NAV_TOKEN_RE.match(t) for t in tokens):
        return _NAV
    labels = _labels(tag)
    if any(_SITE_LIST_RE.search(label) for label in labels):
        return _LIST
    if any(_RELATED_RE.search(label) for label in labels):
        return _RELATED
    return None


def _labels(tag: Tag) -> list[str]:
    """What names a block, folded: class, id, aria-label, data-* and its (leading) heading."""
    raw = [*_tokens(tag, "class"), *_tokens(tag, "id"), _attr(tag, "aria-label")]
    for name, value in tag.attrs.items():
        if name.startswith("data-"):
            raw.extend((name[5:], value[:100] if isinstance(value, str) else ""))
    if tag.name in _BLOCK_TAGS:
        raw.append(_leading_heading(tag) or _previous_heading(tag) or "")
    return [_fold(label) for label in raw if label]


def _leading_heading(tag: Tag) -> str | None:
    """The text of a heading that opens `tag` (looking through up to two wrapper levels)."""
    heading = _leading_heading_tag(tag)
    return _leading_text(heading, 80) if heading is not None else None


def _leading_heading_tag(tag: Tag, depth: int = 0) -> Tag | None:
    """The heading element that opens `tag`, through up to two wrapper levels."""
    first = _first_child_element(tag)
    if first is None:
        return None
    if first.name in _HEADING_TAGS:
        return first
    if first.name in _WRAPPER_TAGS and depth < 2:
        return _leading_heading_tag(first, depth + 1)
    return None


def _previous_heading(tag: Tag) -> str | None:
    """The text of an <h2>..<h4> right before `tag`, as in `<h2>Related</h2><ul>...`."""
    sibling = tag.find_previous_sibling()
    if isinstance(sibling, Tag) and sibling.name in ("h2", "h3", "h4"):
        return _leading_text(sibling, 80)
    return None


def _first_child_element(tag: Tag) -> Tag | None:
    """The first child element, skipping whitespace and comments; None if text comes first."""
    for child in tag.children:
        if isinstance(child, Tag):
            return child
        if isinstance(child, NavigableString) and type(child) is NavigableString and child.strip():
            return None
    return None


class _Picker:
    """Filters, resolves and deduplicates candidate links; stops at `max_related`."""

    def __init__(self, url: str, limit: int, same_site: bool, source: str | None) -> None:
        self.url = url
        self.limit = limit
        self.same_site = same_site
        self.kinds = _Kinds()
        self.links: list[Link] = []
        self._seen = {normalize_url(url)}
        self._lines = _LineFinder(source)

    @property
    def full(self) -> bool:
        """True once `limit` links were kept."""
        return len(self.links) >= self.limit

    def offer(self, href: str, text: str | None, origin: str) -> None:
        """Keep `href` if it is a related story not seen before."""
        if self.full or _is_share_or_comment(href):
            return
        resolved = _absolute(self.url, href)
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
        self.links.append(Link(resolved, self._lines.line_of(href), text, href, origin))


class _LineFinder:
    """Best-effort line numbers: lxml gives none, so find each href after the previous one."""

    def __init__(self, source: str | None) -> None:
        self._source = source or ""
        self._pos = 0
        self._line = 1

    def line_of(self, href: str) -> int | None:
        """The line of the next occurrence of `href` in the source, or None if not found."""
        found = self._source.find(href, self._pos) if href else -1
        if found < 0:
            return None
        self._line += self._source.count("\n", self._pos, found)
        self._pos = found
        return self._line


def looks_like_story(url: str) -> bool:
    """True if a URL looks like one story, not a section: a dated path, a slug or a long id."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if _MEDIA_PATH_RE.search(parts.path):
        return False
    if _URL_DATE_RE.search(parts.path):
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


def _absolute(base: str, href: str) -> str | None:
    """`href` resolved against `base`, without fragment; None unless it is http(s)."""
    joined = join_url(base, href)
    if joined is None:
        return None
    url = urldefrag(joined)[0]
    return url if is_http_url(url) else None


def _path_of(url: str) -> str:
    """The path of a URL, "" when it cannot be split (a bad IPv6 host, say)."""
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def _anchor_text(anchor: Tag) -> str | None:
    """Visible text of a link (or its title / image alt), whitespace collapsed and capped."""
    text = _clean_text(_leading_text(anchor, MAX_TEXT_CHARS))
    if not text:
        text = _clean_text(_attr(anchor, "title"))
    if not text:
        img = anchor.find("img")
        text = _clean_text(_attr(img, "alt")) if isinstance(img, Tag) else ""
    return text or None


def _leading_text(tag: Tag, limit: int) -> str:
    """The first `limit` characters of an element's text, without reading all of it."""
    parts: list[str] = []
    size = 0
    for piece in tag.stripped_strings:
        parts.append(piece)
        size += len(piece) + 1
        if size >= limit:
            break
    return " ".join(parts)[:limit]


def _attr(tag: Tag | Any, name: str) -> str:
    """An attribute as one string ("" when absent); multi-valued ones are space-joined."""
    if not isinstance(tag, Tag):
        return ""
    value = tag.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _tokens(tag: Tag, name: str) -> list[str]:
    """An attribute split on whitespace, lower-cased for rel, kept as written otherwise."""
    tokens = _attr(tag, name).split()
    return [t.lower() for t in tokens] if name == "rel" else tokens


def _fold(text: str) -> str:
    """Lower-case, accent-free, camelCase and -_ split: "relatedArticles" -> "related articles"."""
    spaced = _CAMEL_RE.sub(r"\1 \2", text).replace("-", " ").replace("_", " ")
    decomposed = unicodedata.normalize("NFKD", spaced.lower())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE_RE.sub(" ", bare).strip()


def _clean_text(text: str | None) -> str:
    """Whitespace collapsed and stripped."""
    return _SPACE_RE.sub(" ", text).strip() if text else ""
