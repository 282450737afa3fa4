"""Medians of the measured runs as a markdown page: machine, command, tables, targets."""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bench import peers
from bench.measure import median

if TYPE_CHECKING:
    from bench.run import Row

WORKLOAD_TITLES = {
    "flat": "Flat: one article, 2,000 references over 50 hosts (depth 0)",
    "deep": "Deep: an HTML article, related stories to depth 2 (about 5,000 pages)",
    "recheck": "Re-check: the flat workload crawled again, nothing changed",
}
HEADER = (
    "| tool | runs | wall s | req/s (server, p1–p99) | first-request req/s | requests "
    "| req per CPU s | CPU s "
    "| peak RSS MB "
    "| bytes transferred | bytes stored | dead precision | dead recall | soft-404 caught "
    "| load | notes |"
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _med(rows: Sequence[Row], get: Callable[[Row], float | int | None]) -> float | None:
    return median([None if (v := get(r)) is None else float(v) for r in rows])


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e6:.2f} MB"


def _rate(row: Row) -> float | None:
    rate = row.server.get("rate_p1_p99")
    return None if rate is None else float(rate)


def _first_rate(row: Row) -> float | None:
    rate = row.server.get("first_rate_p1_p99")
    return None if rate is None else float(rate)


def _bytes(row: Row) -> int:
    return int(row.server["bytes_out"]) + int(row.server["bytes_in"])


def _per_cpu(row: Row) -> float | None:
    return row.server["requests"] / row.cpu if row.cpu > 0 else None


def _soft(rows: Sequence[Row]) -> str:
    caught = _med(rows, lambda r: r.soft404_caught)
    if caught is None:
        return "no such check"
    return f"{caught:.0f} / {rows[0].soft404_truth}"


def _notes(rows: Sequence[Row]) -> str:
    """Notes every run shared, then the ones that differed, run by run."""
    shared = [n for n in rows[0].notes if all(n in r.notes for r in rows)]
    varied = [", ".join(n for n in r.notes if n not in shared) for r in rows]
    text = "; ".join(shared)
    if any(varied):
        text += ("; " if text else "") + "by run: " + " / ".join(v or "–" for v in varied)
    return text[:400]


def table_row(tool: str, rows: Sequence[Row]) -> str:
    """One tool's medians as a markdown table row."""
    notes = _notes(rows)
    return (
        f"| {tool} | {len(rows)} | {_fmt(_med(rows, lambda r: r.wall))} "
        f"| {_fmt(_med(rows, _rate), ',.0f')} | {_fmt(_med(rows, _first_rate), ',.0f')} "
        f"| {_fmt(_med(rows, lambda r: r.server['requests']), ',.0f')} "
        f"| {_fmt(_med(rows, _per_cpu), ',.0f')} | {_fmt(_med(rows, lambda r: r.cpu))} "
        f"| {_fmt(_med(rows, lambda r: r.rss_mb), '.1f')} | {_mb(_med(rows, _bytes))} "
        f"| {_mb(_med(rows, lambda r: r.stored_bytes))} "
        f"| {_fmt(_med(rows, lambda r: r.precision))} "
        f"| {_fmt(_med(rows, lambda r: r.recall))} | {_soft(rows)} "
        f"| {_fmt(_med(rows, lambda r: r.load), '.1f')} | {notes} |"
    )


def group(rows: Sequence[Row], workload: str, phase: str = "measured") -> dict[str, list[Row]]:
    """Rows of one workload and phase, by tool, in the order tools first ran."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        if row.workload == workload and row.phase == phase:
            out.setdefault(row.tool, []).append(row)
    return out


def recheck_section(rows: Sequence[Row]) -> list[str]:
    """First crawl vs the unchanged re-crawl: bytes on the wire and bodies added to the store."""
    first = group(rows, "recheck", "first").get("crawler", [])
    again = group(rows, "recheck").get("crawler", [])
    if not first or not again:
        return ["No re-check figures (the crawler did not run)."]
    ratios = [_bytes(b) / _bytes(a) for a, b in zip(first, again, strict=False) if _bytes(a)]
    added = [
        None if a.bodies is None or b.bodies is None else b.bodies - a.bodies
        for a, b in zip(first, again, strict=False)
    ]
    lines = [HEADER, _separator(HEADER), table_row("crawler, first crawl", first)]
    lines.append(table_row("crawler, re-crawl", again))
    lines += [
        "",
        f"- Re-crawl bytes / first crawl bytes (median): **{_fmt(median(list(ratios)), '.1%')}**",
        "- Bodies added to the store by the re-crawl (median): "
        f"**{_fmt(median(list(added)), '.0f')}**"
        f" (first crawl stored {_fmt(_med(first, lambda r: r.bodies), '.0f')} bodies)",
        "- Statuses answered on the re-crawl: "
        + ", ".join(f"{k}: {v}" for k, v in again[-1].server["statuses"].items()),
    ]
    return lines


def _separator(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def machine_lines(
    args: argparse.Namespace, command: str, load: tuple[float, float], date: str
) -> list[str]:
    """Where and how the figures were taken."""
    return [
        f"- Command: `{command}` (from the repository root; `make bench` runs it without options)",
        f"- Date: {date} (the end of the run)",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, Linux {platform.release()}",
        f"- Python {platform.python_version()}; "
        f"load average at start / end: {load[0]:.2f} / {load[1]:.2f}",
        f"- Settings: {args.runs} runs per tool (medians shown), concurrency {args.concurrency}, "
        f"latency {args.latency * 1000:.0f} ms per response, workload scale {args.scale}",
    ]


def render(
    rows: Sequence[Row],
    skipped: dict[str, str],
    *,
    command: str,
    args: argparse.Namespace,
    help_time: float | None,
    load: tuple[float, float],
    over_budget: bool,
    date: str,
) -> str:
    """The whole RESULTS.md page."""
    from bench import targets

    lines = ["# Benchmark results", "", *machine_lines(args, command, load, date), ""]
    lines += _peer_lines(rows)
    for workload in ("flat", "deep"):
        by_tool = group(rows, workload)
        if by_tool:
            lines += ["", f"## {WORKLOAD_TITLES[workload]}", "", HEADER, _separator(HEADER)]
            lines += [table_row(tool, tool_rows) for tool, tool_rows in by_tool.items()]
    if any(r.workload == "recheck" for r in rows):
        lines += ["", f"## {WORKLOAD_TITLES['recheck']}", "", *recheck_section(rows)]
    lines += ["", "## Start-up", ""]
    lines.append(f"- `crawler --help`, median of 10 runs: **{_fmt(help_time, '.3f')} s**")
    lines += ["", "## Targets (issue 4)", "", *targets.render_targets(rows, help_time)]
    lines += ["", "## Missing figures", "", *_missing(rows, skipped, over_budget)]
    lines += ["", *METHOD]
    return "\n".join(lines) + "\n"


def _peer_lines(rows: Sequence[Row]) -> list[str]:
    names = {r.tool for r in rows}
    out = []
    if "linkinator" in names:
        out.append(
            f"- linkinator {peers.peer_version('linkinator')} (npm, bench/.peers/node_modules)"
        )
    if any(n.startswith("linkchecker") for n in names):
        out.append(f"- LinkChecker {peers.peer_version('linkchecker')} (PyPI, bench/.peers/venv)")
    return out


def _missing(rows: Sequence[Row], skipped: dict[str, str], over_budget: bool) -> list[str]:
    out = [f"- {tool}: skipped — {reason}" for tool, reason in sorted(skipped.items())]
    failed = sorted({f"{r.workload}/{r.tool}" for r in rows if r.failed})
    out += [f"- {name}: at least one run failed or timed out (see notes)" for name in failed]
    if over_budget:
        out.append("- The time budget ran out: some runs were not made.")
    return out or ["- None."]


METHOD = [
    "## How these figures are taken",
    "",
    "- The fake web (`bench/fakeweb.py`, aiohttp's low-level server, access log off) runs in",
    "  its own process on 127.0.0.2–127.0.0.51 (one port); each answer waits the set latency.",
    "  Ground truth comes from the same deterministic workload table (`bench/workload.py`).",
    "- **req/s** is counted by the server: requests between the 1st and 99th percentile arrival",
    "  time, divided by that span (a few 2-second pages would otherwise set the wall time).",
    "- **wall s** runs from spawning the client to its exit (interpreter start-up included).",
    "  **CPU s** and **peak RSS** come from `os.wait4()` on that client process alone.",
    "  **req per CPU s** (server-counted requests / client CPU seconds) is the figure least",
    "  disturbed by other work on a shared machine; wall time and req/s are not. **load** is",
    "  the machine's 1-minute load average when the run started (2 CPUs: above 2 means the",
    "  client and the fake web shared the CPUs with other work).",
    "- **bytes transferred**: response status lines, headers and bodies plus request lines and",
    "  headers, as counted by the server (aiohttp's own Server/Date headers as a constant).",
    "- **bytes stored**: the crawler's data directory (SQLite file) after the run.",
    "- **dead precision / recall**: against the URLs served 404/410. A 503 or 429 that recovers on",
    "  retry, a 403, a redirect and a slow page are not dead; a soft 404 is counted separately.",
    "  The raw baselines call any final status >= 400 or any exception dead (simple checkers do).",
    "- Baselines: `bench/baselines.py` (AsyncClient/ClientSession + semaphore, follow redirects,",
    "  read the body). Peers run with their defaults apart from concurrency; LinkChecker gets",
    "  `--check-extern -r 1`, and its `maxrequestspersecond=1000` in the throttle-off variant",
    "  (the fake web sends the `LinkChecker` header LinkChecker requires above 10/s).",
]
