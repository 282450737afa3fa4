"""`python -m accuracy`: measure, print one table, write docs/accuracy.md."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from accuracy.corpus import CORPUS, corpus_present, load_pages
from accuracy.crawled import crawl_figures, crawl_pages
from accuracy.dates import date_figures, date_runs
from accuracy.linkcheck import extraction_figures
from accuracy.related import related_figures, score_all
from accuracy.report import render_report
from accuracy.table import render_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"


def main(root: Path = CORPUS, doc: Path = DOC, *, strict: bool = False) -> int:
    """Run every measurement and report it; with `strict`, exit 1 when a target is missed."""
    if not corpus_present(root):
        print(f"accuracy: skipped, the corpus is not at {root}")
        return 0
    started = time.perf_counter()
    pages = load_pages(root)
    observed = asyncio.run(crawl_pages(pages))
    scores = score_all(root)
    runs = date_runs(pages)
    url_figures, failures = extraction_figures(root / "a_url_extraction")
    figures = [
        *crawl_figures(pages, observed),
        *related_figures(scores),
        *date_figures(runs),
        *url_figures,
    ]
    doc.write_text(render_report(figures, observed, scores, runs, failures), encoding="utf-8")
    print(render_table(figures), end="")
    print(f"\n{len(pages)} pages in {time.perf_counter() - started:.1f}s; details in {doc}")
    missed = [f.name for f in figures if f.met is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(strict="--strict" in sys.argv[1:]))
