"""crawler.storewriter: batches, one write at a time, back-pressure; with a real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import crawler.storewriter as storewriter
from crawler.config import load_settings
from crawler.crawl import run_crawl
from crawler.model import Outcome, Relation
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
