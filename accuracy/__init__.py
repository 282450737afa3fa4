"""The accuracy suite: the real crawler measured on real news pages from ../shared/corpus.

`python -m accuracy` (or `make accuracy`) serves the corpus pages from 127.0.0.1 at their
original paths, crawls them with `crawler.crawl.run_crawl`, and compares what the snapshot says
(title, publication date, canonical URL, verdict) with the corpus' expectations. It also scores
the related-story extractor against hand labels (`tests/related_labels.json`), date extractors
against htmldate's truth and URL extraction against linkify-it and GFM, then prints one table
and writes it to `docs/accuracy.md`.

Modules:
  corpus.py    read the corpus: pages, their original URLs and what is expected of them
  site.py      serve those pages on 127.0.0.1 at their original paths
  crawled.py   crawl them with the real crawler; title / date / canonical / soft-404 figures
  related.py   precision and recall of related-story links against the hand labels
  dates.py     the hand-written date extractor against htmldate and extruct
  linkcheck.py URL extraction pass rates (linkify-it, GFM) and every failure with its reason
  table.py     the figures as one Markdown table
"""

from accuracy.table import Figure, render_table

__all__ = ["Figure", "render_table"]
