"""Raw baselines: the simplest honest GET loop, at the same concurrency as the crawler.

Each client GETs every URL once (following redirects, reading the body), with a semaphore
bounding requests in flight, and calls a URL dead when the final status is >= 400 or the
request raised — what simple link checkers do. `aiohttp-retry` is the aiohttp loop retrying
the way the crawler does by default (below), to show what honouring Retry-After and backing
off costs a raw client on the same workload. Run as a subprocess so its memory and CPU are its own:

    python -m bench.baselines --client aiohttp --urls urls.txt --concurrency 64 -o out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

CLIENTS = ("httpx", "aiohttp", "httpx-aiohttp", "aiohttp-retry")
TIMEOUT = 10.0  # seconds per request; the slowest fake page answers in 2 s
# The crawler's default retry policy (crawler/config.py, crawler/fetch/policy.py): 3 retries of
# 408/429/5xx and of timeouts and resets, waiting Retry-After (capped) or 0.5 s * 2^n plus up
# to 0.5 s of jitter.
RETRIES = 3
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_BASE, BACKOFF_MAX, RETRY_AFTER_CAP = 0.5, 8.0, 30.0

Getter = Callable[[str], Awaitable[int]]


async def _run_all(urls: list[str], get: Getter, concurrency: int) -> dict[str, int | str]:
    """GET every URL through `get`, at most `concurrency` at once: url -> status or error name."""
    semaphore = asyncio.Semaphore(concurrency)
    results: dict[str, int | str] = {}

    async def one(url: str) -> None:
        async with semaphore:
            try:
                results[url] = await get(url)
            except Exception as exc:  # a simple checker calls any failure dead
                results[url] = type(exc).__name__

    await asyncio.gather(*(one(u) for u in urls))
    return results


async def check_httpx(urls: list[str], concurrency: int, transport: str) -> dict[str, int | str]:
    """httpx.AsyncClient with its default transport (httpcore) or httpx-aiohttp's."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    under: httpx.AsyncBaseTransport | None = None
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        under = AiohttpTransport(limits=limits, trust_env=False)
    async with httpx.AsyncClient(
        follow_redirects=True, timeout=TIMEOUT, limits=limits, trust_env=False, transport=under
    ) as client:

        async def get(url: str) -> int:
            response = await client.get(url)
            return response.status_code

        return await _run_all(urls, get, concurrency)


async def check_aiohttp(urls: list[str], concurrency: int) -> dict[str, int | str]:
    """aiohttp.ClientSession, one connector limited to `concurrency` connections."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get(url: str) -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        return await _run_all(urls, get, concurrency)


async def check_aiohttp_retrying(urls: list[str], concurrency: int) -> dict[str, int | str]:
    """The aiohttp loop, retrying like the crawler; a waiting URL holds no connection slot."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    semaphore = asyncio.Semaphore(concurrency)
    results: dict[str, int | str] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def attempt(url: str) -> tuple[int | str, float | None]:
            async with semaphore:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        after = response.headers.get("Retry-After", "")
                        return response.status, float(after) if after.isdigit() else None
                except (aiohttp.ClientError, TimeoutError) as exc:
                    return type(exc).__name__, None

        async def one(url: str) -> None:
            for retry in range(RETRIES + 1):
                outcome, after = await attempt(url)
                if retry == RETRIES or (isinstance(outcome, int) and outcome not in RETRY_STATUSES):
                    break
                jitter = random.uniform(0, BACKOFF_BASE)
                backoff = min(BACKOFF_BASE * 2**retry + jitter, BACKOFF_MAX)
                await asyncio.sleep(min(after, RETRY_AFTER_CAP) if after is not None else backoff)
            results[url] = outcome

        await asyncio.gather(*(one(u) for u in urls))
    return results


def is_dead(outcome: int | str) -> bool:
    """The simple checker's rule: an error, or a final status of 400 or more."""
    return isinstance(outcome, str) or outcome >= 400


def main(argv: list[str] | None = None) -> None:
    """Check the URLs in a file and write {results, dead, elapsed} as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    urls = [u for u in args.urls.read_text().split() if u]
    start = time.perf_counter()
    if args.client == "aiohttp":
        results = asyncio.run(check_aiohttp(urls, args.concurrency))
    elif args.client == "aiohttp-retry":
        results = asyncio.run(check_aiohttp_retrying(urls, args.concurrency))
    else:
        transport = "aiohttp" if args.client == "httpx-aiohttp" else "default"
        results = asyncio.run(check_httpx(urls, args.concurrency, transport))
    elapsed = time.perf_counter() - start
    dead = sorted(u for u, r in results.items() if is_dead(r))
    args.output.write_text(json.dumps({"elapsed": elapsed, "dead": dead, "results": results}))


if __name__ == "__main__":
    main()
