"""What each part of a flat crawl costs in request rate: the crawler's fetch path alone, and the
whole crawl with page reading, the store or the per-page verdicts switched off.

A profiling aid, not a configuration anyone would run: the parts are switched off by replacing
them with no-ops in the child process. Every measurement is a child process of its own (CPU and
peak RSS from `os.wait4()`), rounds are interleaved, one fake web serves them all.

    python -m bench.parts --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fakeweb import DEFAULT_LATENCY, FakeWeb
from bench.tools import RunContext, crawler_argv
from bench.workload import build_workload

CONCURRENCY = 64
CHILD_TIMEOUT = 120.0  # seconds per measurement

# part -> what the child switches off ("fetch" and "raw" crawl nothing)
PARTS: dict[str, tuple[str, ...]] = {
    "raw httpx-aiohttp loop": (),
    "fetch path alone": (),
    "crawl": (),
    "crawl, no page reading": ("reading",),
    "crawl, no store": ("store",),
    "crawl, no reading, hashing, store or verdicts": ("reading", "hashing", "store", "verdicts"),
}


@dataclass
class Measured:
    part: str
    rate: float
    requests: int
    cpu: float
    rss_mb: float


def _urls(port: int) -> list[str]:
    workload = build_workload("flat")
    return [workload.url(path, port) for path in workload.references]


async def _fetch_path(urls: list[str]) -> None:
    """The crawler's Fetcher, alone, at the number of visits a crawl keeps going."""
    from crawler.config import Settings
    from crawler.crawl import VISITS_PER_SLOT
    from crawler.fetch import Fetcher

    fetch = Settings().fetch.model_copy(
        update={"allow_private_networks": True, "concurrency": CONCURRENCY}
    )
    visits = asyncio.Semaphore(CONCURRENCY * VISITS_PER_SLOT)
    async with Fetcher(fetch) as fetcher:

        async def one(url: str) -> None:
            async with visits:
                await fetcher.fetch(url, want_body=True)

        await asyncio.gather(*(one(url) for url in urls))


def _switch_off(parts: tuple[str, ...]) -> None:
    """Replace the named steps of a crawl with no-ops (in this process only)."""
    import crawler.answer
    import crawler.crawl
    import crawler.storewriter
    from crawler.model import Verdict

    if "reading" in parts:
        _replace(crawler.crawl.Crawl, "_read", lambda *args, **kwargs: None)
    if "hashing" in parts:
        _replace(crawler.crawl.Crawl, "_keep_body", lambda *args: None)
    if "store" in parts:
        _replace(crawler.storewriter.StoreWriter, "add_node", lambda *args: None)
        _replace(crawler.storewriter.StoreWriter, "add_body", lambda *args: None)
    if "verdicts" in parts:
        _replace(crawler.answer, "classify_result", lambda *args: (Verdict.OK, None))


def _replace(owner: object, name: str, value: object) -> None:
    """Set `owner.name`, which must exist: a renamed step fails here instead of being measured
    as switched off while it still runs."""
    if not hasattr(owner, name):
        raise AttributeError(f"bench.parts: {owner!r} has no {name!r} to switch off")
    setattr(owner, name, value)


class _Web:
    """What `crawler_argv` reads of a FakeWeb, in the child."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.workload = build_workload("flat")


def child(part: str, port: int) -> None:
    """One measurement, in this process."""
    if part == "raw httpx-aiohttp loop":
        from bench.baselines import check_httpx

        asyncio.run(check_httpx(_urls(port), CONCURRENCY, "aiohttp"))
        return
    if part == "fetch path alone":
        asyncio.run(_fetch_path(_urls(port)))
        return
    _switch_off(PARTS[part])
    from crawler.cli import main

    run_dir = Path(tempfile.mkdtemp(prefix="parts-"))
    web: Any = _Web(port)
    ctx = RunContext(web, run_dir, "flat", CONCURRENCY, run_dir / "data")
    with contextlib.suppress(SystemExit):  # the CLI exits with the crawl's verdict
        main(crawler_argv(ctx)[1:])


def measure(web: FakeWeb, part: str) -> Measured:
    """Run one part in a child process against the fake web; the server counts the requests."""
    web.reset()
    argv = [sys.executable, "-m", "bench.parts", "--child", part, "--port", str(web.port)]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + CHILD_TIMEOUT
    pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
    while pid == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:  # over time: stopped, and measured as far as it got
        proc.kill()
        _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = -1  # reaped here; tell Popen not to wait for it again
    stats = web.stats()
    return Measured(
        part,
        float(stats["rate_p1_p99"]),
        int(stats["requests"]),
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
    )


def render(rows: list[Measured], runs: int) -> str:
    """Medians per part as a markdown table."""
    lines = [
        "| part | runs | req/s (server, p1–p99) | requests | CPU s | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        mine = [r for r in rows if r.part == part]
        if not mine:
            continue
        lines.append(
            f"| {part} | {len(mine)} | {statistics.median(r.rate for r in mine):,.0f} "
            f"| {statistics.median(r.requests for r in mine):,.0f} "
            f"| {statistics.median(r.cpu for r in mine):.2f} "
            f"| {statistics.median(r.rss_mb for r in mine):.1f} |"
        )
    return "\n".join(lines) + f"\n\n({runs} runs each, medians; flat workload, concurrency 64)\n"


def main(argv: list[str] | None = None) -> None:
    """Every part N times, interleaved, against one fake web; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY)
    parser.add_argument("--child", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.port)
        return
    rows: list[Measured] = []
    lifetime = args.runs * len(PARTS) * CHILD_TIMEOUT
    with FakeWeb("flat", latency=args.latency, lifetime=lifetime) as web:
        for run in range(1, args.runs + 1):
            for part in PARTS:
                row = measure(web, part)
                rows.append(row)
                print(f"  run {run} {part:48} req/s {row.rate:7.0f} cpu {row.cpu:5.2f}", flush=True)
    print(render(rows, args.runs))


if __name__ == "__main__":
    main()
