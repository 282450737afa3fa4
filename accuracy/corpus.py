"""Read ../shared/corpus/c_news_pages: each page, its original URL and what is expected of it.

See ../shared/corpus/FORMAT.md. Readability pages have no URL of their own: the URL they declare
(og:url, else rel=canonical, from DERIVED_link_meta_observed.tsv) stands in for it. Newspaper4k
metadata gives `url`, `canonical_link`, `title` and `publish_date`; htmldate's SUBSET_index maps
each page URL to its hand-checked publication day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
NEWS = "c_news_pages"

# Where an oracle disagrees with the markup, the markup wins; each correction says why.
CANONICAL_CORRECTIONS = {
    # The page declares <link rel="canonical" href="8003098">: RFC 3986 §5.2 resolves that
    # against the page's path, as browsers do; newspaper4k's baseline joined it to the host.
    "newspaper4k/cleveland.com1": "http://www.cleveland.com/food/index.ssf/2014/12/8003098",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One real page and what the corpus expects the crawler to read from it."""

    key: str  # "readability/bbc-1", "newspaper4k/cnn_001", "htmldate/pages/x.html"
    path: Path
    url: str | None  # the page's original URL, when known
    title: str | None = None  # expected title (readability, newspaper4k)
    date: str | None = None  # expected publication day, YYYY-MM-DD
    canonical: str | None = None  # the canonical the page declares
    canonical_checked: bool = False  # True when `canonical` is an expectation (None included)
    title_source: str = ""  # which oracle the title comes from


def corpus_present(root: Path = CORPUS) -> bool:
    """True when the news-page part of the corpus is there."""
    return (root / NEWS).is_dir()


def load_pages(root: Path = CORPUS) -> list[Page]:
    """Every page of the three news-page sets, readability first."""
    base = root / NEWS
    return [*readability_pages(base), *newspaper_pages(base), *htmldate_pages(base)]


def _observed(base: Path) -> dict[str, tuple[str | None, str | None]]:
    """page -> (rel=canonical, og:url) as DERIVED_link_meta_observed.tsv lists them."""
    rows: dict[str, tuple[str | None, str | None]] = {}
    text = (base / "readability" / "DERIVED_link_meta_observed.tsv").read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:
        page, canonical, og_url, _ = line.split("\t")
        rows[page] = (None if canonical == "-" else canonical, None if og_url == "-" else og_url)
    return rows


def readability_pages(base: Path) -> list[Page]:
    """Mozilla Readability's test pages: title oracle, declared canonical."""
    observed = _observed(base)
    pages = []
    for folder in sorted((base / "readability").iterdir()):
        if not (folder / "source.html").is_file():
            continue
        expected = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        canonical, og_url = observed[folder.name]
        pages.append(
            Page(
                key=f"readability/{folder.name}",
                path=folder / "source.html",
                url=og_url or canonical,
                title=expected.get("title"),
                canonical=canonical or og_url,
                canonical_checked=True,
                title_source="readability",
            )
        )
    return pages


def newspaper_pages(base: Path) -> list[Page]:
    """newspaper4k's regression pages: url, canonical_link, title, publish_date."""
    folder = base / "newspaper4k"
    pages = []
    for meta_path in sorted((folder / "metadata").glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        url = meta.get("url") or None
        published = meta.get("publish_date")
        key = f"newspaper4k/{meta_path.stem}"
        pages.append(
            Page(
                key=key,
                path=folder / "html" / f"{meta_path.stem}.html",
                url=url,
                title=meta.get("title"),
                date=str(published)[:10] if published else None,
                canonical=CANONICAL_CORRECTIONS.get(key, meta.get("canonical_link") or None),
                canonical_checked=url is not None,
                title_source="newspaper4k",
            )
        )
    return pages


def htmldate_pages(base: Path) -> list[Page]:
    """htmldate's evaluation subset: the page URL and its hand-checked publication day."""
    folder = base / "htmldate"
    index = json.loads((folder / "SUBSET_index.json").read_text(encoding="utf-8"))
    return [
        Page(
            key=f"htmldate/{entry['file']}",
            path=folder / entry["file"],
            url=url,
            date=entry["date"],
        )
        for url, entry in index.items()
    ]
