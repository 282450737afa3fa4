"""Crawl the served corpus pages with the real crawler and score what the snapshot says.

The article is a generated HTML list of the local URLs; `run_crawl` fetches each one as a
reference. Depth 1 with no related stories followed makes every page a GET whose body is parsed
(depth 0 would HEAD URLs that do not look like pages, such as `.php`), without wandering off.
"""

from __future__ import annotations

import html
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from accuracy.corpus import Page
from accuracy.site import Served, lookup_key, plan_paths, serve
from accuracy.table import Figure, ratio
from crawler.config import Settings, load_settings
from crawler.crawl import run_crawl
from crawler.model import Node, Relation, Verdict

TITLE_TARGET, DATE_TARGET, CANONICAL_TARGET = 0.95, 0.85, 0.98


@dataclass(frozen=True, slots=True)
class Observed:
    """What the crawl recorded for one corpus page."""

    page: Page
    verdict: Verdict
    reason: str | None
    title: str | None
    published: str | None
    canonical: str | None  # mapped back to the page's original host when it was resolved locally


def crawl_settings(data_dir: Path) -> Settings:
    """Loopback crawl settings: private addresses allowed, no related stories, no robots."""
    return load_settings(
        None,
        environ={"CRAWLER_CONFIG": ""},
        overrides={
            "fetch": {"allow_private_networks": True, "retries": 1, "url_timeout": 30.0},
            "crawl": {"depth": 1, "max_related_per_page": 0, "respect_robots": False},
            "store": {"data_dir": str(data_dir)},
        },
    )


def article_html(base_url: str, served: list[Served]) -> str:
    """An HTML article that cites every served page once."""
    items = "\n".join(
        f'<li><a href="{html.escape(base_url + s.path)}">{html.escape(s.page.key)}</a></li>'
        for s in served
    )
    return (
        f"<html><head><title>accuracy corpus</title></head><body><ul>\n{items}\n</ul></body></html>"
    )


async def crawl_pages(pages: list[Page]) -> list[Observed]:
    """Serve the pages on 127.0.0.1, crawl them with `run_crawl`, read the snapshot back."""
    served = plan_paths(pages)
    with tempfile.TemporaryDirectory(prefix="accuracy-") as tmp:
        article = Path(tmp) / "article.html"
        async with serve(served) as base_url:
            article.write_text(article_html(base_url, served), encoding="utf-8")
            snapshot = await run_crawl(str(article), crawl_settings(Path(tmp) / "data"))
    by_key = {lookup_key(s.path): s for s in served}
    observed = {}
    for node in snapshot.root.walk():
        if node.relation is Relation.REFERENCE:
            hit = by_key.get(lookup_key(_path_qs(node.url)))
            if hit is not None:
                observed[hit.page.key] = _observe(hit, node, base_url)
    return [observed[p.key] for p in pages if p.key in observed]


def _path_qs(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _observe(served: Served, node: Node, base_url: str) -> Observed:
    canonical = node.canonical_url
    if canonical and served.origin and canonical.startswith(base_url):
        # Resolved against the local URL: resolve it against the real host instead.
        canonical = served.origin + canonical[len(base_url) :]
    return Observed(served.page, node.verdict, node.reason, node.title, node.published, canonical)


def _ws(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def title_misses(observed: list[Observed], source: str) -> list[tuple[str, str, str]]:
    """(page, expected, got) for each page of `source` whose title differs."""
    return [
        (o.page.key, _ws(o.page.title), _ws(o.title))
        for o in observed
        if o.page.title_source == source and _ws(o.title) != _ws(o.page.title)
    ]


def date_misses(observed: list[Observed], prefix: str) -> list[tuple[str, str, str]]:
    """(page, expected day, got) for dated pages under `prefix` whose day differs."""
    return [
        (o.page.key, o.page.date or "", o.published or "-")
        for o in observed
        if o.page.key.startswith(prefix) and o.page.date and (o.published or "")[:10] != o.page.date
    ]


def canonical_misses(observed: list[Observed]) -> list[tuple[str, str, str]]:
    """(page, declared, got) for each checked page whose canonical differs."""
    return [
        (o.page.key, o.page.canonical or "-", o.canonical or "-")
        for o in observed
        if o.page.canonical_checked and o.canonical != o.page.canonical
    ]


def not_ok(observed: list[Observed]) -> list[tuple[str, str, str]]:
    """(page, verdict, reason) for each real page that did not come out ok."""
    return [
        (o.page.key, o.verdict.value, o.reason or "")
        for o in observed
        if o.verdict is not Verdict.OK
    ]


def crawl_figures(pages: list[Page], observed: list[Observed]) -> list[Figure]:
    """Title, date, canonical and soft-404 figures from one crawl of the corpus."""

    def count(source: str) -> int:
        return sum(1 for p in pages if p.title_source == source)

    def dated(prefix: str) -> int:
        return sum(1 for p in pages if p.key.startswith(prefix) and p.date)

    readability, newspaper = count("readability"), count("newspaper4k")
    htmldate, np_dated = dated("htmldate/"), dated("newspaper4k/")
    checked = sum(1 for p in pages if p.canonical_checked)
    soft = sum(1 for o in observed if o.verdict is Verdict.SOFT404)
    ok = sum(1 for o in observed if o.verdict is Verdict.OK)
    return [
        ratio("crawled: title exact (readability)", ">= 95%",
              readability - len(title_misses(observed, "readability")), readability, TITLE_TARGET),
        ratio("crawled: title exact (newspaper4k)", "-",
              newspaper - len(title_misses(observed, "newspaper4k")), newspaper, None),
        ratio("crawled: date same day (htmldate subset)", ">= 85%",
              htmldate - len(date_misses(observed, "htmldate/")), htmldate, DATE_TARGET),
        ratio("crawled: date same day (newspaper4k)", "-",
              np_dated - len(date_misses(observed, "newspaper4k/")), np_dated, None),
        ratio("crawled: canonical = declared", ">= 98%",
              checked - len(canonical_misses(observed)), checked, CANONICAL_TARGET),
        ratio("crawled: real pages not soft404", "100%", len(pages) - soft, len(pages), 1.0),
        ratio("crawled: real pages ok", "100%", ok, len(pages), 1.0),
    ]  # fmt: skip
