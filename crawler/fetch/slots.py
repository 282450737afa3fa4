"""Per-host request slots that a host's 429s narrow and its plain answers widen again.

A 429 says the client is sending that host too much. Its `Retry-After` is honoured for the URL
that got it (the retry waits), and the host's other URLs keep going, but with fewer of them at
once: every 429 halves the host's concurrency (down to 1), and each run of answers without a
429 as long as the current limit adds one back, up to the configured `per_host_concurrency`
(additive increase, multiplicative decrease, as TCP does with its congestion window). A host
that never answers 429 keeps its limit, and costs no more than an `asyncio.Semaphore`.
"""

from __future__ import annotations

import asyncio


class HostSlots:
    """An `asyncio.Semaphore` whose limit can go down (permits are kept back) and up again."""

    def __init__(self, limit: int) -> None:
        self.ceiling = limit
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self._owed = 0  # permits to keep back as they are released (the limit went down)
        self._calm = 0  # answers without a 429 since the limit last changed

    async def acquire(self) -> None:
        """Wait for a slot."""
        await self._semaphore.acquire()

    def release(self) -> None:
        """Give a slot back (or keep it, while the limit is lower than the slots handed out)."""
        if self._owed:
            self._owed -= 1
        else:
            self._semaphore.release()

    async def answered(self, status: int | None) -> None:
        """Adjust the limit to one answer of the host: a 429 halves it, calm raises it."""
        if status == 429:
            self._calm = 0
            await self._lower(max(1, self.limit // 2))
        elif self.limit < self.ceiling:
            self._calm += 1
            if self._calm >= self.limit:
                self._calm = 0
                self._raise()

    async def _lower(self, limit: int) -> None:
        for _ in range(self.limit - limit):
            if self._semaphore.locked():
                self._owed += 1  # taken back when a request in flight gives its slot back
            else:
                await self._semaphore.acquire()  # a free slot: taken at once, no waiting
        self.limit = limit

    def _raise(self) -> None:
        self.limit += 1
        if self._owed:
            self._owed -= 1  # a slot not yet taken back stays out
        else:
            self._semaphore.release()
