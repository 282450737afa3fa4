"""docs/accuracy.md: the table, then every miss behind each figure."""

from __future__ import annotations

from collections.abc import Sequence

from accuracy.corpus import CANONICAL_CORRECTIONS
from accuracy.crawled import Observed, canonical_misses, date_misses, not_ok, title_misses
from accuracy.dates import DateRun
from accuracy.linkcheck import Failure
from accuracy.related import Score
from accuracy.table import Figure, render_table

HEADER = """# Accuracy on real pages

Written by `make accuracy` (`python -m accuracy`); do not edit by hand. The news pages of
`../shared/corpus/c_news_pages` are served from 127.0.0.1 at their original paths and crawled
with `crawler.crawl.run_crawl`; title, date, canonical and verdict come from the snapshot.
Related stories are scored against the hand labels in `tests/related_labels.json`.
"""


def _rows(title: str, header: str, rows: Sequence[tuple[str, ...]]) -> list[str]:
    """A titled Markdown table, or a line saying there is nothing to list."""
    if not rows:
        return [f"### {title}", "", "None.", ""]
    cols = header.count("|") - 1
    lines = [f"### {title}", "", header, "|" + "---|" * cols]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "\\n")[:160]


def crawl_section(observed: list[Observed]) -> list[str]:
    """Every title, date, canonical and verdict miss of the crawl."""
    head = "| page | expected | crawled |"
    return [
        "## Crawled pages: every miss",
        "",
        *_rows("Titles (readability oracle)", head, title_misses(observed, "readability")),
        *_rows("Titles (newspaper4k, informational)", head, title_misses(observed, "newspaper4k")),
        *_rows("Dates (htmldate subset)", head, date_misses(observed, "htmldate/")),
        *_rows("Dates (newspaper4k, informational)", head, date_misses(observed, "newspaper4k/")),
        *_rows("Canonical URLs", head, canonical_misses(observed)),
        *_rows("Pages not ok (soft-404 false positives and others)", "| page | verdict | reason |",
               not_ok(observed)),
    ]  # fmt: skip


def related_section(scores: dict[str, Score]) -> list[str]:
    """Per-page precision and recall, with each wrong or missed link."""
    rows = [
        (page, str(s.true_positive), " ".join(s.false_positive) or "-",
         " ".join(s.false_negative) or "-")
        for page, s in scores.items()
    ]  # fmt: skip
    return _rows("Related stories per labelled page", "| page | right | extra | missed |", rows)


def dates_section(runs: list[DateRun | str]) -> list[str]:
    """Each date extractor's score, speed, import time and misses."""
    lines = ["## Date extractors on the htmldate subset", ""]
    lines += [
        "| extractor | same day | seconds for all pages | cold import (s) |",
        "|---|---|---|---|",
    ]
    for run in runs:
        if isinstance(run, str):
            lines.append(f"| {run} | - | - | - |")
            continue
        imported = "-" if run.import_seconds is None else f"{run.import_seconds:.2f}"
        lines.append(f"| {run.name} | {run.hits}/{run.total} | {run.seconds:.2f} | {imported} |")
    lines.append("")
    for run in runs:
        if isinstance(run, DateRun):
            lines += _rows(f"Misses: {run.name}", "| page | truth | found |", list(run.misses))
    return lines


def failures_section(failures: list[Failure]) -> list[str]:
    """Every URL-extraction fixture that fails, with the reason."""
    rows = [(f.suite, f.text, f.expected, f.got, f.reason) for f in failures]
    return _rows(
        "URL extraction: every failure", "| suite | input | expected | got | reason |", rows
    )


def notes_section() -> list[str]:
    """Where an oracle was corrected, and why the suite does what it does."""
    lines = ["## Notes", ""]
    for key, value in CANONICAL_CORRECTIONS.items():
        lines.append(
            f"- Canonical oracle corrected for `{key}`: the page declares a relative canonical,"
            f" resolved per RFC 3986 to `{value}` (newspaper4k joined it to the host instead)."
        )
    lines += [
        "- Readability pages have no URL of their own; they are served at the path of the URL"
        " they declare (og:url, else rel=canonical). A canonical the crawler resolved against"
        " 127.0.0.1 is mapped back to the page's original host before comparing.",
        "- htmldate's truth set is htmldate's own evaluation data, so its score here is"
        " optimistic for htmldate.",
        "",
    ]
    return lines


def render_report(
    figures: list[Figure],
    observed: list[Observed],
    scores: dict[str, Score],
    runs: list[DateRun | str],
    failures: list[Failure],
) -> str:
    """The whole docs/accuracy.md."""
    parts = [HEADER, render_table(figures), *crawl_section(observed), "## Related stories", ""]
    parts += [*related_section(scores), *dates_section(runs), *failures_section(failures)]
    parts += notes_section()
    return "\n".join(parts).rstrip() + "\n"
