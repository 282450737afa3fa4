"""Watches in the store (SQLite and PostgreSQL) and one watch run against the fake site.

CRUD and `timelines_for` run on both backends (fixtures from tests/test_store.py). The run
tests crawl the fake site in process: history turns a 404 into `error`, then `dead` +
`newly-dead` on the second run, and a re-check of /etag.html is a 304 that stores no body.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from crawler.config import Settings, WatchConfig
from crawler.errors import ConfigError
from crawler.history import build_timelines
from crawler.model import Flag, Node, Outcome, Relation, Verdict
from crawler.store import Store
from crawler.store.watches import (
    FAILED,
    Watch,
    add_watch,
    get_watch,
    list_watches,
    record_run,
    remove_watch,
    timelines_for,
    upsert_watch,
)
from crawler.watching import run_watch, sync_config_watches, watch_settings
from tests import test_store
from tests.fakesite import ETAG, FakeSite
from tests.test_crawl import fast_settings

pytestmark = pytest.mark.timeout(60)

# The backend-parametrized database fixtures of tests/test_store.py, shared.
db_url = test_store.db_url

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(name="store")
def store_fixture(db_url: str) -> Iterator[Store]:
    """An open store on an empty, freshly migrated database (SQLite or PostgreSQL)."""
    with Store.open(db_url) as opened:
        yield opened


# -- CRUD ----------------------------------------------------------------------------------------


def test_add_get_list_remove(store: Store) -> None:
    hourly = add_watch(store, "a.md", now=T0, every=timedelta(hours=6))
    daily = add_watch(store, "https://b.example/story", now=T0, cron="0 7 * * *", depth=2)
    assert hourly.next_run_at == T0  # never run: an interval watch is due at once
    assert daily.next_run_at == datetime(2025, 3, 2, 7, 0, tzinfo=UTC)  # the first 07:00 after
    assert (hourly.schedule, daily.schedule) == ("every 6h", "cron 0 7 * * *")
    assert get_watch(store, daily.watch_id) == daily and daily.depth == 2
    assert list_watches(store) == [hourly, daily]
    assert remove_watch(store, hourly.watch_id) is True
    assert remove_watch(store, hourly.watch_id) is False
    assert get_watch(store, hourly.watch_id) is None
    assert [w.watch_id for w in list_watches(store, enabled_only=True)] == [daily.watch_id]


def test_a_watch_needs_exactly_one_schedule(store: Store) -> None:
    with pytest.raises(ValueError, match="exactly one schedule"):
        add_watch(store, "a.md", now=T0)
    with pytest.raises(ValueError, match="exactly one schedule"):
        add_watch(store, "a.md", now=T0, every=timedelta(hours=1), cron="0 7 * * *")
    with pytest.raises(ValueError, match="invalid cron"):
        add_watch(store, "a.md", now=T0, cron="every day")
    assert list_watches(store) == []


def test_record_run_and_removal_keep_snapshots(store: Store) -> None:
    watch = add_watch(store, "a.md", now=T0, every=timedelta(minutes=15))
    snapshot_id = store.begin_snapshot("a.md", T0, watch_id=watch.watch_id)
    later = T0 + timedelta(minutes=15)
    record_run(
        store, watch.watch_id, started_at=T0, outcome="complete", snapshot_id=snapshot_id,
        next_run_at=later,
    )  # fmt: skip
    got = get_watch(store, watch.watch_id)
    assert got is not None
    assert (got.last_run_at, got.next_run_at, got.last_outcome, got.last_snapshot_id) == (
        T0,
        later,
        "complete",
        snapshot_id,
    )
    record_run(
        store, watch.watch_id, started_at=later, outcome=FAILED, snapshot_id=None, next_run_at=later
    )
    failed = get_watch(store, watch.watch_id)
    assert failed is not None and failed.last_outcome == FAILED
    assert failed.last_snapshot_id == snapshot_id  # a failed run keeps the last snapshot
    remove_watch(store, watch.watch_id)
    [info] = store.list_snapshots("a.md")
    assert info.snapshot_id == snapshot_id and info.watch_id is None


def test_upsert_by_source_keeps_or_moves_the_next_run(store: Store) -> None:
    first, changed = upsert_watch(store, "a.md", now=T0, every=timedelta(hours=1))
    assert changed and first.next_run_at == T0
    ran_at = T0 + timedelta(minutes=5)
    record_run(
        store, first.watch_id, started_at=ran_at, outcome="complete", snapshot_id=None,
        next_run_at=ran_at + timedelta(hours=1),
    )  # fmt: skip
    # Same schedule again (a config reload): nothing changes, the clock is not reset.
    same, changed = upsert_watch(
        store, "a.md", now=T0 + timedelta(minutes=10), every=timedelta(hours=1)
    )
    assert not changed and same.next_run_at == ran_at + timedelta(hours=1)
    # A new interval counts from the last run; a new depth alone keeps the next run.
    faster, changed = upsert_watch(
        store, "a.md", now=T0 + timedelta(minutes=10), every=timedelta(minutes=30)
    )
    assert changed and faster.watch_id == first.watch_id
    assert faster.next_run_at == ran_at + timedelta(minutes=30)
    deeper, changed = upsert_watch(
        store, "a.md", now=T0 + timedelta(minutes=11), every=timedelta(minutes=30), depth=3
    )
    assert changed and deeper.depth == 3 and deeper.next_run_at == faster.next_run_at
    assert len(list_watches(store)) == 1


def test_config_watches_are_upserted_and_checked_first(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    good = WatchConfig(source="a.md", every="6h")
    cron = WatchConfig(source="https://b.example/story", cron="0 7 * * *", depth=0)
    synced = [w.source for w in sync_config_watches(store, [good, cron], T0)]
    assert synced == [str(tmp_path / "a.md"), "https://b.example/story"]  # a file: absolute
    assert sync_config_watches(store, [good, cron], T0 + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match=r"unsupported source 'ftp://c\.example/story\.md'"):
        WatchConfig(source="ftp://c.example/story.md", every="1h")  # refused as the config loads
    # ... and by the sync too, for an entry made without validation.
    bad = WatchConfig.model_construct(source="ftp://c.example/story.md", every="1h", cron=None)
    with pytest.raises(ConfigError, match=r"^x.toml: watch\[1\] \(ftp://c.example/story.md\): "):
        sync_config_watches(store, [good, bad], T0, origin="x.toml")
    with pytest.raises(ValueError, match="exactly one of 'every' and 'cron'"):
        WatchConfig(source="d.md")
    assert [w.source for w in list_watches(store)] == synced


def test_the_config_owns_the_watches_it_declares_and_no_others(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kept, dropped = WatchConfig(source="a.md", every="6h"), WatchConfig(source="b.md", every="1h")
    by_hand, _ = upsert_watch(store, str(tmp_path / "c.md"), now=T0, every=timedelta(hours=1))
    sync_config_watches(store, [kept, dropped], T0)
    # The entry for b.md leaves the config: its watch stops; c.md (added by hand) is untouched.
    [gone] = sync_config_watches(store, [kept], T0 + timedelta(minutes=1))
    assert gone.source == str(tmp_path / "b.md") and not gone.enabled
    rows = {w.source: w for w in list_watches(store)}
    assert [w.source for w in list_watches(store, enabled_only=True)] == [
        by_hand.source,
        str(tmp_path / "a.md"),
    ]
    assert not rows[by_hand.source].from_config and rows[str(tmp_path / "a.md")].from_config
    assert sync_config_watches(store, [], T0)[0].source == str(tmp_path / "a.md")
    assert [w.source for w in list_watches(store, enabled_only=True)] == [by_hand.source]
    # Declared again, a watch comes back as it was (same id, same schedule).
    [back] = sync_config_watches(store, [dropped], T0 + timedelta(minutes=2))
    assert (back.watch_id, back.enabled, back.every) == (gone.watch_id, True, timedelta(hours=1))


def test_a_config_entry_sets_a_hand_added_watch_but_never_claims_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    by_hand, _ = upsert_watch(store, str(tmp_path / "w.md"), now=T0, every=timedelta(hours=2))
    [set_] = sync_config_watches(store, [WatchConfig(source="w.md", every="4h")], T0)
    assert (set_.watch_id, set_.every, set_.from_config) == (
        by_hand.watch_id,
        timedelta(hours=4),
        False,
    )
    assert sync_config_watches(store, [], T0 + timedelta(minutes=1)) == []  # the entry is gone
    [still] = list_watches(store, enabled_only=True)
    assert (still.watch_id, still.enabled) == (by_hand.watch_id, True)
    # Added by hand, a config-owned watch becomes the user's.
    sync_config_watches(store, [WatchConfig(source="x.md", every="1h")], T0)
    taken, _ = upsert_watch(store, str(tmp_path / "x.md"), now=T0, every=timedelta(hours=1))
    assert not taken.from_config


# -- timelines -----------------------------------------------------------------------------------


def _node(key: int, url: str, verdict: Verdict, *, sha: str | None = None) -> Node:
    return Node(
        url=url,
        normalized_url=url,
        relation=Relation.ROOT if key == 0 else Relation.REFERENCE,
        depth=0 if key == 0 else 1,
        key=key,
        parent_key=None if key == 0 else 0,
        verdict=verdict,
        content_sha256=sha,
        reason=f"{verdict} {key}",
    )


def _stored(
    store: Store, source: str, at: datetime, outcome: Outcome, verdicts: list[Verdict]
) -> int:
    """A finished snapshot of `source`: the root plus x, y, and a duplicate of x."""
    snapshot_id = store.begin_snapshot(source, at)
    nodes = [_node(0, source, Verdict.OK)]
    nodes += [
        _node(1, "https://x.example/", verdicts[0], sha=f"{at.day:064x}"),
        _node(2, "https://y.example/", verdicts[1]),
        _node(3, "https://x.example/", Verdict.SKIPPED),  # a later node of x: not its state
    ]
    store.save_nodes(snapshot_id, nodes)
    if outcome is not Outcome.RUNNING:
        store.finish_snapshot(snapshot_id, finished_at=at, outcome=outcome, summary={})
    return snapshot_id


def test_timelines_for_matches_build_timelines_in_one_query(store: Store) -> None:
    ok, dead, err = Verdict.OK, Verdict.DEAD, Verdict.ERROR
    _stored(store, "a.md", T0, Outcome.COMPLETE, [ok, ok])
    _stored(store, "a.md", T0 + timedelta(days=1), Outcome.INCONCLUSIVE, [err, err])
    _stored(store, "a.md", T0 + timedelta(days=2), Outcome.COMPLETE, [dead, ok])
    _stored(store, "a.md", T0 + timedelta(days=3), Outcome.PARTIAL, [err, ok])
    _stored(store, "other.md", T0 + timedelta(days=1), Outcome.COMPLETE, [ok, dead])
    _stored(store, "a.md", T0 + timedelta(days=4), Outcome.RUNNING, [dead, dead])  # this run
    finished = [
        store.load_snapshot(i.snapshot_id)
        for i in store.list_snapshots("a.md")
        if i.outcome is not Outcome.RUNNING
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        timelines = timelines_for(store, "a.md")
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert timelines == build_timelines(finished)
    assert [s.verdict for s in timelines["https://x.example/"]] == [ok, err, dead, err]
    assert [s.outcome for s in timelines["https://x.example/"]][1] is Outcome.INCONCLUSIVE
    # Narrowed to some URLs, and to the latest two snapshots.
    narrow = timelines_for(store, "a.md", ["https://y.example/", "https://nowhere/"], limit=2)
    assert list(narrow) == ["https://y.example/"]
    assert [s.at for s in narrow["https://y.example/"]] == [
        T0 + timedelta(days=2),
        T0 + timedelta(days=3),
    ]
    assert timelines_for(store, "nobody.md") == {}


# -- one run against the fake site ---------------------------------------------------------------


def run_settings(tmp_path: Path) -> Settings:
    """Loopback settings with history after two runs and no jitter."""
    base = fast_settings(tmp_path, depth=0)
    return base.model_copy(
        update={"history": base.history.model_copy(update={"dead_after_runs": 2})}
    )


async def test_a_dead_link_is_dead_on_the_second_run(tmp_path: Path, fake_site: FakeSite) -> None:
    from crawler.fetch import Fetcher

    settings = run_settings(tmp_path)
    article = tmp_path / "story.md"
    target = fake_site.url("/news/deep-3.html")
    article.write_text(
        f"# Story\n\n- [deep]({target})\n- [record]({fake_site.url('/news/target.html')})\n"
    )
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(article), now=T0, every=timedelta(hours=1), depth=0)
        async with Fetcher(settings.fetch) as fetcher:
            first = await run_watch(watch, settings, store, fetcher)
            fake_site.set_status("/news/deep-3.html", 404)
            second = await run_watch(watch, settings, store, fetcher)
            third = await run_watch(watch, settings, store, fetcher)
            fake_site.set_status("/news/deep-3.html", None)
            fourth = await run_watch(watch, settings, store, fetcher)
        states = [_state(store, run.snapshot_id, target) for run in (first, second, third, fourth)]
        row = get_watch(store, watch.watch_id)
    assert [run.outcome for run in (first, second, third, fourth)] == ["complete"] * 4
    assert states[0] == (Verdict.OK, [])
    assert states[1][0] is Verdict.ERROR and states[1][1] == []
    assert states[2] == (Verdict.DEAD, [Flag.DEAD, Flag.NEWLY_DEAD])
    assert states[3] == (Verdict.OK, [Flag.RECOVERED])
    assert (second.counts["dead"], third.counts["newly_dead"], fourth.counts["recovered"]) == (
        0,
        1,
        1,
    )
    assert row is not None and row.last_snapshot_id == fourth.snapshot_id
    assert row.last_run_at == fourth.started_at
    assert row.next_run_at == fourth.started_at + timedelta(hours=1)


def _state(store: Store, snapshot_id: int | None, url: str) -> tuple[Verdict, list[str]]:
    """A link's stored verdict and flags in one snapshot."""
    assert snapshot_id is not None
    snapshot = store.load_snapshot(snapshot_id)
    [node] = [n for n in snapshot.root.walk() if n.url == url]
    assert node.reason is not None or node.verdict is Verdict.OK
    if node.verdict is Verdict.ERROR:
        assert node.reason is not None and node.reason.startswith("failed 1 of 2 runs")
    return node.verdict, node.flags


async def test_a_recheck_is_conditional_and_stores_no_new_body(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    from crawler.fetch import Fetcher

    settings = run_settings(tmp_path)
    article = tmp_path / "story.md"
    article.write_text(f"# Story\n\n- [cacheable]({fake_site.url('/etag.html')})\n")
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(article), now=T0, every=timedelta(hours=1))
        async with Fetcher(settings.fetch) as fetcher:
            first = await run_watch(watch, settings, store, fetcher)
            bodies_after_first = store.stats()["bodies"]
            second = await run_watch(watch, settings, store, fetcher)
        assert store.stats()["bodies"] == bodies_after_first
        assert first.snapshot_id is not None and second.snapshot_id is not None
        before = store.load_snapshot(first.snapshot_id).root.children[0]
        after = store.load_snapshot(second.snapshot_id).root.children[0]
    asked = [h for m, p, h in fake_site.requests if p == "/etag.html" and m == "GET"]
    assert len(asked) == 2 and "If-None-Match" not in asked[0]
    assert asked[1]["If-None-Match"] == ETAG
    assert after.status_code == 304 and Flag.NOT_MODIFIED in after.flags
    assert after.verdict is Verdict.OK and after.content_sha256 == before.content_sha256
    assert Flag.CONTENT_CHANGED not in after.flags


async def test_a_failing_run_is_reported_and_scheduled_again(tmp_path: Path) -> None:
    from crawler.fetch import Fetcher

    settings = run_settings(tmp_path)
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(tmp_path / "missing.md"), now=T0, every=timedelta(minutes=5))
        async with Fetcher(settings.fetch) as fetcher:
            run = await run_watch(watch, settings, store, fetcher)
        row = get_watch(store, watch.watch_id)
    assert run.outcome == FAILED and run.snapshot_id is None
    assert run.error is not None and "missing.md" in run.error
    assert run.next_run_at == run.started_at + timedelta(minutes=5)
    assert row is not None and (row.last_outcome, row.next_run_at) == (FAILED, run.next_run_at)


def test_a_watch_depth_overrides_the_crawl_depth(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, depth=2)
    shallow = Watch(1, "a.md", timedelta(hours=1), None, 0, True, T0)
    default = Watch(2, "b.md", timedelta(hours=1), None, None, True, T0)
    assert watch_settings(shallow, settings).crawl.depth == 0
    assert watch_settings(default, settings) is settings


async def test_a_store_error_is_a_failed_run_not_a_crash(tmp_path: Path) -> None:
    from crawler.fetch import Fetcher

    settings = run_settings(tmp_path)
    article = tmp_path / "story.md"
    article.write_text("# Story\n\n- [x](http://127.0.0.1:9/x)\n")
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(article), now=T0, every=timedelta(minutes=5))
    corrupt(tmp_path / "data" / "crawler.db")
    async with Fetcher(settings.fetch) as fetcher:
        run = await run_watch(watch, settings, store, fetcher)
    store.close()
    assert run.outcome == FAILED and run.snapshot_id is None
    assert run.error is not None and run.error.startswith("corrupt database")
    assert run.next_run_at == run.started_at + timedelta(minutes=5)


def corrupt(database: Path) -> None:
    """Replace a closed SQLite database (and its WAL files) with bytes that are no database."""
    for leftover in database.parent.glob(database.name + "-*"):
        leftover.unlink()
    database.write_bytes(b"this is not a database\n" * 512)


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "cluster-worker"])
async def test_a_run_cut_short_stays_due(tmp_path: Path, fake_site: FakeSite, daemon: bool) -> None:
    import asyncio

    from crawler.fetch import Fetcher

    settings = run_settings(tmp_path)
    article = tmp_path / "slow.md"
    article.write_text(f"# Story\n\n- [slow]({fake_site.url('/slow?delay=20')})\n")
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(article), now=T0, every=timedelta(days=1))
        async with Fetcher(settings.fetch) as fetcher:
            run = run_watch(watch, settings, store, fetcher, due_again_if_cut_short=daemon)
            task = asyncio.create_task(run)
            for _ in range(100):  # until the slow request is under way (at most 10 s)
                if fake_site.in_flight:
                    break
                await asyncio.sleep(0.1)
            task.cancel()  # what the daemon's drain does at shutdown
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        row = get_watch(store, watch.watch_id)
    assert row is not None and row.last_outcome == Outcome.PARTIAL.value
    assert row.last_snapshot_id is not None and row.last_run_at is not None
    if daemon:
        assert row.next_run_at == watch.next_run_at == T0  # due as it was: not a day later
    else:  # a cluster worker: its next run is a new due time, which the dispatcher queues
        assert row.next_run_at is not None and row.next_run_at > row.last_run_at
