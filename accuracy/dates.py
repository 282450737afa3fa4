"""Publication dates: the crawler's hand-written extractor against htmldate and extruct.

htmldate and extruct are optional: when one is not installed its rows say so. Each extractor
reads the same bytes with the page's original URL; a hit is the same day as the truth.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from accuracy.corpus import Page
from accuracy.table import Figure, ratio
from crawler.related import decode_html, parse_date, parse_page

Extractor = Callable[[bytes, str], str | None]


@dataclass(frozen=True, slots=True)
class DateRun:
    """One extractor over the dated pages: hits, total, seconds, and import time."""

    name: str
    hits: int
    total: int
    seconds: float
    import_seconds: float | None
    misses: tuple[tuple[str, str, str], ...]


def crawler_date(html: bytes, url: str) -> str | None:
    """The crawler's own answer (meta, JSON-LD, <time>, byline, then the URL)."""
    return parse_page(html, url).published


def htmldate_date(html: bytes, url: str) -> str | None:
    """htmldate's answer for the original publication date."""
    htmldate = importlib.import_module("htmldate")  # optional: not a crawler dependency
    found = htmldate.find_date(decode_html(html), url=url, original_date=True)
    return found if isinstance(found, str) else None


def extruct_date(html: bytes, url: str) -> str | None:
    """The first JSON-LD `datePublished` extruct finds (JSON-LD only, no fallback)."""
    extruct = importlib.import_module("extruct")  # optional: not a crawler dependency
    try:
        data = extruct.extract(decode_html(html), base_url=url, syntaxes=["json-ld"], uniform=True)
    except Exception:  # extruct raises whatever its parsers raise on odd pages
        return None
    for item in _walk(data.get("json-ld", [])):
        value = item.get("datePublished")
        found = parse_date(value if isinstance(value, str) else None)
        if found:
            return found
    return None


def _walk(value: object) -> list[dict[str, object]]:
    """Every dict in a JSON value (for @graph and nested objects)."""
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _walk(v))]
    if isinstance(value, list):
        return [d for v in value for d in _walk(v)]
    return []


def crawler_then_htmldate(html: bytes, url: str) -> str | None:
    """The crawler's answer, htmldate's when the crawler finds none."""
    return crawler_date(html, url) or htmldate_date(html, url)


EXTRACTORS: dict[str, tuple[Extractor, str | None]] = {
    "hand-written (crawler.related)": (crawler_date, None),
    "htmldate 1.x find_date(original_date=True)": (htmldate_date, "htmldate"),
    "extruct JSON-LD datePublished": (extruct_date, "extruct"),
    "hand-written, htmldate when it finds none": (crawler_then_htmldate, "htmldate"),
}


def import_seconds(module: str) -> float:
    """Cold import time of a module, measured in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def run_extractor(name: str, pages: list[Page]) -> DateRun | None:
    """Score one extractor on pages with a known date; None when its library is missing."""
    extractor, module = EXTRACTORS[name]
    if module is not None and importlib.util.find_spec(module) is None:
        return None
    loaded = import_seconds(module) if module else None
    misses, started = [], time.perf_counter()
    for page in pages:
        got = extractor(page.path.read_bytes(), page.url or "")
        if (got or "")[:10] != page.date:
            misses.append((page.key, page.date or "", got or "-"))
    elapsed = time.perf_counter() - started
    return DateRun(name, len(pages) - len(misses), len(pages), elapsed, loaded, tuple(misses))


def date_runs(pages: list[Page]) -> list[DateRun | str]:
    """Every extractor on the htmldate subset; a string for each one not installed."""
    dated = [p for p in pages if p.key.startswith("htmldate/") and p.date]
    runs: list[DateRun | str] = []
    for name in EXTRACTORS:
        run = run_extractor(name, dated)
        runs.append(run if run is not None else f"{name}: not installed")
    return runs


def date_figures(runs: list[DateRun | str]) -> list[Figure]:
    """One informational row per extractor (the crawled figure carries the target)."""
    return [
        ratio(f"dates: {run.name}", "-", run.hits, run.total, None)
        for run in runs
        if isinstance(run, DateRun)
    ]
