"""bench.h2 really compares protocols: each client's answers come over the protocol it names."""

from __future__ import annotations

import pytest

pytest.importorskip("hypercorn")
pytest.importorskip("h2")
pytest.importorskip("trustme")

from bench.h2 import CLIENTS, measure, table

pytestmark = pytest.mark.timeout(120)


def test_each_client_gets_every_page_over_its_protocol() -> None:
    results = measure(runs=1, n=100, concurrency=8, latency=0.0)
    expected = {"httpx-h1": "200 HTTP/1.1", "httpx-h2": "200 HTTP/2", "aiohttp-h1": "200 HTTP/1.1"}
    assert set(results) == set(CLIENTS)
    for kind, runs in results.items():
        [run] = runs
        assert run["answers"] == {expected[kind]: 100}, kind
        assert run["wall"] > 0 and run["cpu"] > 0
    rendered = table(results, 100)
    assert "| httpx-h2 | 1 |" in rendered and "200 HTTP/2: 100" in rendered
