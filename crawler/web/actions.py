"""What the dashboard's POST routes do: add a watch, run one now (in this process).

"Run now" crawls the watch at once with `watching.run_watch` (history, alerts and the
watch row updated exactly as a daemon run), as a background task of the dashboard's event
loop; the POST answers before the crawl ends. Tasks still running at shutdown are
cancelled, which stores their snapshots as partial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crawler.config import Settings
from crawler.store import Store
from crawler.store import watches as watch_store
from crawler.timing import parse_every

DEFAULT_EVERY = timedelta(hours=24)


class StoreWatchActions:
    """`WatchActions` over the store and the daemon's own run function."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.running: dict[int, asyncio.Task[object]] = {}

    async def add_watch(self, source: str, every: str | None) -> int:
        """Add an interval watch (`every` like `6h`, 24 h when empty); ValueError when invalid."""
        interval = parse_every(every) if every else DEFAULT_EVERY
        watch = await asyncio.to_thread(
            watch_store.add_watch, self.store, source, now=self.clock(), every=interval
        )
        return watch.watch_id

    async def run_now(self, watch_id: int) -> None:
        """Start a run of the watch now; ValueError when it does not exist or is running."""
        watch = await asyncio.to_thread(watch_store.get_watch, self.store, watch_id)
        if watch is None:
            raise ValueError(f"no watch {watch_id}")
        if watch_id in self.running:
            raise ValueError(f"watch {watch_id} is already running")
        task: asyncio.Task[object] = asyncio.create_task(self._run(watch))
        self.running[watch_id] = task
        task.add_done_callback(lambda _: self.running.pop(watch_id, None))

    async def _run(self, watch: watch_store.Watch) -> object:
        """One run with its own fetcher (the dashboard shares none with a daemon)."""
        from crawler.fetch import Fetcher
        from crawler.watching import run_watch

        async with Fetcher(self.settings.fetch) as fetcher:
            return await run_watch(watch, self.settings, self.store, fetcher, clock=self.clock)

    async def close(self) -> None:
        """Cancel runs still going and wait for them to store what they have."""
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
