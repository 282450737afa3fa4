"""Transport and concurrency variants on the flat workload: medians as a markdown table.

The crawler with `[fetch] transport = "aiohttp"` (httpx over the crawl's own aiohttp
transport, the default) and `"httpx"` (httpx's own transport), the crawler with `retries = 0`
(what honouring Retry-After costs on the p1-p99 rate), and the raw loops, each at several
concurrencies; runs are interleaved like the main bench. HTTP/2 needs TLS (ALPN), which the
fake web does not speak: `python -m bench.h2` measures it apart.

    python -m bench.variants --runs 3 --concurrency 64,256
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.fakeweb import DEFAULT_LATENCY, FakeWeb
from bench.measure import median
from bench.run import Row, _out_dir, _progress, measure_run
from bench.tools import RunContext, Tool, all_tools, crawler_argv

BASELINES = ("aiohttp", "aiohttp-retry", "httpx-aiohttp", "httpx")
DEFAULT_BUDGET = 20 * 60.0


def crawler_variant(label: str, fetch_settings: str) -> Tool:
    """The crawler tool with extra `[fetch]` lines in its settings file."""
    base = next(t for t in all_tools() if t.name == "crawler")

    def argv(ctx: RunContext) -> list[str]:
        command = crawler_argv(ctx)
        config = Path(command[command.index("--config") + 1])
        text = config.read_text().replace("[fetch]\n", f"[fetch]\n{fetch_settings}")
        config.write_text(text)
        return command

    return replace(base, name=f"crawler ({label})", argv=argv, workloads=("flat",))


def crawler_with_transport(transport: str) -> Tool:
    """The crawler tool with `[fetch] transport` set in its settings file."""
    return crawler_variant(transport, f'transport = "{transport}"\n')


def variant_tools() -> list[Tool]:
    """The crawler on both transports and without retries, then the raw loops.

    Without retries the crawler makes the raw loops' 2,319 requests and none of the
    Retry-After / backoff waits whose late requests stretch the p1-p99 span.
    """
    raw = [t for t in all_tools() if t.name in BASELINES]
    return [
        crawler_with_transport("aiohttp"),
        crawler_with_transport("httpx"),
        crawler_variant("aiohttp, retries 0", 'transport = "aiohttp"\nretries = 0\n'),
        *raw,
    ]


def _cell(rows: list[Row], get: Callable[[Row], float | None], spec: str) -> str:
    value = median([get(r) for r in rows])
    return "–" if value is None else format(value, spec)


def _per_cpu(row: Row) -> float | None:
    return row.server["requests"] / row.cpu if row.cpu else None


def render(rows: list[Row], concurrencies: list[int], runs: int) -> str:
    """One row per tool and concurrency: req/s, wall, CPU, req per CPU s, RSS, precision."""
    lines = [
        "| client | concurrency | runs | req/s (server, p1–p99) | wall s | CPU s "
        "| req per CPU s | peak RSS MB | dead precision | dead recall | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in [t.name for t in variant_tools()]:
        for conc in concurrencies:
            mine = [r for r in rows if r.tool == f"{tool}@{conc}"]
            if not mine:
                continue
            lines.append(
                f"| {tool} | {conc} | {len(mine)} "
                f"| {_cell(mine, lambda r: r.server.get('rate_p1_p99'), ',.0f')} "
                f"| {_cell(mine, lambda r: r.wall, '.2f')} | {_cell(mine, lambda r: r.cpu, '.2f')} "
                f"| {_cell(mine, _per_cpu, ',.0f')} "
                f"| {_cell(mine, lambda r: r.rss_mb, '.1f')} "
                f"| {_cell(mine, lambda r: r.precision, '.2f')} "
                f"| {_cell(mine, lambda r: r.recall, '.2f')} "
                f"| {_cell(mine, lambda r: r.load, '.1f')} |"
            )
    return "\n".join(lines) + f"\n\n({runs} runs each, medians; flat workload, 20 ms latency)\n"


def main(argv: list[str] | None = None) -> None:
    """Run every variant N times against one fake web and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.variants", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", default="64,256", help="comma-separated")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="seconds in all")
    parser.add_argument("-o", "--output", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    out = Path(tempfile.mkdtemp(prefix="variants-", dir=_out_dir()))
    print(f"variants: raw output in {out}", flush=True)
    started, rows = time.monotonic(), []
    with FakeWeb("flat", latency=args.latency, lifetime=args.budget + 600) as web:
        for run in range(1, args.runs + 1):
            for conc in concurrencies:
                for tool in variant_tools():
                    if time.monotonic() - started > args.budget:
                        break
                    run_dir = out / f"{tool.name.replace(' ', '_')}-{conc}-{run}"
                    run_dir.mkdir()
                    web.reset()
                    ctx = RunContext(web, run_dir, "flat", conc, run_dir / "data")
                    row = measure_run(tool, ctx, run, args.timeout)
                    row.tool = f"{tool.name}@{conc}"
                    shutil.rmtree(run_dir / "data", ignore_errors=True)
                    rows.append(row)
                    _progress(row)
    table = render(rows, concurrencies, args.runs)
    print(table)
    if args.output is not None:
        args.output.write_text(table)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
