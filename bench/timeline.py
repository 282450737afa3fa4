"""Where the flat workload's p1-p99 window goes: the crawler beside the raw aiohttp loops.

The p1-p99 rate ends at the 99th-percentile arrival. For a loop without retries that is the end
of its burst of first requests. For a client that honours `Retry-After: 1` it is one of the
retries, a second after a 429 that came late in the burst. With n 429s spread evenly over a
burst of B seconds and k requests past the p99 one, the window ends near 1 s + (1 - k/n) B
(flat: n = 60, k = 25, so 1 s + 0.58 B): a faster burst shortens it by only part of its gain.
For each tool this prints the median run (of `--runs`, interleaved with the others): its rates,
when 99% of its first requests had arrived, its p99 arrival, and its arrivals per 0.2 s.

    python -m bench.timeline --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.fakeweb import FakeWeb, rate_p1_p99
from bench.run import DEFAULT_RUN_TIMEOUT, measure_run
from bench.tools import RunContext, all_tools

TOOLS = ("crawler", "aiohttp", "aiohttp-retry")
BUCKET = 0.2  # seconds per column of the arrivals histogram


def percentile_time(stamps: list[float], share: float) -> float:
    """The arrival at `share` of a sorted run of arrivals (the p1-p99 rate's index rule)."""
    return stamps[int(share * (len(stamps) - 1))]


@dataclass(frozen=True, slots=True)
class Timeline:
    """One run's arrivals, in seconds from its first arrival."""

    rate: float  # requests per second between the p1 and p99 arrivals
    first_rate: float  # the same over the first request for each path
    requests: int
    burst: float  # when 99% of the first requests had arrived
    p99: float  # the p99 arrival: where the p1-p99 window ends
    after_burst: int  # arrivals after `burst`: retries, late redirect hops
    histogram: list[int]  # arrivals per BUCKET seconds


def describe(stamps: list[float], first: list[float]) -> Timeline:
    """A run's timeline from its sorted arrivals and the first arrival for each path."""
    start = stamps[0]
    burst = percentile_time(first, 0.99) - start
    return Timeline(
        rate=rate_p1_p99(stamps) or 0.0,
        first_rate=rate_p1_p99(first) or 0.0,
        requests=len(stamps),
        burst=burst,
        p99=percentile_time(stamps, 0.99) - start,
        after_burst=sum(1 for t in stamps if t - start > burst),
        histogram=_histogram([t - start for t in stamps]),
    )


def _histogram(offsets: list[float]) -> list[int]:
    counts = [0] * (int(offsets[-1] / BUCKET) + 1)
    for offset in offsets:
        counts[int(offset / BUCKET)] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    """Run each tool `--runs` times on the flat workload and print a markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    tools = [t for t in all_tools() if t.name in TOOLS]
    runs: dict[str, list[Timeline]] = {t.name: [] for t in tools}
    work = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    try:
        with FakeWeb("flat") as web:
            for run in range(1, args.runs + 1):
                for tool in tools:
                    run_dir = work / f"{tool.name}-{run}"
                    run_dir.mkdir()
                    ctx = RunContext(
                        web, run_dir, "flat", args.concurrency, data_dir=run_dir / "data"
                    )
                    web.reset()
                    row = measure_run(tool, ctx, run, DEFAULT_RUN_TIMEOUT)
                    if row.failed:
                        print(f"  {tool.name:14} run {run}: failed ({'; '.join(row.notes)})")
                        continue
                    timeline = describe(web.stamps(), web.stamps(first=True))
                    runs[tool.name].append(timeline)
                    print(f"  {tool.name:14} run {run}: {timeline.rate:6.0f} req/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(runs))


def render(runs: dict[str, list[Timeline]]) -> str:
    """The median run of each tool (by p1-p99 rate) as a markdown table."""
    lines = [
        "| tool | req/s p1-p99 | first requests, req/s | requests | 99% of first requests in, s "
        "| p99 arrival, s | arrivals after that | arrivals per 0.2 s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, timelines in runs.items():
        if not timelines:
            continue
        t = sorted(timelines, key=lambda t: t.rate)[len(timelines) // 2]
        lines.append(
            f"| {name} | {t.rate:,.0f} | {t.first_rate:,.0f} | {t.requests:,} | {t.burst:.2f} "
            f"| {t.p99:.2f} | {t.after_burst} | {' '.join(map(str, t.histogram))} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
