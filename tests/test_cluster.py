"""Cluster mode against the real PostgreSQL: dispatcher, workers as subprocesses, a killed worker.

The fake site is `tests/fakesite.FakeSite`, subclassed (the module itself is not extended) to
keep every request's arrival time for the per-host rate check. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakesite import ARTICLE, FakeSite
from tests.test_budget import (
    libpq,
    max_in_window,
)

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = (
    "import sys, crawler.cli, crawler.crawl, crawler.watching, crawler.budget\n"
    "from crawler.cli import cli\n"
    "cli.main(args=['db', 'upgrade'], prog_name='crawler', standalone_mode=False)\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'procrastinate'))\n"
    "print('IMPORTED', bad)\n"
)
LAG = 0.3  # seconds a request may arrive after its reserved slot (event loop and CPU contention)
HOST_RATE = 20.0  # requests per second to the fake site, for the whole cluster

pytestmark = pytest.mark.timeout(180)


class TimedSite(FakeSite):
    """The fake site, also noting when each request arrived (time.monotonic)."""

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.times: list[float] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.times.append(time.monotonic())
        return await super()._dispatch(request)


@pytest.fixture(name="site")
def site_fixture() -> Iterator[TimedSite]:
    with TimedSite(latency=0.02) as site:
        yield site


# -- helpers -------------------------------------------------------------------------------------
def cluster_env(tmp_path: Path, pg_url: str) -> dict[str, str]:
    """Environment for the CLI subprocesses: the plain libpq URL, no config file, loopback ok."""
    config = tmp_path / "empty.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.update(
        CRAWLER_CONFIG=str(config),
        CRAWLER_DATABASE_URL=libpq(pg_url),
        CRAWLER_FETCH_ALLOW_PRIVATE_NETWORKS="true",
        CRAWLER_FETCH_BACKOFF_BASE="0.05",
        PYTHONPATH=str(REPO),
    )
    return env


@contextmanager
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `crawler ...` subprocesses; all are stopped (then killed) on the way out."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler", *args], cwd=REPO, env=env, stdout=out, stderr=out
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def add_watches(pg_url: str, sources: list[str]) -> list[int]:
    """Watches due now, every hour (so each is run once within the test)."""
    from crawler.store import Store
    from crawler.store.watches import add_watch

    now = datetime.now(UTC)
    with Store.open(pg_url) as store:
        return [add_watch(store, s, now=now, every=timedelta(hours=1)).watch_id for s in sources]


def query(pg_url: str, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def wait_until(check: Callable[[], bool], timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def assert_within_budget(times: list[float], rate: float) -> None:
    """The server saw at most `rate` requests per second (slots are kept in the database clock;
    arrivals may lag their slot by scheduling delays, up to LAG seconds on a busy 2-CPU box)."""
    span = max(times) - min(times)
    print(
        f"requests={len(times)} span={span:.2f}s mean={(len(times) - 1) / span:.2f}/s "
        f"max1s={max_in_window(times, 1.0)} max2s={max_in_window(times, 2.0)}"
    )
    assert len(times) <= rate * (span + LAG) + 1
    for window in (1.0, 2.0, 4.0):
        assert max_in_window(times, window) <= rate * (window + LAG) + 1


def done_runs(pg_url: str) -> int:
    return int(query(pg_url, "SELECT count(*) FROM watch_runs WHERE status = 'done'")[0][0])


# -- pure parts and the embedded mode -----------------------------------------------------------
def test_database_urls_map_between_sqlalchemy_and_libpq() -> None:
    from crawler.cluster import is_postgres_url, libpq_url, sqlalchemy_url

    assert sqlalchemy_url("postgresql://u@db/x") == "postgresql+psycopg://u@db/x"
    assert sqlalchemy_url("postgres://u@db/x") == "postgresql+psycopg://u@db/x"
    assert sqlalchemy_url("sqlite:///a.db") == "sqlite:///a.db"
    assert libpq_url("postgresql+psycopg://u:p@db:5433/x?sslmode=require") == (
        "postgresql://u:p@db:5433/x?sslmode=require"
    )
    assert is_postgres_url("postgresql+psycopg://db/x") and not is_postgres_url("sqlite:///x")


def test_embedded_mode_imports_neither_procrastinate_nor_psycopg(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.update(CRAWLER_DATA_DIR=str(tmp_path / "data"), CRAWLER_CONFIG=str(tmp_path / "e.toml"))
    (tmp_path / "e.toml").write_text("")
    out = subprocess.run(
        [sys.executable, "-c", EMBEDDED], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout
    assert (tmp_path / "data" / "crawler.db").is_file()  # `db upgrade` made the SQLite schema


def test_workers_refuse_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env.update(CRAWLER_DATA_DIR=str(tmp_path), CRAWLER_CONFIG=str(tmp_path / "e.toml"))
    (tmp_path / "e.toml").write_text("")
    out = run_cli("worker", env=env)
    assert out.returncode == 3
    assert "need PostgreSQL" in out.stderr


# -- dispatcher and runs, in process ------------------------------------------------------------
@pytest.mark.postgres
def test_db_upgrade_installs_store_and_queue_once(tmp_path: Path, pg_url: str) -> None:
    env = cluster_env(tmp_path, pg_url)
    first, second = run_cli("db", "upgrade", env=env), run_cli("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "job queue installed" in first.stdout
    assert second.returncode == 0 and "job queue present" in second.stdout
    tables = {r[0] for r in query(pg_url, "SELECT tablename FROM pg_tables")}
    assert {"snapshots", "watch_runs", "host_budget", "procrastinate_jobs"} <= tables


@pytest.mark.postgres
async def test_two_dispatchers_queue_each_due_watch_once(tmp_path: Path, pg_url: str) -> None:
    import asyncio

    from crawler.cluster import build_app, defer_run, dispatch_tick, ensure_queue_schema
    from crawler.store import Store

    ids = add_watches(pg_url, [f"https://news.example/{i}" for i in range(5)])
    app = build_app(pg_url)
    with Store.open(pg_url) as one, Store.open(pg_url) as two:
        async with app.open_async():
            await ensure_queue_schema(app)
            now = datetime.now(UTC) + timedelta(seconds=1)
            ticks = await asyncio.gather(
                *(dispatch_tick(app, s, now, stalled_after=60) for s in (one, two, one, two))
            )
            again = await dispatch_tick(app, one, now, stalled_after=60)
            due = query(pg_url, "SELECT due_at FROM watch_runs WHERE watch_id = :w", w=ids[0])
            assert not await defer_run(app, ids[0], due[0][0])  # the queueing lock holds
    assert sum(t.queued for t in ticks) == 5 and again.queued == 0
    jobs = query(pg_url, "SELECT args->>'watch_id' FROM procrastinate_jobs")
    assert sorted(int(r[0]) for r in jobs) == sorted(ids)


@pytest.mark.postgres
async def test_a_retried_run_whose_snapshot_finished_does_not_crawl_again(pg_url: str) -> None:
    from crawler.cluster import Runtime, claim_run
    from crawler.config import Settings
    from crawler.fetch import Fetcher
    from crawler.model import Outcome
    from crawler.store import Store

    (watch_id,) = add_watches(pg_url, ["https://news.example/a"])
    due = datetime.now(UTC)
    with Store.open(pg_url) as store:
        first = claim_run(store, watch_id, due, due)
        assert first is not None and first.attempts == 1
        # The first attempt finished its crawl, then its worker died before marking the run.
        snap = store.begin_snapshot(
            "https://news.example/a", due + timedelta(seconds=1), watch_id=watch_id
        )
        store.finish_snapshot(
            snap, finished_at=due + timedelta(seconds=2), outcome=Outcome.COMPLETE, summary={}
        )
        runtime = Runtime(Settings(), store, Fetcher(Settings().fetch))  # never fetches here
        assert await runtime.run(watch_id, due) == "already-done"
        assert await runtime.run(watch_id, due) == "already-done"
        assert claim_run(store, watch_id, due, due) is None
        assert store.stats()["snapshots"] == 1
    row = query(pg_url, "SELECT status, attempts, snapshot_id FROM watch_runs")[0]
    assert tuple(row) == ("done", 2, snap)


# -- the cluster, as subprocesses ---------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_and_two_dispatchers_crawl_each_watch_once_within_the_host_budget(
    tmp_path: Path, pg_url: str, site: TimedSite
) -> None:
    env = cluster_env(tmp_path, pg_url)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    sources = [site.url(f"{ARTICLE}?watch={i}") for i in range(4)]
    ids = add_watches(pg_url, sources)
    logs = [tmp_path / f"{name}.log" for name in ("w1", "w2", "d1", "d2")]
    rate = str(HOST_RATE)
    with processes() as start:
        for log in logs[:2]:
            start(
                "worker",
                "--concurrency",
                "2",
                "--heartbeat",
                "1",
                "--host-rate",
                rate,
                env=env,
                log=log,
            )
        for log in logs[2:]:
            start("dispatcher", "--interval", "0.3", env=env, log=log)
        wait_until(lambda: done_runs(pg_url) == len(ids), 120, "every watch run", logs)
        time.sleep(1.5)  # a few more dispatcher ticks: nothing may be queued again
    snaps = query(pg_url, "SELECT watch_id, outcome, finished_at FROM snapshots ORDER BY watch_id")
    assert sorted(r.watch_id for r in snaps) == sorted(ids)  # exactly one snapshot per watch
    assert all(r.outcome == "complete" and r.finished_at is not None for r in snaps)
    runs = query(pg_url, "SELECT watch_id, attempts, worker FROM watch_runs")
    assert sorted(r.watch_id for r in runs) == sorted(ids)
    assert {r.attempts for r in runs} == {1}
    assert len({r.worker for r in runs}) == 2  # both workers took jobs
    # Politeness: ungated, these requests would arrive within a fraction of a second.
    assert len(site.times) > 3 * HOST_RATE
    assert_within_budget(site.times, HOST_RATE)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_workers_job_is_finished_by_another(
    tmp_path: Path, pg_url: str, site: TimedSite
) -> None:
    env = cluster_env(tmp_path, pg_url)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    (watch_id,) = add_watches(pg_url, [site.url(ARTICLE)])
    logs = [tmp_path / f"{name}.log" for name in ("first", "dispatcher", "second")]
    slow = ("--heartbeat", "0.5", "--host-rate", "6")
    with processes() as start:
        first = start("worker", *slow, env=env, log=logs[0])
        start("dispatcher", "--interval", "0.3", "--stalled-after", "2", env=env, log=logs[1])
        wait_until(lambda: len(site.times) >= 8, 60, "the first worker to be mid-crawl", logs)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        seen_by_first = len(site.times)
        start("worker", *slow, env=env, log=logs[2])
        wait_until(
            lambda: done_runs(pg_url) == 1, 90, "the run to finish on the other worker", logs
        )
    assert len(site.times) > seen_by_first  # the second worker did fetch
    run = query(pg_url, "SELECT attempts, snapshot_id FROM watch_runs")[0]
    assert run.attempts == 2
    snaps = query(
        pg_url, "SELECT id, outcome, finished_at FROM snapshots WHERE watch_id = :w ORDER BY id",
        w=watch_id,
    )  # fmt: skip
    complete = [s for s in snaps if s.outcome == "complete" and s.finished_at is not None]
    assert [s.id for s in complete] == [run.snapshot_id]  # one complete snapshot for the due time
    assert all(s.outcome == "partial" for s in snaps if s.id != run.snapshot_id)
