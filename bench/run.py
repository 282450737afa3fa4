"""Run the bench: each tool N times per workload against the fake web, medians to RESULTS.md.

Runs are interleaved (round 1 of every tool, then round 2, ...) so that a burst of other work
on the machine spreads over all tools instead of landing on one. Every run is a subprocess
with a timeout, the whole bench has a time budget, and the fake web stops by itself.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.fakeweb import DEFAULT_LATENCY, FakeWeb
from bench.measure import load_average, run_process, score
from bench.tools import CRAWLER, ROOT, RunContext, Tool, all_tools, unavailable
from bench.workload import Kind

WORKLOADS = ("flat", "deep", "recheck")
QUICK_TOOLS = (
    "crawler", "aiohttp", "aiohttp-retry", "httpx-aiohttp", "httpx", "linkinator", "linkchecker",
)  # fmt: skip
DEFAULT_BUDGET = 40 * 60.0
DEFAULT_RUN_TIMEOUT = 300.0
HELP_RUNS = 10
NOTES_MARKER = "<!-- notes: kept from here on when the bench rewrites this file -->"


@dataclass(slots=True)
class Row:
    """One measured run of one tool on one workload."""

    tool: str
    workload: str
    run: int
    wall: float
    cpu: float
    rss_mb: float
    returncode: int
    failed: bool  # exit code not one of the tool's normal ones, or timed out
    timed_out: bool
    server: dict[str, Any]
    load: float
    reported_dead: int = 0
    true_dead: int = 0
    truth_dead: int = 0
    soft404_caught: int | None = None
    soft404_truth: int = 0
    precision: float | None = None
    recall: float | None = None
    stored_bytes: int | None = None
    bodies: int | None = None
    body_bytes: int | None = None
    phase: str = "measured"  # "first" for the first crawl of a recheck pair
    notes: list[str] = field(default_factory=list)


def measure_run(
    tool: Tool, ctx: RunContext, run: int, timeout: float, phase: str = "measured"
) -> Row:
    """Run one tool once and score what it reported."""
    fakeweb = ctx.fakeweb
    argv = tool.argv(ctx)
    load = load_average()
    stats = run_process(
        argv,
        cwd=ROOT,
        stdout=ctx.run_dir / "stdout",
        stderr=ctx.run_dir / "stderr",
        timeout=timeout,
    )
    server = fakeweb.stats()
    findings = tool.parse(ctx, (ctx.run_dir / "stdout").read_text(errors="replace"))
    workload = fakeweb.workload
    truth = {fakeweb.url(p) for p in workload.truth(Kind.DEAD)}
    soft = {fakeweb.url(p) for p in workload.truth(Kind.SOFT404)}
    accuracy = score(findings.dead, truth, findings.soft404, soft)
    notes = list(findings.notes)
    notes.append(", ".join(f"{m} {n}" for m, n in sorted(server["methods"].items())))
    failed = stats.returncode not in tool.ok_codes or stats.timed_out
    if failed:
        tail = (ctx.run_dir / "stderr").read_text(errors="replace").strip().splitlines()[-1:]
        notes.append(f"exit {stats.returncode}{' (timed out)' if stats.timed_out else ''}: {tail}")
    return Row(
        tool=tool.name, workload=ctx.workload, run=run, wall=stats.wall, cpu=stats.cpu,
        rss_mb=stats.rss_mb, returncode=stats.returncode, failed=failed,
        timed_out=stats.timed_out, server=server, load=load, reported_dead=accuracy.reported,
        true_dead=accuracy.true_positives, truth_dead=accuracy.truth,
        soft404_caught=accuracy.soft404_caught, soft404_truth=accuracy.soft404_truth,
        precision=accuracy.precision, recall=accuracy.recall,
        stored_bytes=findings.stored_bytes, bodies=findings.bodies,
        body_bytes=findings.body_bytes, phase=phase, notes=notes,
    )  # fmt: skip


def run_recheck(tool: Tool, ctx: RunContext, run: int, timeout: float) -> list[Row]:
    """A first crawl, then the same crawl again with nothing changed, on the same store."""
    first = measure_run(tool, ctx, run, timeout, phase="first")
    ctx.fakeweb.reset(state=False)  # the flaky pages have recovered: nothing changes
    second_dir = ctx.run_dir / "again"
    second_dir.mkdir()
    again = RunContext(ctx.fakeweb, second_dir, ctx.workload, ctx.concurrency, ctx.data_dir)
    return [first, measure_run(tool, again, run, timeout)]


class Bench:
    """One bench session: options, output folder, time budget, collected rows."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.rows: list[Row] = []
        self.skipped: dict[str, str] = {}
        self.out = Path(tempfile.mkdtemp(prefix="bench-", dir=_out_dir()))

    def over_budget(self) -> bool:
        """True once the session's time budget is spent: no new run starts."""
        return time.monotonic() - self.started > float(self.args.budget)

    def tools_for(self, workload: str) -> list[Tool]:
        """The available tools that take part in a workload, installing peers on first use."""
        chosen = []
        for tool in all_tools():
            if tool.name not in self.args.tools or workload not in tool.workloads:
                continue
            if tool.name not in self.skipped:
                reason = unavailable(tool)
                if reason is not None:
                    self.skipped[tool.name] = reason
            if tool.name not in self.skipped:
                chosen.append(tool)
        return chosen

    def run_workload(self, workload: str) -> None:
        """Every round of every tool on one workload, against one fake-web process."""
        tools = self.tools_for(workload)
        if not tools:
            return
        server = "deep" if workload == "deep" else "flat"
        with FakeWeb(
            server,
            latency=self.args.latency,
            scale=self.args.scale,
            lifetime=self.args.budget + 600,
        ) as web:
            for run in range(1, self.args.runs + 1):
                for tool in tools:
                    if self.over_budget():
                        return
                    for row in self.run_one(tool, web, workload, run):
                        self.rows.append(row)
                        _progress(row)

    def run_one(self, tool: Tool, web: FakeWeb, workload: str, run: int) -> list[Row]:
        """One run of one tool: a fresh folder, a fresh store, zeroed server counters."""
        run_dir = self.out / f"{workload}-{tool.name}-{run}"
        run_dir.mkdir()
        ctx = RunContext(web, run_dir, workload, self.args.concurrency, run_dir / "data")
        web.reset()
        if workload == "recheck":
            rows = run_recheck(tool, ctx, run, self.args.timeout)
        else:
            rows = [measure_run(tool, ctx, run, self.args.timeout)]
        shutil.rmtree(run_dir / "data", ignore_errors=True)  # measured already; bounds disk use
        return rows


def _out_dir() -> Path:
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _progress(row: Row) -> None:
    rate = row.server.get("rate_p1_p99")
    print(
        f"  {row.workload:8} {row.tool:20} run {row.run} {row.phase:8} wall {row.wall:6.2f}s "
        f"req/s {rate or 0:7.0f} cpu {row.cpu:6.2f}s rss {row.rss_mb:6.1f}MB "
        f"dead {row.reported_dead}/{row.truth_dead} exit {row.returncode} {'; '.join(row.notes)}",
        flush=True,
    )


def measure_help(runs: int = HELP_RUNS) -> float | None:
    """Median wall time of `crawler --help`, or None when the CLI does not run."""
    if not CRAWLER.exists():
        return None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([str(CRAWLER), "--help"], capture_output=True, timeout=30)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            return None
    return statistics.median(times)


def kept_notes(path: Path) -> str:
    """Hand-written notes at the end of the previous results file, kept across rewrites."""
    if not path.exists():
        return ""
    old = path.read_text()
    at = old.find(NOTES_MARKER)
    return "\n" + old[at:] if at >= 0 else ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bench's options; `--quick` is a one-round smoke version on a tenth of the workload."""
    tool_names = [t.name for t in all_tools()]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and workload (median)")
    parser.add_argument(
        "--workload", action="append", choices=WORKLOADS, help="repeatable; default all"
    )
    parser.add_argument("--tools", default=",".join(tool_names), help="comma-separated subset")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--latency", type=float, default=DEFAULT_LATENCY, help="seconds per response"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="workload size factor")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_RUN_TIMEOUT, help="seconds per run"
    )
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET, help="seconds for the whole bench"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 run, scale 0.1, no throttled LinkChecker"
    )
    parser.add_argument("--from-json", type=Path, help="only re-render a run's results.json")
    parser.add_argument("--output", type=Path, help="default bench/RESULTS.md (quick: bench/out/)")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = ROOT / "bench" / ("out/RESULTS-quick.md" if args.quick else "RESULTS.md")
    if args.quick:
        args.runs, args.scale = 1, 0.1
        if args.tools == parser.get_default("tools"):
            args.tools = ",".join(QUICK_TOOLS)
    args.tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    unknown = args.tools - set(tool_names)
    if unknown:
        parser.error(
            f"unknown tools: {', '.join(sorted(unknown))} (known: {', '.join(tool_names)})"
        )
    args.workload = args.workload or list(WORKLOADS)
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the bench and write the results (or only re-render them with `--from-json`)."""
    args = parse_args(argv)
    if args.from_json is not None:
        rerender(args.from_json, args.output)
        return
    bench = Bench(args)
    command = " ".join([".venv/bin/python -m bench", *(sys.argv[1:] if argv is None else argv)])
    print(f"bench: {command}  (raw output in {bench.out})", flush=True)
    load_start = load_average()
    help_time = measure_help()
    for workload in args.workload:
        print(f"workload {workload}", flush=True)
        bench.run_workload(workload)
    raw = {
        "command": command,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "help_time": help_time,
        "load": [load_start, load_average()],
        "over_budget": bench.over_budget(),
        "rows": [asdict(r) for r in bench.rows],
        "skipped": bench.skipped,
    }
    (bench.out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    write_results(raw, bench.rows, args, args.output)


def write_results(
    raw: dict[str, Any], rows: list[Row], args: argparse.Namespace, out: Path
) -> None:
    """Render the results page, keeping the hand-written notes of the previous one."""
    load = raw.get("load") or [rows[0].load if rows else 0.0, rows[-1].load if rows else 0.0]
    text = report.render(
        rows, raw["skipped"], command=raw["command"], args=args, help_time=raw["help_time"],
        date=raw.get("date") or f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC (rendered)",
        load=(load[0], load[1]), over_budget=bool(raw.get("over_budget")),
    )  # fmt: skip
    out.write_text(text + kept_notes(out))
    print(f"wrote {out}", flush=True)


def rerender(path: Path, out: Path) -> None:
    """Write the results page again from a run's results.json, without measuring anything."""
    raw = json.loads(path.read_text())
    codes = {tool.name: tool.ok_codes for tool in all_tools()}
    rows = []
    for data in raw["rows"]:
        row = Row(**{k: v for k, v in data.items() if k in Row.__dataclass_fields__})
        row.failed = row.timed_out or row.returncode not in codes.get(row.tool, (0,))
        if not row.failed:
            row.notes = [n for n in row.notes if not n.startswith("exit ")]
        rows.append(row)
    if "help_time" not in raw:
        raw["help_time"] = measure_help()
    args = parse_args(raw["command"].split()[3:])
    write_results(raw, rows, args, out)
