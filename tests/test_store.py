"""crawler.store against real databases: SQLite files in tmp_path and, where it runs, PostgreSQL.

Every storage test runs on both backends. The PostgreSQL ones use a throwaway database
(`crawler_test_<random>`) made once per session and emptied before each test, and skip
cleanly when the server on 127.0.0.1:5432 is unreachable.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, func, insert
from sqlalchemy import select as sql_select
from sqlalchemy.exc import OperationalError

from crawler.errors import ConfigError, StoreError
from crawler.model import Flag, Hop, Node, Outcome, Relation, Verdict
from crawler.store import Store
from crawler.store.engine import HEAD_REVISION, alembic_config
from crawler.store.tables import bodies, metadata, nodes, watches
from tests.conftest import empty_postgres

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

pytestmark = pytest.mark.timeout(90)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a not-yet-existing SQLite file (its directory too), or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'crawler.db'}"
    url: str = request.getfixturevalue("pg_database")
    empty_postgres(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open store on an empty, freshly migrated database."""
    with Store.open(db_url) as opened:
        yield opened


# -- helpers -------------------------------------------------------------------------------------


def full_node(key: int, parent_key: int | None, relation: Relation, depth: int) -> Node:
    """A node with every field set to a value that depends on its key."""
    url = f"https://news.example/{key}/ünïcode?q={key}"
    return Node(
        url=url,
        normalized_url=url.lower(),
        relation=relation,
        depth=depth,
        key=key,
        parent_key=parent_key,
        verdict=list(Verdict)[key % len(Verdict)],
        reason=f"reason {key}",
        status_code=200 + key,
        final_url=f"{url}#final",
        redirects=[Hop(f"{url}/a", 301), Hop(f"{url}/b", 308)],
        attempts=key + 1,
        flags=[Flag.RETRIED.value, f"custom-{key}"],
        duplicate_of=f"https://news.example/{key - 1}" if key else None,
        duplicate_kind="normalized",
        title=f"Title {key} — “quoted”",
        canonical_url=f"{url}/canonical",
        published="2025-02-28",
        content_sha256=f"{key:064x}",
        content_type="text/html; charset=utf-8",
        elapsed_ms=12.5 + key,
        etag=f'W/"{key}"',
        last_modified="Sat, 01 Mar 2025 10:00:00 GMT",
        line=10 + key,
        text=f"anchor {key}\nsecond line",
    )


def full_tree() -> Node:
    """root(0) -> 1, 2, 3; 1 -> 4, 5; 4 -> 6, with every field set on every node."""
    shape = [(0, None, Relation.ROOT, 0), (1, 0, Relation.REFERENCE, 1)]
    shape += [(2, 0, Relation.REFERENCE, 1), (3, 0, Relation.REFERENCE, 1)]
    shape += [(4, 1, Relation.RELATED, 2), (5, 1, Relation.RELATED, 2), (6, 4, Relation.RELATED, 3)]
    by_key = {k: full_node(k, p, rel, d) for k, p, rel, d in shape}
    for node in by_key.values():
        if node.parent_key is not None:
            by_key[node.parent_key].children.append(node)
    bare = by_key[3]  # one node with every optional field empty, to round-trip NULLs
    for name in ("reason", "status_code", "final_url", "duplicate_of", "duplicate_kind", "title"):
        setattr(bare, name, None)
    bare.redirects, bare.flags = [], []
    return by_key[0]


def simple_node(key: int, url: str, **fields: object) -> Node:
    """A reference under root 0 (or the root itself for key 0)."""
    root = key == 0
    return Node(
        url=url,
        normalized_url=url,
        relation=Relation.ROOT if root else Relation.REFERENCE,
        depth=0 if root else 1,
        key=key,
        parent_key=None if root else 0,
        **fields,  # type: ignore[arg-type]
    )


def finished(store: Store, source: str, started_at: datetime, batch: list[Node]) -> int:
    """Save one whole, completed snapshot and return its id."""
    snapshot_id = store.begin_snapshot(source, started_at)
    store.save_nodes(snapshot_id, batch)
    store.finish_snapshot(
        snapshot_id,
        finished_at=started_at + timedelta(minutes=1),
        outcome=Outcome.COMPLETE,
        summary={"nodes": len(batch)},
    )
    return snapshot_id


# -- round trips ---------------------------------------------------------------------------------


def test_snapshot_tree_round_trips_every_field(store: Store) -> None:
    root = full_tree()
    flat = root.walk()
    started = datetime(2025, 3, 1, 14, 0, 0, 654321, tzinfo=timezone(timedelta(hours=2)))
    snapshot_id = store.begin_snapshot("article.md", started, insecure=True)
    # Saved out of order and in two batches: the tree must come back from parent_key alone.
    store.save_nodes(snapshot_id, [n for n in reversed(flat) if n.key % 2])
    store.save_nodes(snapshot_id, [n for n in flat if not n.key % 2])
    store.finish_snapshot(
        snapshot_id, finished_at=T0, outcome=Outcome.PARTIAL, summary={"nodes": len(flat)}
    )

    loaded = store.load_snapshot(snapshot_id)

    assert loaded.root == root
    assert [n.key for n in loaded.root.walk()] == [0, 1, 4, 6, 5, 2, 3]
    assert (loaded.source, loaded.outcome, loaded.insecure) == ("article.md", Outcome.PARTIAL, True)
    assert loaded.snapshot_id == snapshot_id
    assert loaded.started_at == started and loaded.started_at.tzinfo is UTC
    assert loaded.finished_at == T0 and loaded.finished_at.tzinfo is UTC
    assert loaded.started_at.hour == 12  # 14:00+02:00 stored as 12:00 UTC


def test_snapshot_info_keeps_settings_watch_and_summary(store: Store) -> None:
    with store.engine.begin() as conn:
        watch_id = conn.execute(
            insert(watches)
            .values(source="feed.md", enabled=True, created_at=T0)
            .returning(watches.c.id)
        ).scalar_one()
    settings = {"crawl": {"depth": 2}, "fetch": {"verify_tls": False}}
    snapshot_id = store.begin_snapshot("feed.md", T0, watch_id=watch_id, settings=settings)
    running = store.list_snapshots()[0]
    assert (running.outcome, running.finished_at, running.summary) == (Outcome.RUNNING, None, {})

    summary = {"nodes": 3, "dead": 1}
    store.finish_snapshot(snapshot_id, finished_at=T0, outcome=Outcome.COMPLETE, summary=summary)

    [info] = store.list_snapshots("feed.md")
    assert info.snapshot_id == snapshot_id
    assert (info.watch_id, info.settings, info.summary) == (watch_id, settings, summary)
    assert (info.outcome, info.insecure, info.started_at, info.finished_at) == (
        Outcome.COMPLETE,
        False,
        T0,
        T0,
    )


def test_save_nodes_upserts_by_snapshot_and_key(store: Store) -> None:
    snapshot_id = store.begin_snapshot("a.md", T0)
    root = simple_node(0, "https://a.example/")
    early = simple_node(1, "https://a.example/x")  # queued, not fetched yet
    store.save_nodes(snapshot_id, [root, early])
    other_id = store.begin_snapshot("b.md", T0)
    store.save_nodes(other_id, [simple_node(0, "https://b.example/")])

    fetched = simple_node(
        1, "https://a.example/x", verdict=Verdict.DEAD, status_code=404, reason="HTTP 404"
    )
    fetched.add_flag(Flag.DEAD)
    store.save_nodes(snapshot_id, [fetched])

    saved = store.saved_nodes(snapshot_id)
    assert [n.key for n in saved] == [0, 1]
    assert saved[1] == fetched
    assert store.saved_nodes(other_id)[0].url == "https://b.example/"
    assert store.stats()["nodes"] == 3
    store.save_nodes(snapshot_id, [])  # an empty batch is a no-op
    assert store.stats()["nodes"] == 3


# -- bodies --------------------------------------------------------------------------------------


def test_bodies_are_stored_once_and_compressed(store: Store) -> None:
    page = ("<p>Die Nachrichten des Tages — ünïcode.</p>\n" * 400).encode()
    first = store.put_body(page)
    again = store.put_body(page)
    other = store.put_body(b"\x00\xff" * 10)
    empty = store.put_body(b"")

    assert first == again == hashlib.sha256(page).hexdigest()
    assert store.get_body(first) == page
    assert store.get_body(other) == b"\x00\xff" * 10
    assert store.get_body(empty) == b""
    assert store.has_body(first) and not store.has_body("0" * 64)
    assert store.get_body("0" * 64) is None
    stats = store.stats()
    assert stats["bodies"] == 3
    assert stats["body_bytes"] == len(page) + 20
    with store.engine.connect() as conn:
        row = conn.execute(
            sql_select(bodies.c.size, func.length(bodies.c.data)).where(bodies.c.sha256 == first)
        ).one()
    assert row[0] == len(page)
    assert row[1] < len(page) // 10  # repetitive HTML compresses far below a tenth
    assert stats["body_bytes_stored"] < stats["body_bytes"]


# -- crash recovery and listings -----------------------------------------------------------------


def test_recover_interrupted_marks_running_snapshots_partial(store: Store) -> None:
    done = finished(store, "a.md", T0, [simple_node(0, "https://a.example/")])
    crashed = store.begin_snapshot("b.md", T0 + timedelta(hours=1))
    store.save_nodes(crashed, [simple_node(0, "https://b.example/")])

    assert store.recover_interrupted() == [crashed]
    assert store.recover_interrupted() == []
    outcomes = {i.snapshot_id: i.outcome for i in store.list_snapshots()}
    assert outcomes == {done: Outcome.COMPLETE, crashed: Outcome.PARTIAL}
    assert store.load_snapshot(crashed).outcome is Outcome.PARTIAL


def test_list_and_latest_are_newest_first(store: Store) -> None:
    root = [simple_node(0, "https://a.example/")]
    # Ids and start times deliberately disagree: ordering is by started_at.
    middle = finished(store, "a.md", T0 + timedelta(days=1), root)
    oldest = finished(store, "a.md", T0, root)
    newest = finished(store, "a.md", T0 + timedelta(days=2), root)
    other = finished(store, "b.md", T0 + timedelta(days=3), root)
    running = store.begin_snapshot("a.md", T0 + timedelta(days=4))

    assert [i.snapshot_id for i in store.list_snapshots("a.md")] == [
        running,
        newest,
        middle,
        oldest,
    ]
    assert [i.snapshot_id for i in store.list_snapshots(limit=2)] == [running, other]
    assert len(store.list_snapshots()) == 5
    assert store.list_snapshots("nobody.md") == []
    assert store.latest_snapshot_id("a.md") == newest  # the running one is not finished
    assert store.latest_snapshot_id("a.md", before=running) == newest
    assert store.latest_snapshot_id("a.md", before=newest) == middle  # started before `newest`
    assert store.latest_snapshot_id("a.md", before=middle) == oldest
    assert store.latest_snapshot_id("a.md", before=oldest) is None
    assert store.latest_snapshot_id("nobody.md") is None


def test_previous_fetch_and_link_history_span_snapshots(store: Store) -> None:
    url = "https://a.example/story"
    first = finished(
        store,
        "a.md",
        T0,
        [
            simple_node(0, "https://a.example/"),
            simple_node(
                1, url, verdict=Verdict.OK, status_code=200, etag='"v1"', content_sha256="1" * 64
            ),
        ],
    )
    second = finished(
        store,
        "a.md",
        T0 + timedelta(days=1),
        [
            simple_node(0, "https://a.example/"),
            simple_node(1, url, verdict=Verdict.DEAD, status_code=404, reason="HTTP 404"),
            simple_node(2, url, verdict=Verdict.DEAD, status_code=404, duplicate_of=url),
            simple_node(3, "https://a.example/other", verdict=Verdict.OK, status_code=200),
        ],
    )
    queued = store.begin_snapshot("a.md", T0 + timedelta(days=2))
    store.save_nodes(queued, [simple_node(0, "https://a.example/"), simple_node(1, url)])

    previous = store.previous_fetch(url)
    assert previous is not None
    assert (previous.snapshot_id, previous.verdict, previous.status_code) == (
        second,
        Verdict.DEAD,
        404,
    )
    assert (previous.etag, previous.content_sha256) == (None, None)
    assert store.previous_fetch("https://a.example/never") is None

    history = store.link_history(url)
    assert [(h.snapshot_id, h.verdict, h.status_code) for h in history] == [
        (queued, Verdict.SKIPPED, None),
        (second, Verdict.DEAD, 404),
        (first, Verdict.OK, 200),
    ]
    assert history[1].reason == "HTTP 404" and history[1].outcome is Outcome.COMPLETE
    assert history[2].started_at == T0 and history[0].outcome is Outcome.RUNNING
    assert [h.snapshot_id for h in store.link_history(url, limit=1)] == [queued]
    assert store.link_history("https://a.example/never") == []

    batch = store.previous_fetches([url, "https://a.example/other", "https://a.example/never"])
    assert set(batch) == {url, "https://a.example/other"}
    assert batch[url] == previous
    assert batch["https://a.example/other"] == store.previous_fetch("https://a.example/other")


def test_link_history_keeps_redirect_and_canonical_duplicates(store: Store) -> None:
    """They were fetched under their own URL; repeats of a URL (exact, normalized) were not."""
    first, redir, canon = (f"https://a.example/{p}" for p in ("ok", "redir", "canon"))
    kinds = {"redirect": redir, "canonical": canon, "exact": first, "normalized": first}
    batch = [simple_node(0, "https://a.example/"), simple_node(1, first, verdict=Verdict.OK)]
    for key, (kind, url) in enumerate(kinds.items(), start=2):
        duplicate = {"duplicate_of": first, "duplicate_kind": kind}
        batch.append(simple_node(key, url, verdict=Verdict.OK, **duplicate))
    snapshot_id = finished(store, "a.md", T0, batch)
    assert [h.snapshot_id for h in store.link_history(redir)] == [snapshot_id]
    assert [h.snapshot_id for h in store.link_history(canon)] == [snapshot_id]
    assert [h.snapshot_id for h in store.link_history(first)] == [snapshot_id]  # once


def test_put_bodies_stores_each_content_once(store: Store) -> None:
    one, two = b"<p>one</p>" * 100, b"<p>two</p>" * 100
    first = store.put_body(one)
    digests = store.put_bodies([one, two, two])
    assert digests[0] == first and digests[1] == digests[2] != first
    assert store.get_body(digests[1]) == two
    assert store.stats()["bodies"] == 2
    assert store.put_bodies([]) == []


def test_missing_snapshot_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no snapshot 999"):
        store.load_snapshot(999)
    with pytest.raises(StoreError, match="no snapshot 999"):
        store.finish_snapshot(999, finished_at=T0, outcome=Outcome.COMPLETE, summary={})
    empty = store.begin_snapshot("a.md", T0)
    with pytest.raises(StoreError, match="no saved nodes"):
        store.load_snapshot(empty)
    assert store.saved_nodes(empty) == []


def test_two_writers_at_once_both_succeed(db_url: str) -> None:
    errors: list[BaseException] = []

    def crawl(source: str) -> None:
        try:
            with Store.open(db_url) as own:
                snapshot_id = own.begin_snapshot(source, T0)
                for batch in range(20):
                    keys = range(batch * 10, batch * 10 + 10)
                    own.save_nodes(snapshot_id, [simple_node(k, f"https://x/{k}") for k in keys])
                own.finish_snapshot(
                    snapshot_id, finished_at=T0, outcome=Outcome.COMPLETE, summary={}
                )
        except BaseException as exc:
            errors.append(exc)

    Store.open(db_url).close()  # migrate first, so the writers do not race on the schema
    threads = [threading.Thread(target=crawl, args=(f"{i}.md",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with Store.open(db_url) as check:
        assert check.stats()["nodes"] == 400
        assert {i.outcome for i in check.list_snapshots()} == {Outcome.COMPLETE}


# -- schema --------------------------------------------------------------------------------------


@pytest.mark.parametrize("through_alembic", [True, False], ids=["migrations", "create_all"])
def test_migration_builds_the_declared_schema_and_upgrade_is_repeatable(
    db_url: str, through_alembic: bool
) -> None:
    """The migrations and the declared tables (used directly for a new database) agree."""
    if through_alembic:
        from crawler.store.engine import make_engine, upgrade_schema

        engine = make_engine(db_url)
        upgrade_schema(engine, fresh_shortcut=False)
        engine.dispose()
    with Store.open(db_url) as first:
        snapshot_id = first.begin_snapshot("a.md", T0)
        with first.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert diff == []
    assert version == HEAD_REVISION
    with Store.open(db_url) as second:  # upgrading an up-to-date database changes nothing
        assert [i.snapshot_id for i in second.list_snapshots()] == [snapshot_id]
    with Store.open(db_url, upgrade=False) as third:
        assert third.stats()["snapshots"] == 1


def test_upgrade_false_leaves_an_empty_database_empty(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with Store.open(f"sqlite:///{path}", upgrade=False) as store:
        with store.engine.connect() as conn:
            tables = conn.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
        assert tables == []
        with pytest.raises(StoreError, match="no such table"):
            store.stats()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store, store.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


def test_nodes_go_with_their_snapshot(store: Store) -> None:
    snapshot_id = finished(store, "a.md", T0, [simple_node(0, "https://a.example/")])
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM snapshots WHERE id = {snapshot_id}")
        assert conn.execute(sql_select(func.count()).select_from(nodes)).scalar_one() == 0


# -- failures ------------------------------------------------------------------------------------


def lock_url(db_url: str) -> str:
    """The same database, with a short wait for locks."""
    if db_url.startswith("sqlite"):
        return f"{db_url}?timeout=0.2"
    return f"{db_url}?options=-c%20lock_timeout%3D200"


def test_a_locked_database_is_a_store_error(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.begin_snapshot("a.md", T0)
    with Store.open(lock_url(db_url)) as store:
        if db_url.startswith("sqlite"):
            holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            holder.execute("UPDATE snapshots SET source = 'held'")
            release = holder.rollback
        else:
            engine = create_engine(db_url)
            conn = engine.connect()
            conn.exec_driver_sql("LOCK TABLE snapshots IN ACCESS EXCLUSIVE MODE")

            def release() -> None:
                conn.rollback()
                conn.close()
                engine.dispose()

        try:
            with pytest.raises(StoreError, match="database is locked by another process") as info:
                store.begin_snapshot("b.md", T0)
        finally:
            release()
        assert "\n" not in str(info.value)
        assert info.value.__cause__ is not None
        assert store.begin_snapshot("b.md", T0) == 2  # usable again once the lock is gone


def test_unopenable_sqlite_paths_are_store_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=re.escape(f"cannot open database at {blocker}/sub/x.db")):
        Store.open(f"sqlite:///{blocker}/sub/x.db")
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(
        StoreError, match=re.escape(f"cannot open database at {directory}") + "$"
    ) as info:
        Store.open(f"sqlite:///{directory}")
    assert info.value.__cause__ is not None


def test_a_file_that_is_not_a_database_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match="^" + re.escape(f"corrupt database: {path}") + "$"):
        Store.open(f"sqlite:///{path}")


def test_a_full_disk_is_a_store_error(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'small.db'}") as store:
        store.engine.dispose()  # new connections get a page cap: SQLite then reports SQLITE_FULL
        event.listen(
            store.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA max_page_count=40")
        )
        with pytest.raises(StoreError, match=r"^disk full: ") as info:
            store.put_body(os.urandom(1 << 20))
        assert isinstance(info.value.__cause__, OperationalError)
        assert store.stats()["bodies"] == 0  # the failed write left nothing behind


def test_unreachable_postgres_is_a_store_error() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/nothing"
    with pytest.raises(StoreError, match="cannot open database at") as info:
        Store.open(url)
    assert "secret" not in str(info.value) and "127.0.0.1:1/nothing" in str(info.value)


def test_a_malformed_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="malformed database URL"):
        Store.open("not a url at all")


def test_the_store_imports_no_postgres_driver() -> None:
    code = (
        "import sys, crawler.store\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'procrastinate'))\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


CRASHING_CRAWL = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from crawler.model import Node, Relation
    from crawler.store import Store

    def node(key):
        url = f"https://crash.example/{key}"
        if key == 0:
            return Node(url=url, normalized_url=url, relation=Relation.ROOT, depth=0)
        return Node(url=url, normalized_url=url, relation=Relation.REFERENCE, depth=1, key=key,
                    parent_key=0)

    store = Store.open(sys.argv[1])
    snapshot_id = store.begin_snapshot("crash.md", datetime.now(UTC))
    store.save_nodes(snapshot_id, [node(k) for k in range(50)])
    print(snapshot_id, flush=True)
    for batch in range(1000):  # bounded; the parent kills us long before the end
        start = 50 + batch * 200
        store.save_nodes(snapshot_id, [node(k) for k in range(start, start + 200)])
    """
)


def test_a_killed_crawl_keeps_its_saved_batches(db_url: str) -> None:
    Store.open(db_url).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CRAWL, db_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        assert ready, "the child never saved its first batch"
        assert child.stdout is not None
        snapshot_id = int(child.stdout.readline())
        threading.Event().wait(0.3)  # let it get into the middle of later batches
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""

    with Store.open(db_url) as store:
        saved = store.saved_nodes(snapshot_id)
        assert len(saved) >= 50
        assert (len(saved) - 50) % 200 == 0  # a batch is all there or not at all
        assert [n.key for n in saved] == list(range(len(saved)))
        assert store.list_snapshots()[0].outcome is Outcome.RUNNING
        assert store.recover_interrupted() == [snapshot_id]
        loaded = store.load_snapshot(snapshot_id)
        assert loaded.outcome is Outcome.PARTIAL
        assert len(loaded.root.children) == len(saved) - 1
        if db_url.startswith("sqlite"):
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_head_revision_constant_matches_the_migrations() -> None:
    """The shortcut that skips Alembic at start-up must know the real head."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_opening_a_current_store_does_not_load_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'c.db'}"
    Store.open(url).close()
    code = (
        "import sys\nfrom crawler.store import Store\n"
        f"Store.open({url!r}).close()\nprint('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unsupported_database_is_refused_before_its_driver_loads() -> None:
    # The URL may come from elsewhere than the config file (`crawler worker --database-url`).
    with pytest.raises(ConfigError, match=r"unsupported database mysql://u:\*\*\*@h/x"):
        Store.open("mysql://u:secret@h/x")
