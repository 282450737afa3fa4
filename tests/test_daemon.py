"""`crawler daemon` as a real subprocess against the fake site, with one-second schedules.

The fake site runs in its own thread; the webhook receiver (aiohttp) runs in the test's
event loop, so the test waits with `asyncio.sleep` and never blocks it. Every wait polls the
database or the log with a deadline, and every daemon is killed in a `finally`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawler.crawl import CUT_SHORT_REASON
from crawler.model import Flag, Node, Outcome, Verdict
from crawler.store import Store
from crawler.store.tables import watches
from crawler.store.watches import Watch, list_watches
from tests.fakesite import FakeSite

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0  # python start-up, imports and migrations on a loaded machine
STOP_TIMEOUT = 15.0


# -- helpers -------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """Webhook messages posted to the test, in arrival order."""

    url: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)

    def events(self) -> list[tuple[str, str]]:
        """(kind, url) of every event of every message, in order."""
        return [(e["kind"], e["url"]) for m in self.messages for e in m["events"]]


@pytest.fixture(name="receiver")
async def receiver_fixture() -> AsyncIterator[Receiver]:
    """An aiohttp webhook receiver on 127.0.0.1 (random port) in the test's loop."""
    receiver = Receiver()

    async def hook(request: web.Request) -> web.Response:
        receiver.messages.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def write_config(
    path: Path,
    data_dir: Path,
    watches_: list[dict[str, Any]],
    *,
    webhook: str = "",
    grace: float = 5,
    per_host: int = 8,
) -> Path:
    """A TOML config for loopback crawls with the given [[watch]] entries."""
    lines = [
        "[fetch]",
        "allow_private_networks = true",
        "backoff_base = 0.01",
        "backoff_max = 0.05",
        "read_timeout = 25.0",
        f"per_host_concurrency = {per_host}",
        "[store]",
        f"data_dir = {json.dumps(str(data_dir))}",
        "[history]",
        "dead_after_runs = 2",
        "[daemon]",
        f"grace_seconds = {grace}",
        "[alerts]",
        f"webhooks = [{json.dumps(webhook)}]" if webhook else "webhooks = []",
    ]
    for entry in watches_:
        lines.append("[[watch]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_article(path: Path, site: FakeSite, paths: list[str]) -> str:
    """A Markdown article citing `paths` on the fake site; returns its path as a source."""
    refs = "\n".join(f"- [{p}]({site.url(p)})" for p in paths)
    path.write_text(f"# Story\n\n{refs}\n")
    return str(path)


class Daemon:
    """A `crawler daemon` subprocess with its log in a file."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.config, self.log, self.extra = config, log, extra
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Daemon:
        """Start the daemon; stdout and stderr go to the log file (no pipe to fill)."""
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "crawler", "--config", str(self.config), "daemon",
                *self.extra, cwd=REPO, stdout=out, stderr=out,
                env={**os.environ, "CRAWLER_CONFIG": ""},
            )  # fmt: skip
        await wait_for(lambda: "daemon-start" in self.text(), START_TIMEOUT, "the daemon to start")
        return self

    def text(self) -> str:
        """Everything the daemon logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        """Send a signal to the daemon."""
        assert self.proc is not None and self.proc.returncode is None, self.text()
        self.proc.send_signal(signum)

    async def stop(self) -> int:
        """SIGTERM, then wait for the exit code (bounded)."""
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)

    async def kill(self) -> None:
        """Make sure the process is gone (for `finally`)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 10)


async def wait_for(check: Callable[[], object], seconds: float, what: str) -> Any:
    """Poll `check` every 0.1 s until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


def node_of(store: Store, snapshot_id: int, url: str) -> Node:
    """The first node of `url` in a stored snapshot."""
    snapshot = store.load_snapshot(snapshot_id)
    return next(n for n in snapshot.root.walk() if n.url == url)


def finished_ids(store: Store, source: str) -> list[int]:
    """Finished snapshots of a source, oldest first."""
    infos = store.list_snapshots(source, limit=500)
    return [i.snapshot_id for i in reversed(infos) if i.outcome is not Outcome.RUNNING]


def watch_by_source(store: Store, source: str) -> Watch:
    """The watch of a source."""
    return next(w for w in list_watches(store) if w.source == source)


def run_lines(log: str) -> list[str]:
    """The daemon's per-run log lines."""
    return [line for line in log.splitlines() if " event=run " in line]


# -- tests ---------------------------------------------------------------------------------------


async def test_history_alerts_and_restart(
    tmp_path: Path, fake_site: FakeSite, receiver: Receiver
) -> None:
    toggled = "/news/deep-3.html"
    source = write_article(
        tmp_path / "a.md", fake_site, ["/news/target.html", "/dead", toggled, "/etag.html"]
    )
    overdue = write_article(tmp_path / "b.md", fake_site, ["/news/target.html"])
    not_due = write_article(tmp_path / "c.md", fake_site, ["/news/target.html"])
    config = write_config(
        tmp_path / "crawler.toml",
        tmp_path / "data",
        [
            {"source": source, "every": "1s", "depth": 0},
            {"source": overdue, "every": "1h", "depth": 0},
            {"source": not_due, "every": "1h", "depth": 0},
        ],
        webhook=receiver.url,
    )
    dead_url, toggled_url = fake_site.url("/dead"), fake_site.url(toggled)
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'crawler.db'}")
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        await daemon.start()
        # Runs 1 and 2: /dead is `error` (1 of 2 runs), then dead and newly-dead.
        first, second = await wait_for(lambda: _first_two(store, source), 15, "two runs")
        assert node_of(store, first, dead_url).verdict is Verdict.ERROR
        assert node_of(store, second, dead_url).flags == [Flag.DEAD, Flag.NEWLY_DEAD]

        # The toggled link dies: newly-dead after two failing runs, then recovers.
        fake_site.set_status(toggled, 404)
        dead_at = await wait_for(
            lambda: _latest_with(store, source, toggled_url, Verdict.DEAD), 15, "newly dead"
        )
        assert Flag.NEWLY_DEAD in node_of(store, dead_at, toggled_url).flags
        earlier = [i for i in finished_ids(store, source) if i < dead_at]
        assert node_of(store, earlier[-1], toggled_url).verdict is Verdict.ERROR
        fake_site.set_status(toggled, None)
        back_at = await wait_for(
            lambda: _latest_with(store, source, toggled_url, Verdict.OK, after=dead_at),
            15,
            "recovered",
        )
        assert node_of(store, back_at, toggled_url).flags == [Flag.RECOVERED]
        await wait_for(lambda: len(receiver.messages) >= 3, 10, "three webhook messages")
        assert await daemon.stop() == 0
        log = daemon.text()
        assert "event=daemon-stop" in log
        # One line per run, with counts and a duration.
        runs_a = [line for line in run_lines(log) if f"source={source} " in line]
        assert len(runs_a) == len(finished_ids(store, source))
        assert all(" nodes=5 " in line and " duration=" in line for line in runs_a)

        # Restart: `b` looks overdue by hours (one coalesced run), `c` is not due.
        b_before, c_before = watch_by_source(store, overdue), watch_by_source(store, not_due)
        _make_overdue(store, b_before.watch_id, hours=3)
        count_a, count_c = len(finished_ids(store, source)), len(finished_ids(store, not_due))
        daemon = Daemon(config, tmp_path / "daemon2.log")
        await daemon.start()
        await wait_for(lambda: len(finished_ids(store, source)) >= count_a + 2, 15, "runs of a")
        await asyncio.sleep(0.5)  # room for a wrong extra run of b or c to show
        assert await daemon.stop() == 0
        assert len(finished_ids(store, overdue)) == 2  # once before, once (not 3x) after
        assert len(finished_ids(store, not_due)) == count_c == 1
        c_after = watch_by_source(store, not_due)
        assert c_after.next_run_at == c_before.next_run_at  # the stored schedule was respected
        b_after = watch_by_source(store, overdue)
        assert b_after.next_run_at is not None and b_after.last_run_at is not None
        assert b_after.next_run_at == b_after.last_run_at + timedelta(hours=1)
        # History went on across the restart: /dead stays dead, nobody is newly dead again.
        after_restart = finished_ids(store, source)[count_a]
        assert node_of(store, after_restart, dead_url).flags == [Flag.DEAD]
        assert node_of(store, after_restart, toggled_url).flags == []
    finally:
        await daemon.kill()
        store.close()
    assert receiver.events() == [
        ("newly-dead", dead_url),
        ("newly-dead", toggled_url),
        ("recovered", toggled_url),
    ]
    assert [len(m["events"]) for m in receiver.messages] == [1, 1, 1]


def _first_two(store: Store, source: str) -> tuple[int, int] | None:
    """The first two finished snapshots of a source, once there are two."""
    ids = finished_ids(store, source)
    return (ids[0], ids[1]) if len(ids) >= 2 else None


def _latest_with(
    store: Store, source: str, url: str, verdict: Verdict, after: int = 0
) -> int | None:
    """The newest finished snapshot (after `after`) in which `url` has `verdict`."""
    ids = [i for i in finished_ids(store, source) if i > after]
    if ids and node_of(store, ids[-1], url).verdict is verdict:
        return ids[-1]
    return None


def _make_overdue(store: Store, watch_id: int, *, hours: int) -> None:
    """Pretend the daemon was down: the last run and the due time lie hours back."""
    past = datetime.now(UTC) - timedelta(hours=hours)
    with store.engine.begin() as conn:
        conn.execute(
            watches.update()
            .where(watches.c.id == watch_id)
            .values(last_run_at=past, next_run_at=past + timedelta(hours=1))
        )


async def test_sigterm_mid_crawl_exits_within_grace(tmp_path: Path, fake_site: FakeSite) -> None:
    grace = 2.0
    source = write_article(tmp_path / "slow.md", fake_site, ["/news/target.html", "/slow?delay=20"])
    config = write_config(
        tmp_path / "crawler.toml",
        tmp_path / "data",
        [{"source": source, "every": "1s", "depth": 0}],
        grace=grace,
    )
    db = tmp_path / "data" / "crawler.db"
    daemon = Daemon(config, tmp_path / "daemon.log", "--log-format", "json")
    try:
        await daemon.start()
        await wait_for(lambda: fake_site.in_flight > 0, 15, "the slow request")
        await asyncio.sleep(1.5)  # the 1 s schedule comes due again while the run goes on
        assert fake_site.hits["/slow"] == 1  # ... and no second run of the watch starts
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.proc is not None
        code = await asyncio.wait_for(daemon.proc.wait(), grace + 8)
        took = time.monotonic() - started
    finally:
        await daemon.kill()
    assert code == 0, daemon.text()
    assert grace - 0.2 <= took < grace + 5  # waited out the grace period, then cut short
    with Store.open(f"sqlite:///{db}") as store:
        [info] = store.list_snapshots(source)  # one run, never two at once
        snapshot = store.load_snapshot(info.snapshot_id)
        [row] = list_watches(store)
    assert info.outcome is Outcome.PARTIAL and info.finished_at is not None
    slow = next(n for n in snapshot.root.walk() if n.url.endswith("/slow?delay=20"))
    assert (slow.verdict, slow.reason) == (Verdict.SKIPPED, CUT_SHORT_REASON)
    assert (row.last_outcome, row.last_snapshot_id) == ("partial", info.snapshot_id)
    assert row.next_run_at is not None and row.last_run_at is not None
    assert row.next_run_at <= row.last_run_at  # cut short: due again at once, not 1 s on
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    lines = [json.loads(line) for line in daemon.text().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events[0] == "daemon-start" and events[-1] == "daemon-stop"
    assert "stopping" in events and lines[-1]["cut_short"] == 1
    [run] = [line for line in lines if line["event"] == "run"]
    assert run["cut_short"] is True and run["outcome"] == "partial"


async def test_failing_runs_retry_and_config_reloads(tmp_path: Path, fake_site: FakeSite) -> None:
    missing = tmp_path / "later.md"
    config = tmp_path / "crawler.toml"
    write_config(config, tmp_path / "data", [{"source": str(missing), "every": "1s"}])
    db_url = f"sqlite:///{tmp_path / 'data' / 'crawler.db'}"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        await daemon.start()
        failed = await wait_for(
            lambda: [ln for ln in run_lines(daemon.text()) if "outcome=failed" in ln][1:],
            10,
            "two failed runs",
        )
        assert "later.md" in failed[0] and "level=warning" in failed[0]
        # The config file changes: the new watch is picked up without a restart.
        added = write_article(tmp_path / "added.md", fake_site, ["/news/target.html"])
        watches_ = [{"source": str(missing), "every": "1s"}, {"source": added, "every": "1s"}]
        write_config(config, tmp_path / "data", watches_)
        with Store.open(db_url) as store:
            await wait_for(lambda: finished_ids(store, added), 10, "the added watch to run")
            # The failing source appears: its next tick succeeds.
            write_article(missing, fake_site, ["/news/target.html"])
            await wait_for(lambda: finished_ids(store, str(missing)), 10, "the retried watch")
        daemon.signal(signal.SIGHUP)
        await wait_for(lambda: "event=reload reason=SIGHUP" in daemon.text(), 10, "SIGHUP reload")
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    log = daemon.text()
    assert "event=reload reason=config-changed config_watches=2" in log
    assert "Traceback" not in log


async def test_watches_share_one_fetcher_and_its_host_limit(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    sources = [
        write_article(tmp_path / f"{name}.md", fake_site, ["/slow?delay=1"]) for name in "ab"
    ]
    config = write_config(
        tmp_path / "crawler.toml",
        tmp_path / "data",
        [{"source": source, "every": "1h", "depth": 0} for source in sources],
        per_host=1,
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        await daemon.start()
        with Store.open(f"sqlite:///{tmp_path / 'data' / 'crawler.db'}") as store:
            await wait_for(
                lambda: all(finished_ids(store, s) for s in sources), 15, "both watches to run"
            )
            infos = [store.list_snapshots(source)[0] for source in sources]
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    # Both runs were under way at once, yet the host saw one request at a time.
    assert abs((infos[0].started_at - infos[1].started_at).total_seconds()) < 0.5
    assert all(info.outcome is Outcome.COMPLETE for info in infos)
    assert fake_site.hits["/slow"] == 2 and fake_site.peak_in_flight == 1


def test_log_lines_are_key_value_or_json() -> None:
    import logging

    from crawler.schedule import StructuredFormatter

    when = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    fields = {"watch": 3, "source": 'a b"c\nd', "snapshot": None, "ok": True, "duration": 0.25}
    record = logging.LogRecord("crawler.daemon", logging.INFO, "x", 1, "run", None, None)
    record.fields = {**fields, "next_run": when}
    kv = StructuredFormatter("kv").format(record)
    assert kv.split(" ", 2)[1:] == [
        "level=info",
        'event=run watch=3 source="a b\\"c\\nd" snapshot=- ok=true duration=0.250 '
        "next_run=2025-03-01T12:00:00+00:00",
    ]
    parsed = json.loads(StructuredFormatter("json").format(record))
    assert parsed["event"] == "run" and parsed["source"] == fields["source"]
    assert (parsed["snapshot"], parsed["next_run"]) == (None, when.isoformat())
    other = logging.LogRecord("crawler.alerts", logging.WARNING, "x", 1, "failed %s", ("x",), None)
    assert (
        StructuredFormatter("kv")
        .format(other)
        .endswith('level=warning event=log logger=crawler.alerts msg="failed x"')
    )
    with pytest.raises(ValueError, match="log format"):
        StructuredFormatter("xml")
