"""Measure cluster throughput with 1, 2 and 4 worker processes (the numbers in docs/scaling.md).

    .venv/bin/python docs/scaling_measure.py [--watches 24] [--workers 1 2 4] [--latency 0.05]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres). For each worker count it makes a fresh
database, starts the fake news site (tests/fakesite.py) with `--latency` seconds per answer,
adds N watches of its main article (distinct query strings, so N distinct sources), starts the
workers (`crawler worker`) and one `crawler dispatcher` as real subprocesses, and times the
wall clock from the first dispatch until every run is done. CPU seconds are read with psutil
for the workers and for all PostgreSQL server processes; store growth from `Store.stats()`.

It lives in docs/ (next to the write-up it feeds) rather than in tests/: it asserts nothing and
takes a minute, and bench/ belongs to the single-process benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crawler.store import Store  # noqa: E402
from crawler.store.watches import add_watch  # noqa: E402
from tests.fakesite import ARTICLE, FakeSite  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOST_RATE = 10_000.0  # high enough not to bind: this measures the workers, not politeness
TIMEOUT = 600.0


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL server process."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def run_once(workers: int, watches: int, latency: float, concurrency: int) -> dict[str, Any]:
    """One measurement on a fresh database; returns its figures."""
    name = f"crawler_measure_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        with FakeSite(latency=latency) as site:
            return _measure(url, site, workers, watches, concurrency)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.update(
        CRAWLER_CONFIG=os.devnull,
        CRAWLER_DATABASE_URL=url.replace("postgresql+psycopg://", "postgresql://"),
        CRAWLER_FETCH_ALLOW_PRIVATE_NETWORKS="true",
        CRAWLER_FETCH_BACKOFF_BASE="0.05",
        PYTHONPATH=str(REPO),
    )
    return env


def _scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def _measure(
    url: str, site: FakeSite, workers: int, watches: int, concurrency: int
) -> dict[str, Any]:
    env = _env(url)
    cli = [sys.executable, "-m", "crawler"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=REPO, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    now = datetime.now(UTC)
    with Store.open(url) as store:
        for i in range(watches):
            add_watch(store, site.url(f"{ARTICLE}?w={i}"), now=now, every=timedelta(days=1))
    worker_args = ["worker", "--concurrency", str(concurrency), "--host-rate", str(HOST_RATE)]
    procs = [
        subprocess.Popen([*cli, *worker_args], env=env, cwd=REPO, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        _wait(lambda: _scalar(url, "SELECT count(*) FROM procrastinate_workers") >= workers)
        pg_before, started = postgres_cpu(), time.monotonic()
        workers_before = sum(_cpu(p) for p in procs)  # startup (imports) is not per-job work
        site_before = _own_cpu()  # the fake site serves from a thread of this process
        dispatcher = subprocess.Popen([*cli, "dispatcher", "--interval", "0.2"], env=env,
                                      cwd=REPO, stderr=subprocess.DEVNULL)  # fmt: skip
        procs.append(dispatcher)
        done = "SELECT count(*) FROM watch_runs WHERE status = 'done'"
        _wait(lambda: _scalar(url, done) >= watches)
        elapsed = time.monotonic() - started
        pg_cpu = postgres_cpu() - pg_before
        site_cpu = _own_cpu() - site_before
        worker_cpu = sum(_cpu(p) for p in procs[:workers]) - workers_before
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    with Store.open(url) as store:
        stats = store.stats()
    node_bytes = _scalar(url, "SELECT pg_total_relation_size('nodes')")
    run_seconds = _scalar(
        url, "SELECT avg(extract(epoch FROM finished_at - started_at)) FROM watch_runs"
    )
    slowest = _scalar(
        url,
        "SELECT string_agg(u || '=' || ms, ' ') FROM (SELECT regexp_replace(url, '^https?://[^/]+',"
        " '') AS u, round(avg(elapsed_ms)) AS ms FROM nodes WHERE elapsed_ms IS NOT NULL"
        " GROUP BY 1 ORDER BY 2 DESC LIMIT 4) s",
    )
    return {
        "workers": workers,
        "watches": watches,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(watches / elapsed, 2),
        "requests": len(site.requests),
        "requests_per_s": round(len(site.requests) / elapsed, 1),
        "worker_cpu_s_per_job": round(worker_cpu / watches, 3),
        "postgres_cpu_s_per_job": round(pg_cpu / watches, 3),
        "site_cpu_s_per_job": round(site_cpu / watches, 3),
        "cpu_busy": round((worker_cpu + pg_cpu + site_cpu) / elapsed, 2),
        "run_seconds_mean": round(float(run_seconds), 2),
        "slowest_nodes_ms": slowest,
        "nodes_per_job": stats["nodes"] / watches,
        "bytes_per_node_row": int(node_bytes / max(1, stats["nodes"])),
        "body_bytes_stored": stats["body_bytes_stored"],
    }


def _cpu(proc: subprocess.Popen[bytes]) -> float:
    """User+system CPU seconds of a still-running subprocess."""
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _wait(check: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("measurement did not finish")
        time.sleep(0.1)


def corpus_links_per_article() -> float | None:
    """Mean number of links the extractor finds in the real news pages of the shared corpus."""
    pages = sorted((REPO.parent / "shared/corpus/c_news_pages/readability").glob("*/source.html"))
    if not pages:
        return None
    from crawler.sources import parse_article

    counts = [
        len(parse_article(str(p), p.read_bytes(), None, base_url="https://example.org/").links)
        for p in pages
    ]
    return sum(counts) / len(counts)


def main() -> None:
    """Run the measurements and print one JSON line per worker count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watches", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps({"corpus_links_per_article": corpus_links_per_article()}))
    for workers in args.workers:
        result = run_once(workers, args.watches, args.latency, args.concurrency)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
