"""Issue 4's targets against the measured medians: met, missed (by how much), or unmeasured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.measure import median

if TYPE_CHECKING:
    from bench.run import Row

RSS_LIMITS = {"flat": 120.0, "deep": 150.0}
RATE_TARGETS = (("aiohttp", 0.75), ("httpx", 3.0), ("linkinator", 1.5), ("linkchecker", 10.0))
HELP_LIMIT = 0.3
RECHECK_LIMIT = 0.05


def _rows(rows: Sequence[Row], workload: str, tool: str, phase: str = "measured") -> list[Row]:
    return [r for r in rows if r.workload == workload and r.tool == tool and r.phase == phase]


def _median_of(rows: Sequence[Row], field: str) -> float | None:
    values: list[float | None] = []
    for row in rows:
        value = row.server.get("rate_p1_p99") if field == "rate" else getattr(row, field)
        values.append(None if value is None else float(value))
    return median(values)


def _line(target: str, measured: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("met" if met else "**missed**")
    return f"| {target} | {measured} | {verdict} |"


def rate_lines(rows: Sequence[Row]) -> list[str]:
    """The crawler's flat request rate against each baseline's, times the target factor."""
    ours = _median_of(_rows(rows, "flat", "crawler"), "rate")
    out = []
    for tool, factor in RATE_TARGETS:
        theirs = _median_of(_rows(rows, "flat", tool), "rate")
        target = f"flat req/s >= {factor}x {tool}"
        if ours is None or theirs is None:
            out.append(_line(target, "–", None))
            continue
        ratio = ours / theirs
        # Three decimals and the rate the target asks for: 0.748x is not 0.75x.
        measured = f"{ours:,.0f} vs {theirs:,.0f} = {ratio:.3f}x (target {factor * theirs:,.0f})"
        out.append(_line(target, measured, ratio >= factor))
    return out


def retry_context_line(rows: Sequence[Row]) -> str:
    """Not a target: the crawler against the raw aiohttp loop that retries as it does, and what
    those retries cost that loop (both p1-p99 windows include the retries' tail)."""
    ours = _median_of(_rows(rows, "flat", "crawler"), "rate")
    plain = _median_of(_rows(rows, "flat", "aiohttp"), "rate")
    retrying = _median_of(_rows(rows, "flat", "aiohttp-retry"), "rate")
    if ours is None or plain is None or retrying is None:
        return "| (context) flat req/s vs aiohttp retrying like the crawler | – | not measured |"
    return (
        f"| (context) flat req/s vs aiohttp retrying like the crawler | {ours:,.0f} vs "
        f"{retrying:,.0f} = {ours / retrying:.3f}x; that loop itself = {retrying / plain:.3f}x "
        "aiohttp | not a target |"
    )


def accuracy_lines(rows: Sequence[Row]) -> list[str]:
    """Dead-link precision/recall 1.00 and every soft 404 caught, on flat and deep."""
    out = []
    for workload in ("flat", "deep"):
        mine = _rows(rows, workload, "crawler")
        if not mine:
            out.append(_line(f"{workload}: precision, recall 1.00", "–", None))
            continue
        p, r = _median_of(mine, "precision"), _median_of(mine, "recall")
        soft = _median_of(mine, "soft404_caught")
        shown = f"P {p if p is None else round(p, 3)}, R {r if r is None else round(r, 3)}"
        out.append(
            _line(f"{workload}: dead precision and recall 1.00", shown, p == 1.0 and r == 1.0)
        )
        truth = mine[0].soft404_truth
        shown = "–" if soft is None else f"{soft:.0f} / {truth}"
        out.append(_line(f"{workload}: soft 404s caught", shown, soft == truth))
    return out


def memory_lines(rows: Sequence[Row]) -> list[str]:
    """Peak RSS of the flat and deep crawls."""
    out = []
    for workload, limit in RSS_LIMITS.items():
        rss = _median_of(_rows(rows, workload, "crawler"), "rss_mb")
        shown = "–" if rss is None else f"{rss:.1f} MB"
        out.append(
            _line(
                f"{workload}: peak RSS < {limit:.0f} MB",
                shown,
                None if rss is None else rss < limit,
            )
        )
    return out


def recheck_lines(rows: Sequence[Row]) -> list[str]:
    """Re-crawl bytes under 5% of the first crawl's, and no body added."""
    pairs = list(
        zip(
            _rows(rows, "recheck", "crawler", "first"),
            _rows(rows, "recheck", "crawler"),
            strict=False,
        )
    )
    if not pairs:
        return [
            _line("re-check bytes < 5% of first", "–", None),
            _line("re-check adds no body", "–", None),
        ]
    total = [int(r.server["bytes_out"]) + int(r.server["bytes_in"]) for pair in pairs for r in pair]
    ratio = median([b / a for a, b in zip(total[::2], total[1::2], strict=True) if a])
    added = median(
        [None if a.bodies is None or b.bodies is None else b.bodies - a.bodies for a, b in pairs]
    )
    return [
        _line("re-check bytes < 5% of first", "–" if ratio is None else f"{ratio:.1%}",
              None if ratio is None else ratio < RECHECK_LIMIT),
        _line("re-check adds no body", "–" if added is None else f"{added:.0f} bodies added",
              None if added is None else added == 0),
    ]  # fmt: skip


def render_targets(rows: Sequence[Row], help_time: float | None) -> list[str]:
    """The targets table."""
    lines = ["| target | measured (medians) | verdict |", "|---|---|---|"]
    lines += [
        *rate_lines(rows),
        retry_context_line(rows),
        *accuracy_lines(rows),
        *memory_lines(rows),
        *recheck_lines(rows),
    ]
    shown = "–" if help_time is None else f"{help_time:.3f} s"
    lines.append(
        _line(
            f"`crawler --help` < {HELP_LIMIT} s",
            shown,
            None if help_time is None else help_time < HELP_LIMIT,
        )
    )
    return lines
