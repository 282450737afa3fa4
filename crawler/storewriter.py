"""What a crawl hands to the store: batches of nodes and bodies, written on one thread.

One thread talks to the store: SQLite takes one writer anyway, and one thread means one
connection and one malloc arena instead of a pool of each. Finished nodes and fetched bodies
wait in a batch; a write is scheduled when the batch is full, or FLUSH_SECONDS after a node
came into it (so a crash, kill -9 included, loses about that much work, not a batch), one at a
time (a write under way takes the batch, the next fills meanwhile), and a crawl that fetches
faster than the store writes is held back (`wait_for_room`), so memory stays bounded. A write
that took its batch finishes even when the crawl is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from crawler.model import Node

if TYPE_CHECKING:
    from crawler.store import Store

T = TypeVar("T")
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]

FLUSH_NODES = 200  # nodes written per store transaction
FLUSH_BODY_BYTES = 2 * 1024 * 1024  # ... or sooner, when this many body bytes wait
FLUSH_SECONDS = 1.0  # ... or when a node has waited this long
# Visits wait before fetching while this many body bytes wait for a store write still under way.
MAX_PENDING_BODY_BYTES = 4 * FLUSH_BODY_BYTES


@dataclass
class Batch:
    """Work the store has not seen yet."""

    nodes: dict[int, Node] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)  # sha256 -> body
    body_bytes: int = 0


class StoreWriter:
    """A crawl's store thread, its waiting batch and the one write scheduled at a time."""

    def __init__(self, store: Store | None, *, keep_bodies: bool) -> None:
        self.store = store
        self.keep_bodies = keep_bodies and store is not None
        self.snapshot_id: int | None = None  # set once the snapshot is begun
        self.batch = Batch()
        self.spawn: Spawn | None = None  # the crawl's task group, while it runs
        self._task: asyncio.Task[None] | None = None  # the write scheduled or under way
        self._timer: asyncio.TimerHandle | None = None  # the latest time the batch is written
        self._lock = asyncio.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crawler-store")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call on the store thread."""
        return await self._submit(fn, *args, **kwargs)

    def _submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Queue a store call on the store thread now (calls run in the order queued)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    def add_body(self, digest: str, body: bytes) -> None:
        """Queue a body for the store, once per content."""
        if self.keep_bodies and digest not in self.batch.bodies:
            self.batch.bodies[digest] = body
            self.batch.body_bytes += len(body)

    def add_node(self, node: Node) -> None:
        """Queue a finished node; schedule a write when the batch is full and none is pending,
        and at the latest FLUSH_SECONDS from now."""
        if self.store is None:
            return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_late)
        batch = self.batch
        batch.nodes[node.key] = node
        full = len(batch.nodes) >= FLUSH_NODES or batch.body_bytes >= FLUSH_BODY_BYTES
        if full and self._idle():
            self._schedule()

    async def wait_for_room(self) -> None:
        """Hold the caller back while MAX_PENDING_BODY_BYTES of bodies wait for the store."""
        while self.batch.body_bytes >= MAX_PENDING_BODY_BYTES:
            task = self._task if not self._idle() else self._schedule()
            if task is None:
                return  # no task group (it is closing): the crawl is ending anyway
            await asyncio.wait({task})

    async def flush(self, extra: Iterable[Node] = ()) -> None:
        """Write the waiting bodies, then the waiting nodes and `extra`, in one transaction."""
        store, snapshot_id = self.store, self.snapshot_id
        if store is None or snapshot_id is None:
            return
        async with self._lock:
            batch, self.batch = self.batch, Batch()
            batch.nodes.update({n.key: n for n in extra})
            # Shielded: cancelling the crawl (SIGTERM, a deadline) must not drop a batch taken
            # from it; the crawl's last write, queued after this one, finds it written.
            await asyncio.shield(self._submit(_write_batch, store, snapshot_id, batch))

    def close(self) -> None:
        """Let the store thread go (a write still running finishes on its own)."""
        if self._timer is not None:
            self._timer.cancel()
        self._thread.shutdown(wait=False)

    def _idle(self) -> bool:
        return self._task is None or self._task.done()

    def _flush_late(self) -> None:
        """Time is up for the waiting nodes: write them now, or after the write under way."""
        self._timer = None
        if not self.batch.nodes:
            return
        if self._idle():
            self._schedule()
        else:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_late)

    def _schedule(self) -> asyncio.Task[None] | None:
        if self.spawn is None:
            return None
        flush = self.flush()
        try:
            self._task = self.spawn(flush)
        except RuntimeError:  # "TaskGroup is shutting down": the crawl's final write takes it
            flush.close()  # never started: closed, so no "never awaited" warning
            return None
        return self._task


def _write_batch(store: Store, snapshot_id: int, batch: Batch) -> None:
    if batch.bodies:
        store.put_bodies(list(batch.bodies.values()), digests=list(batch.bodies))
    if batch.nodes:
        store.save_nodes(snapshot_id, list(batch.nodes.values()))
