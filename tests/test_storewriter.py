"""crawler.storewriter: batches, one write at a time, back-pressure; with a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

import crawler.storewriter as storewriter
from crawler.config import load_settings
from crawler.crawl import run_crawl
from crawler.model import Node, Outcome, Relation
from crawler.store import Store
from crawler.storewriter import StoreWriter
from tests.fakesite import ARTICLE, FakeSite

ROOT = Relation.ROOT


async def test_one_store_write_at_a_time_and_visits_wait_for_a_slow_store(
    tmp_path: Path, fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every finished node asks for a write (FLUSH_NODES = 1) and the store is slow: one write
    is scheduled at a time (no pile of waiting writes), and the crawl's visits wait for the
    store whenever a body is waiting (MAX_PENDING_BODY_BYTES = 1)."""
    monkeypatch.setattr(storewriter, "FLUSH_NODES", 1)
    monkeypatch.setattr(storewriter, "MAX_PENDING_BODY_BYTES", 1)
    in_flight, peak, batch_peak = 0, 0, 0
    original_flush, original_add = StoreWriter.flush, StoreWriter.add_body

    async def slow_flush(self: StoreWriter, extra: object = ()) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)  # a slow disk
            await original_flush(self, extra)  # type: ignore[arg-type]
        finally:
            in_flight -= 1

    def watched_add(self: StoreWriter, digest: str, body: bytes) -> None:
        nonlocal batch_peak
        original_add(self, digest, body)
        batch_peak = max(batch_peak, len(self.batch.bodies))

    monkeypatch.setattr(StoreWriter, "flush", slow_flush)
    monkeypatch.setattr(StoreWriter, "add_body", watched_add)
    settings = load_settings(
        None,
        environ={"CRAWLER_CONFIG": ""},
        overrides={
            "fetch": {"allow_private_networks": True, "backoff_base": 0.01, "backoff_max": 0.05},
            "crawl": {"depth": 2},
            "store": {"data_dir": str(tmp_path / "data")},
        },
    )
    with Store.open(settings.store.url()) as store:
        snapshot = await run_crawl(fake_site.url(ARTICLE), settings, store=store)
        stored = store.snapshot_info(snapshot.snapshot_id) if snapshot.snapshot_id else None
    nodes = list(snapshot.root.walk())
    assert snapshot.outcome is Outcome.COMPLETE and len(nodes) > 10
    assert stored is not None
    assert peak == 1
    assert batch_peak < settings.fetch.concurrency  # visits waited instead of piling up bodies


async def test_bodies_are_kept_once_per_content_and_not_without_a_store() -> None:
    writer = StoreWriter(None, keep_bodies=True)
    writer.add_body("a" * 64, b"page")
    assert writer.batch.bodies == {} and writer.batch.body_bytes == 0
    await writer.flush()  # nothing to write to: a no-op
    writer.close()


async def test_a_full_batch_schedules_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storewriter, "FLUSH_NODES", 2)
    with Store.open(f"sqlite:///{tmp_path / 'crawler.db'}") as store:
        writer = StoreWriter(store, keep_bodies=True)
        writer.add_body("b" * 64, b"one body")
        writer.add_body("b" * 64, b"one body")  # the same content: once
        assert writer.batch.body_bytes == len(b"one body")
        spawned: list[asyncio.Task[None]] = []

        def spawn(coro: object) -> asyncio.Task[None]:
            task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
            spawned.append(task)
            return task

        writer.spawn = spawn
        from crawler.model import Node, Relation

        for key in range(3):
            writer.add_node(
                Node(
                    url=f"u{key}",
                    normalized_url=f"u{key}",
                    relation=Relation.ROOT,
                    depth=0,
                    key=key,
                )
            )
        assert len(spawned) == 1  # the second full batch waits for the first write
        writer.close()
        for task in spawned:
            task.cancel()


def _node(key: int) -> Node:
    return Node(
        url=f"u{key}", normalized_url=f"u{key}", relation=Relation.REFERENCE, depth=1, key=key
    )


async def test_a_waiting_node_is_written_within_flush_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch far from full is written FLUSH_SECONDS after its first node: a crash (kill -9
    included) loses a moment of work, not a batch."""
    monkeypatch.setattr(storewriter, "FLUSH_SECONDS", 0.05)
    with Store.open(f"sqlite:///{tmp_path / 'crawler.db'}") as store:
        writer = StoreWriter(store, keep_bodies=False)
        writer.snapshot_id = store.begin_snapshot("article.txt", datetime.now(UTC))
        async with asyncio.TaskGroup() as group:
            writer.spawn = group.create_task
            writer.add_node(_node(1))
            for _ in range(250):  # 5 s at most
                if store.saved_nodes(writer.snapshot_id):
                    break
                await asyncio.sleep(0.02)
            writer.spawn = None
        writer.close()
        assert [n.key for n in store.saved_nodes(writer.snapshot_id)] == [1]


async def test_a_write_cancelled_while_it_waits_for_the_store_thread_still_happens(
    tmp_path: Path,
) -> None:
    """The crawl cancelled (SIGTERM) while a write that took the batch waits behind another
    store call: the batch is still written, before the crawl's last write."""
    with Store.open(f"sqlite:///{tmp_path / 'crawler.db'}") as store:
        writer = StoreWriter(store, keep_bodies=False)
        writer.snapshot_id = store.begin_snapshot("article.txt", datetime.now(UTC))
        gate = threading.Event()
        busy = asyncio.ensure_future(writer.call(gate.wait, 10))  # a lookup holds the thread
        writer.add_node(_node(1))
        flushing = asyncio.ensure_future(writer.flush())
        for _ in range(100):
            if not writer.batch.nodes:  # the write took the batch and waits for the thread
                break
            await asyncio.sleep(0)
        flushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flushing
        gate.set()
        await busy
        writer.add_node(_node(2))
        await writer.flush()  # the crawl's last write
        writer.close()
        assert [n.key for n in store.saved_nodes(writer.snapshot_id)] == [1, 2]


async def test_a_write_the_task_group_refuses_leaves_no_coroutine_behind(tmp_path: Path) -> None:
    """A batch filling up while the crawl's task group shuts down waits for the final write,
    without a "coroutine was never awaited" warning on the user's terminal."""

    def shutting_down(coroutine: object) -> asyncio.Task[None]:
        raise RuntimeError("TaskGroup is shutting down")

    with Store.open(f"sqlite:///{tmp_path / 'crawler.db'}") as store:
        writer = StoreWriter(store, keep_bodies=False)
        writer.snapshot_id = store.begin_snapshot("article.txt", datetime.now(UTC))
        writer.spawn = shutting_down
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for key in range(storewriter.FLUSH_NODES):  # full: a write is asked for
                writer.add_node(_node(key + 1))
            gc.collect()
        writer.close()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert len(writer.batch.nodes) == storewriter.FLUSH_NODES  # left for the final write
