"""Per-host request budgets: a token bucket per host, in process or shared through PostgreSQL.

A `HostGate` is asked once before every request on the wire (`await gate.acquire(host)`) and
returns when that request may go. The bucket is GCRA-shaped (the "virtual scheduling" form of
a token bucket, as in RFC 2697's meters): each host keeps one number, its *theoretical arrival
time* `tat`; a request reserves the slot `max(tat, now - tau)` and moves `tat` one interval on.
Reservations never fail, they only wait, so ten workers sharing one row for a host send at most
`burst + rate * seconds` requests to it in any window, however many of them there are.

`reserve_slot` is the pure rule; `LocalHostGate` applies it in one process; `PostgresHostGate`
applies the same rule in one atomic `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on the
`host_budget` table, using the database's clock so machines need not agree on the time.
psycopg is imported only when a PostgreSQL gate is opened: the embedded mode never needs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

DEFAULT_HOST_RATE = 5.0  # requests per second per host, across the whole cluster
DEFAULT_HOST_BURST = 1  # requests a host may get at once after a quiet spell
BUDGET_TABLE = "host_budget"
POOL_MAX_SIZE = 4  # each reservation is one short statement; a few connections suffice

# One statement, so concurrent workers serialize on the host's row and nothing else:
# base = max(tat, now - tau); tat := base + interval; the request may go at max(base, now).
RESERVE_SQL = f"""
INSERT INTO {BUDGET_TABLE} AS b (host, tat)
VALUES (%(host)s, extract(epoch FROM clock_timestamp()) - %(tau)s + %(interval)s)
ON CONFLICT (host) DO UPDATE
SET tat = greatest(b.tat, extract(epoch FROM clock_timestamp()) - %(tau)s) + %(interval)s
RETURNING b.tat - %(interval)s - extract(epoch FROM clock_timestamp()) AS wait
"""


class HostGate(Protocol):
    """Something that decides when the next request to a host may go."""

    async def acquire(self, host: str) -> None:
        """Return when one more request to `host` fits its budget."""
        ...


def reserve_slot(tat: float | None, now: float, interval: float, burst: int) -> tuple[float, float]:
    """GCRA reservation: (seconds to wait before sending, the host's new `tat`)."""
    tau = (burst - 1) * interval
    base = now - tau if tat is None else max(tat, now - tau)
    return max(0.0, base - now), base + interval


def interval_of(rate: float) -> float:
    """Seconds between requests for a rate in requests per second (ValueError unless rate > 0)."""
    if rate <= 0:
        raise ValueError(f"a host rate must be positive, got {rate!r}")
    return 1.0 / rate


class LocalHostGate:
    """The budget of one process: the same rule, kept in a dict (for the embedded mode, tests)."""

    def __init__(
        self,
        rate: float = DEFAULT_HOST_RATE,
        burst: int = DEFAULT_HOST_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval_of(rate)
        self.burst = max(1, burst)
        self.clock = clock
        self._tat: dict[str, float] = {}

    async def acquire(self, host: str) -> None:
        """Reserve the host's next slot (no await between read and write), then wait for it."""
        wait, self._tat[host] = reserve_slot(
            self._tat.get(host), self.clock(), self.interval, self.burst
        )
        if wait > 0:
            await asyncio.sleep(wait)


class PostgresHostGate:
    """The budget shared by every worker of a cluster, one `host_budget` row per host."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], rate: float = DEFAULT_HOST_RATE, burst: int = 1
    ) -> None:
        self.pool = pool
        self.interval = interval_of(rate)
        self.burst = max(1, burst)

    async def acquire(self, host: str) -> None:
        """Reserve the host's next slot in one atomic statement, then wait for it."""
        wait = await self.reserve(host)
        if wait > 0:
            await asyncio.sleep(wait)

    async def reserve(self, host: str) -> float:
        """Reserve a slot and return the seconds to wait for it (database clock)."""
        params = {"host": host, "interval": self.interval, "tau": (self.burst - 1) * self.interval}
        async with self.pool.connection() as conn:
            cursor = await conn.execute(RESERVE_SQL, params)
            row = await cursor.fetchone()
        return max(0.0, float(row[0])) if row is not None else 0.0


async def open_postgres_gate(
    conninfo: str, rate: float = DEFAULT_HOST_RATE, burst: int = DEFAULT_HOST_BURST
) -> PostgresHostGate:
    """Open a small connection pool (libpq URL) and a gate on it; close it with `close_gate`."""
    from psycopg_pool import AsyncConnectionPool

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo, min_size=1, max_size=POOL_MAX_SIZE, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True, timeout=10)
    return PostgresHostGate(pool, rate, burst)


async def close_gate(gate: PostgresHostGate) -> None:
    """Close the gate's connection pool."""
    await gate.pool.close()
