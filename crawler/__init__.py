"""crawler: check the links an article cites, follow its related stories, keep every snapshot.

The public API lives here. Names are resolved lazily so `crawler --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# httpx imports its own command line (click, rich and every pygments lexer: ~5 MB, 30 ms) whenever
# those happen to be installed, as they are here; the crawler never needs it. An absent module
# makes httpx use its stub, as it does when they are not installed.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

_EXPORTS = {
    "Article": "crawler.sources",
    "ConfigError": "crawler.errors",
    "Crawl": "crawler.crawl",
    "CrawlerError": "crawler.errors",
    "FetchResult": "crawler.model",
    "Fetcher": "crawler.fetch",
    "Flag": "crawler.model",
    "Link": "crawler.model",
    "Node": "crawler.model",
    "Outcome": "crawler.model",
    "PageInfo": "crawler.model",
    "Settings": "crawler.config",
    "Snapshot": "crawler.model",
    "SourceError": "crawler.errors",
    "Store": "crawler.store",
    "StoreError": "crawler.errors",
    "Verdict": "crawler.model",
    "classify_result": "crawler.classify",
    "extract_links": "crawler.extract",
    "load_settings": "crawler.config",
    "normalize_url": "crawler.urls",
    "parse_page": "crawler.related",
    "read_source": "crawler.sources",
    "render": "crawler.report",
    "run_crawl": "crawler.crawl",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crawler' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
