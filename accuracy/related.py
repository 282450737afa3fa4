"""Precision and recall of `parse_page(...).related` against hand labels.

`tests/related_labels.json` lists, for real corpus pages, the related-story links a reader is
offered (and a note on how each page was decided). Links are compared after
`crawler.urls.normalize_url`, as the crawler dedupes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from accuracy.corpus import CORPUS, NEWS
from accuracy.table import Figure
from crawler.related import parse_page
from crawler.urls import normalize_url

LABELS = Path(__file__).resolve().parents[1] / "tests" / "related_labels.json"
PRECISION_TARGET, RECALL_TARGET = 0.9, 0.8


@dataclass(slots=True)
class Score:
    """Counts for one page, or summed over all pages."""

    true_positive: int = 0
    false_positive: list[str] = field(default_factory=list)
    false_negative: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Share of extracted links that are labelled related (1.0 when none were extracted)."""
        found = self.true_positive + len(self.false_positive)
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        """Share of labelled links that were extracted (1.0 when none were labelled)."""
        wanted = self.true_positive + len(self.false_negative)
        return self.true_positive / wanted if wanted else 1.0


def load_labels(path: Path = LABELS) -> list[dict[str, object]]:
    """The labelled pages: file, url, related, note."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["pages"])


def score_page(html: bytes, url: str, labelled: list[str]) -> Score:
    """Compare the extractor's related links on one page with its labels."""
    found = {normalize_url(link.url): link.url for link in parse_page(html, url).related}
    wanted = {normalize_url(u): u for u in labelled}
    return Score(
        true_positive=len(found.keys() & wanted.keys()),
        false_positive=sorted(found[k] for k in found.keys() - wanted.keys()),
        false_negative=sorted(wanted[k] for k in wanted.keys() - found.keys()),
    )


def score_all(root: Path = CORPUS, labels: Path = LABELS) -> dict[str, Score]:
    """Per-page scores for every labelled page."""
    scores = {}
    for entry in load_labels(labels):
        file, url, related = str(entry["file"]), str(entry["url"]), entry["related"]
        assert isinstance(related, list)
        html = (root / NEWS / file).read_bytes()
        scores[file] = score_page(html, url, [str(u) for u in related])
    return scores


def total(scores: dict[str, Score]) -> Score:
    """All pages' counts summed (micro-averaged)."""
    out = Score()
    for score in scores.values():
        out.true_positive += score.true_positive
        out.false_positive.extend(score.false_positive)
        out.false_negative.extend(score.false_negative)
    return out


def related_figures(scores: dict[str, Score]) -> list[Figure]:
    """Precision and recall over all labelled pages."""
    summed = total(scores)
    return [
        Figure(f"related: precision ({len(scores)} labelled pages)", ">= 0.90",
               summed.precision, None, summed.precision >= PRECISION_TARGET),
        Figure(f"related: recall ({len(scores)} labelled pages)", ">= 0.80",
               summed.recall, None, summed.recall >= RECALL_TARGET),
    ]  # fmt: skip
