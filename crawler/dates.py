"""Pure: dates as news pages write them -> ISO 8601 strings.

`parse_date` reads one attribute or text snippet (meta content, JSON-LD `datePublished`, a
`<time>` or a byline); `url_date` reads a date written in a URL path. Both return None rather
than guess: a day and month that cannot be told apart, an impossible day or a year outside
`MIN_YEAR`..`MAX_YEAR` give no date.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import urlsplit

MIN_YEAR, MAX_YEAR = 1990, 2100
MAX_DATE_TEXT_CHARS = 200

_ISO_DATE_RE = re.compile(
    r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?)?(?:\D|$)")
_SLASH_DATE_RE = re.compile(r"(?<!\d)(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?!\d)")
_DMY_DATE_RE = re.compile(r"(?<!\d)(\d{1,2})[./](\d{1,2})[./](\d{4})(?!\d)")
_MONTH_ABBREVIATIONS = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
_MONTHS = {name: number for number, name in enumerate(_MONTH_ABBREVIATIONS, start=1)}
_MONTH_NAME = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_MDY_TEXT_RE = re.compile(_MONTH_NAME + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.IGNORECASE)
_DMY_TEXT_RE = re.compile(r"(\d{1,2})\.?\s+" + _MONTH_NAME + r",?\s+(\d{4})", re.IGNORECASE)
URL_DATE_RE = re.compile(
    r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$|\D)|/((?:19|20)\d{2})(\d{2})(\d{2})/"
)


def parse_date(text: str | None) -> str | None:
    """A date or date-time in common web formats as ISO 8601 ("2019-01-03" or with time)."""
    if not text or len(text) > MAX_DATE_TEXT_CHARS:
        return None
    text = text.strip()
    for parser in (_parse_iso, _parse_compact, _parse_rfc2822, _parse_numeric, _parse_month_name):
        found = parser(text)
        if found:
            return found
    return None


def url_date(url: str) -> str | None:
    """A full date written in a URL path (/2019/01/03/, /2019-01-03-, /20190103/)."""
    try:
        path = urlsplit(url).path
    except ValueError:  # a bad IPv6 host, say
        return None
    match = URL_DATE_RE.search(path)
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
