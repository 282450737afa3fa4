"""Hard stops and faults, with the real CLI in a child process: nothing lost, nothing corrupted.

- `kill -9` mid-crawl: the SQLite store opens, passes integrity_check, keeps the nodes flushed so
  far (a second's worth at most, not a batch) and shows the snapshot `running`, which
  `Store.recover_interrupted()` turns `partial` with the summary of those nodes; running the
  same crawl again does not refetch what finished. (Ctrl-C and SIGTERM: tests/test_interrupt.py.)
- Disk full (RLIMIT_FSIZE on the child: writes past the limit fail with EFBIG) and a database
  locked by another process: a one-line error and a non-zero exit, never a snapshot shown complete.
- A bad config file: exit 3 and a message naming the file and the key; nothing starts.
- The checker's own network down: the run is `inconclusive`, not a wave of dead links.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.model import Outcome
from crawler.store import Store
from crawler.storewriter import FLUSH_NODES
from tests.fakesite import FakeSite, fake_site_fixture  # noqa: F401
from tests.hostile import HostileServer, cli_env, hostile_fixture, run_cli  # noqa: F401

pytestmark = pytest.mark.timeout(180)

SLOW_LINKS = 400  # more than a batch (FLUSH_NODES): a kill lands before all are written
SLOW_DELAY = 0.3


def db_path(tmp_path: Path) -> Path:
    """Where the CLI child keeps its SQLite store (CRAWLER_DATA_DIR=tmp_path/data)."""
    return tmp_path / "data" / "crawler.db"


def saved_node_count(path: Path) -> int:
    """Nodes committed so far, read by a separate connection (0 while nothing is there)."""
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=1)) as conn:
            return int(conn.execute("SELECT count(*) FROM nodes").fetchone()[0])
    except sqlite3.Error:
        return 0


def slow_article(tmp_path: Path, site: FakeSite) -> Path:
    """A plain-text article citing SLOW_LINKS distinct slow-ish pages of the fake site."""
    path = tmp_path / "slow.txt"
    # Distinct delays give distinct pages ("Slept 0.30042"): identical bodies on one host would
    # wait for the crawl's soft-404 probe, which queues behind every other link of that host.
    lines = (site.url(f"/slow?delay={SLOW_DELAY + i / 100_000:.5f}") for i in range(SLOW_LINKS))
    path.write_text("Many sources.\n" + "\n".join(lines) + "\n")
    return path


def one_line_error(stderr: str) -> str:
    """The CLI's error message, checked to be a single line without a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def killed_crawl(tmp_path: Path, fake_site: FakeSite) -> Iterator[tuple[Path, Path, FakeSite]]:
    """A CLI crawl SIGKILLed once its first fetched nodes are committed (after the root)."""
    article = slow_article(tmp_path, fake_site)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "crawl", str(article), "--allow-private"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while saved_node_count(db_path(tmp_path)) <= 1:
            assert proc.poll() is None, "the crawl ended before it could be killed"
            assert time.monotonic() < deadline, "no batch of nodes was committed in 60 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    yield article, db_path(tmp_path), fake_site


def test_sigkill_leaves_a_consistent_store(killed_crawl: tuple[Path, Path, FakeSite]) -> None:
    article, path, _ = killed_crawl
    with Store.open(f"sqlite:///{path}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        (info,) = store.list_snapshots()
        assert info.outcome is Outcome.RUNNING and info.finished_at is None
        saved = store.saved_nodes(info.snapshot_id)
        # Written within a second of finishing, not once a batch of FLUSH_NODES was full.
        assert 1 < len(saved) < FLUSH_NODES, len(saved)
        loaded = store.load_snapshot(info.snapshot_id)
        assert len(loaded.root.walk()) == len(saved) and loaded.root.url == str(article)
        assert store.recover_interrupted() == [info.snapshot_id]
        (recovered,) = store.list_snapshots()
        assert recovered.outcome is Outcome.PARTIAL
        assert recovered.summary == loaded.summary() and recovered.summary["nodes"] == len(saved)
        assert store.recover_interrupted() == []


def test_store_is_usable_after_sigkill(
    tmp_path: Path, killed_crawl: tuple[Path, Path, FakeSite]
) -> None:
    article, path, _ = killed_crawl
    with Store.open(f"sqlite:///{path}") as store:
        killed = len(store.saved_nodes(store.list_snapshots()[0].snapshot_id))
    # Listed before any crawl runs again: already partial, with the nodes it saved.
    listed = run_cli(["snapshots"], tmp_path)
    assert [line.split("\t")[2:4] for line in listed.stdout.splitlines()] == [
        ["partial", f"{killed} nodes"]
    ]
    done = run_cli(["crawl", str(article), "--allow-private", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "complete"
    listed = run_cli(["snapshots"], tmp_path)
    rows = sorted(line.split("\t")[2:4] for line in listed.stdout.splitlines())
    # The killed run is recovered on start, its summary counted from the nodes it saved.
    assert rows == [["complete", f"{SLOW_LINKS + 1} nodes"], ["partial", f"{killed} nodes"]]


def finished_urls(path: Path) -> list[str]:
    """The URLs the killed crawl had finished and saved (there are some)."""
    with Store.open(f"sqlite:///{path}") as store:
        (info,) = store.list_snapshots()
        finished = [n.url for n in store.saved_nodes(info.snapshot_id) if n.parent_key is not None]
    assert finished
    return finished


def test_rerun_does_not_refetch_finished_nodes(
    tmp_path: Path, killed_crawl: tuple[Path, Path, FakeSite]
) -> None:
    article, path, site = killed_crawl
    finished = finished_urls(path)
    done = run_cli(["crawl", str(article), "--allow-private", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    asked = [path for _, path, _ in site.requests]
    refetched = [url for url in finished if asked.count(url.removeprefix(site.base_url)) > 1]
    assert refetched == []  # re-running the crawl did not refetch what finished before the kill
    assert len(set(asked)) == SLOW_LINKS  # and everything else was fetched


def test_rerun_with_other_answer_settings_fetches_everything(
    tmp_path: Path, killed_crawl: tuple[Path, Path, FakeSite]
) -> None:
    article, path, site = killed_crawl
    finished = finished_urls(path)
    # TLS verification off now: answers taken with it on are not this crawl's to reuse.
    command = ["crawl", str(article), "--allow-private", "--insecure", "--format", "json"]
    done = run_cli(command, tmp_path)
    assert done.returncode == 0, done.stderr
    asked = [path for _, path, _ in site.requests]
    assert [url for url in finished if asked.count(url.removeprefix(site.base_url)) != 2] == []
    assert "resumed" not in done.stdout


# -- disk full, database locked ------------------------------------------------------------
def test_disk_full_is_a_clear_error(tmp_path: Path, fake_site: FakeSite) -> None:
    path = db_path(tmp_path)
    Store.open(f"sqlite:///{path}").close()  # the schema exists; the crawl's writes will not fit
    limit = path.stat().st_size + 32 * 1024
    article = tmp_path / "dead.txt"
    article.write_text("".join(f"{fake_site.url('/dead')}?n={i}\n" for i in range(SLOW_LINKS)))

    def limit_file_size() -> None:  # runs in the child before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "crawler", "crawl", str(article), "--allow-private"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
        check=False,
    )
    assert done.returncode == 1
    message = one_line_error(done.stderr)
    assert message.startswith("crawler: error:") and str(path) in message
    assert "disk" in message  # SQLite says "disk I/O error" for EFBIG, "disk full" for ENOSPC
    assert done.stdout == ""  # no report of a half-written snapshot
    with Store.open(f"sqlite:///{path}") as store:
        assert [s.outcome for s in store.list_snapshots()] == [Outcome.RUNNING]


def test_locked_database_is_a_clear_error(tmp_path: Path, fake_site: FakeSite) -> None:
    path = db_path(tmp_path)
    Store.open(f"sqlite:///{path}").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        article = tmp_path / "a.txt"
        article.write_text(fake_site.url("/news/target.html") + "\n")
        env = cli_env(tmp_path, CRAWLER_DATABASE_URL=f"sqlite:///{path}?timeout=0.5")
        started = time.monotonic()
        done = run_cli(["crawl", str(article), "--allow-private"], tmp_path, env, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert done.returncode == 1 and done.stdout == ""
    message = one_line_error(done.stderr)
    assert message == f"crawler: error: database is locked by another process: {path}"
    assert elapsed < 30
    with Store.open(f"sqlite:///{path}") as store:
        assert store.list_snapshots() == []  # nothing half-written


_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(60)
"""


# -- bad config -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[fetch]\nconcurrency = "lots"\n', ["fetch.concurrency", "integer"]),
        ("[fetch]\nurl_timeout = -1\n", ["fetch.url_timeout", "greater than 0"]),
        ("[crawl]\ndepht = 2\n", ["crawl.depht", "unknown key"]),
        ("[fetch\nconcurrency = 1\n", ["invalid TOML"]),
        ('[fetch]\ntransport = "curl"\n', ["fetch.transport", "aiohttp", "httpx"]),
    ],
)
def test_bad_config_file(tmp_path: Path, toml: str, words: list[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    article = tmp_path / "a.txt"
    article.write_text("http://127.0.0.1:9/x\n")
    env = cli_env(tmp_path)
    done = run_cli(["--config", str(config), "crawl", str(article)], tmp_path, env)
    assert done.returncode == 3 and done.stdout == ""
    message = one_line_error(done.stderr)
    assert str(config) in message, message
    for word in words:
        assert word in message, (word, message)
    assert not (tmp_path / "data").exists()  # nothing started: not even the store


def test_missing_config_file(tmp_path: Path) -> None:
    done = run_cli(["--config", str(tmp_path / "nope.toml"), "snapshots"], tmp_path)
    assert done.returncode == 3
    assert one_line_error(done.stderr).endswith("nope.toml: config file not found")


# -- the checker's own network going down -------------------------------------------------
def closed_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on (bound, read, released)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_network_down_is_inconclusive(tmp_path: Path) -> None:
    urls = [f"http://127.0.0.1:{port}/story" for port in closed_ports(4)]
    urls += ["http://no-such-host-1.invalid/a", "https://no-such-host-2.invalid/b"]
    article = tmp_path / "a.txt"
    article.write_text("\n".join(urls) + "\n")
    done = run_cli(["crawl", str(article), "--allow-private", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr  # nothing is reported dead
    data = json.loads(done.stdout)
    assert data["outcome"] == "inconclusive" and data["summary"]["dead"] == 0
    for child in data["root"]["children"]:
        assert child["verdict"] == "error" and "network looked down" in child["reason"]
