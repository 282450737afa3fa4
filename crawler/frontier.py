"""The frontier: which waiting URL is fetched next, so that no host gets more than its share.

Nodes wait in one queue per host; a visit starts only when there is a free slot both overall and
for its host (as Scrapy's downloader slots). Only started visits are tasks, so memory follows the
concurrency, not the number of URLs waiting, and a busy host never holds up the others.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from crawler.model import Node
from crawler.urls import host_key

Visit = Callable[[Node], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, None]], object]


class Frontier:
    """Per-host queues of nodes to visit, started within the global and per-host limits."""

    def __init__(self, visit: Visit, spawn: Spawn, *, concurrency: int, per_host: int) -> None:
        self.visit = visit
        self.spawn = spawn
        self.concurrency = concurrency
        self.per_host = per_host
        self.waiting: dict[str, deque[Node]] = {}
        self.active: Counter[str] = Counter()
        self.running = 0
        self.stopped = False  # set once the task group refuses new tasks (it is shutting down)
        self._idle = asyncio.Event()
        self._idle.set()

    def push(self, node: Node) -> None:
        """Queue a node; it starts as soon as its host and the crawl have room."""
        self.waiting.setdefault(host_key(node.url), deque()).append(node)
        self._idle.clear()
        self._pump()

    @property
    def queued(self) -> int:
        """Nodes waiting for a slot."""
        return sum(len(queue) for queue in self.waiting.values())

    async def wait_idle(self) -> None:
        """Return once nothing is running and nothing waits."""
        await self._idle.wait()

    def _pump(self) -> None:
        """Start what the limits allow, taking hosts in the order they first queued."""
        if self.stopped:
            return
        for key in list(self.waiting):
            if self.running >= self.concurrency:
                break
            queue = self.waiting[key]
            while queue and self.active[key] < self.per_host and self.running < self.concurrency:
                if not self._start(key, queue[0]):
                    return
                queue.popleft()
            if not queue:
                del self.waiting[key]
        if self.running == 0 and not self.waiting:
            self._idle.set()

    def _start(self, key: str, node: Node) -> bool:
        """Start a visit; False (and nothing more ever starts) once the task group is closing."""
        visit = self._run(key, node)
        try:
            self.spawn(visit)
        except RuntimeError:  # "TaskGroup is shutting down": a failure elsewhere ends the crawl
            visit.close()
            self.stopped = True
            return False
        self.active[key] += 1
        self.running += 1
        return True

    async def _run(self, key: str, node: Node) -> None:
        try:
            await self.visit(node)
        finally:
            self.active[key] -= 1
            self.running -= 1
            self._pump()
