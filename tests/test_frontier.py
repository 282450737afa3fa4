"""The frontier: per-host and global limits, round-robin over hosts, a clean stop."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from crawler.frontier import Frontier
from crawler.model import Node, Relation


def node(url: str) -> Node:
    return Node(url=url, normalized_url=url, relation=Relation.REFERENCE, depth=1)


async def test_limits_hold_and_every_node_is_visited() -> None:
    running: Counter[str] = Counter()
    peak_host: Counter[str] = Counter()
    peak = 0
    seen: list[str] = []

    async def visit(n: Node) -> None:
        nonlocal peak
        host = n.url.split("/")[2]
        running[host] += 1
        peak_host[host] = max(peak_host[host], running[host])
        peak = max(peak, sum(running.values()))
        await asyncio.sleep(0.01)
        seen.append(n.url)
        running[host] -= 1

    async with asyncio.TaskGroup() as group:
        frontier = Frontier(visit, group.create_task, concurrency=5, per_host=2)
        for i in range(30):
            frontier.push(node(f"http://h{i % 4}.test/{i}"))
        assert frontier.queued == 30 - 5
        await frontier.wait_idle()
    assert sorted(seen) == sorted(f"http://h{i % 4}.test/{i}" for i in range(30))
    assert peak == 5 and max(peak_host.values()) == 2


async def test_one_busy_host_does_not_hold_up_the_others() -> None:
    order: list[str] = []

    async def visit(n: Node) -> None:
        await asyncio.sleep(0.05 if "busy" in n.url else 0)
        order.append(n.url)

    async with asyncio.TaskGroup() as group:
        frontier = Frontier(visit, group.create_task, concurrency=4, per_host=1)
        for i in range(5):
            frontier.push(node(f"http://busy.test/{i}"))
        frontier.push(node("http://quiet.test/1"))
        await frontier.wait_idle()
    assert order.index("http://quiet.test/1") == 0  # not queued behind the busy host


async def test_a_failing_visit_stops_the_frontier_cleanly() -> None:
    async def visit(n: Node) -> None:
        await asyncio.sleep(0)
        if n.url.endswith("/boom"):
            raise ValueError("boom")
        await asyncio.sleep(0.01)

    with pytest.raises(ExceptionGroup) as info:
        async with asyncio.TaskGroup() as group:
            frontier = Frontier(visit, group.create_task, concurrency=2, per_host=2)
            frontier.push(node("http://a.test/boom"))
            for i in range(10):
                frontier.push(node(f"http://a.test/{i}"))
            await frontier.wait_idle()
    assert info.group_contains(ValueError)
    assert frontier.stopped or frontier.running == 0
