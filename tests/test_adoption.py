"""A story that several pages list hangs under the shallowest of them, then the first in tree
order, whichever page answered first: its depth (how far it is followed) and its place in the
tree do not depend on timing. Against a real server whose pages answer after set delays."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from crawler.crawl import run_crawl
from crawler.model import Node, Outcome, Snapshot
from crawler.report import render_json
from crawler.store import Store
from tests.servers import ThreadedServer
from tests.test_crawl import fast_settings

pytestmark = pytest.mark.timeout(60)

SLOW = 0.6  # seconds; a "slow" page answers after the fast ones have been read and followed


class StorySite(ThreadedServer):
    """Story pages at /news/<name>.html, each with a related block and a set delay."""

    lifetime = 120.0

    def __init__(self) -> None:
        super().__init__()
        self.related: dict[str, tuple[str, ...]] = {}
        self.delay: dict[str, float] = {}
        self.hits: dict[str, int] = {}

    def page(self, name: str, *related: str, delay: float = 0.0) -> None:
        self.related[name], self.delay[name] = related, delay

    def url(self, name: str) -> str:
        return f"{self.base_url}/news/{name}.html"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        name = request.path.removeprefix("/news/").removesuffix(".html")
        if name not in self.related:
            return web.Response(status=404, text="not found")
        self.hits[name] = self.hits.get(name, 0) + 1
        await asyncio.sleep(self.delay[name])
        items = "".join(
            f'<li><a href="/news/{r}.html">Story {r}</a></li>' for r in self.related[name]
        )
        text = (
            f"<!doctype html><html><head><title>Story {name}</title></head><body>"
            f"<article><h1>Story {name}</h1><p>{'Talks went on. ' * 40}</p></article>"
            f'<aside class="related"><h2>Related</h2><ul>{items}</ul></aside></body></html>'
        )
        return web.Response(text=text, content_type="text/html")


@pytest.fixture
def site() -> Iterator[StorySite]:
    with StorySite() as running:
        yield running


def parents(snapshot: Snapshot, site: StorySite) -> dict[str, tuple[str, int]]:
    """Each story's parent story (or "article") and its depth."""
    names = {node.key: _name(node, site) for node in snapshot.root.walk()}
    return {
        names[node.key]: (names[node.parent_key] if node.parent_key else "article", node.depth)
        for node in snapshot.root.walk()
        if node.parent_key is not None
    }


def _name(node: Node, site: StorySite) -> str:
    return node.url.removeprefix(f"{site.base_url}/news/").removesuffix(".html")


async def crawl(tmp_path: Path, site: StorySite, *references: str) -> tuple[Snapshot, Snapshot]:
    """Crawl an article citing `references` to depth 2; the snapshot and its stored copy."""
    article = tmp_path / "article.txt"
    article.write_text("".join(f"See {site.url(name)}\n" for name in references))
    settings = fast_settings(tmp_path, depth=2)
    with Store.open(settings.store.url()) as store:
        snap = await run_crawl(str(article), settings, store=store)
        assert snap.snapshot_id is not None
        return snap, store.load_snapshot(snap.snapshot_id)


async def test_a_story_found_deep_first_is_followed_from_the_shallower_page(
    tmp_path: Path, site: StorySite
) -> None:
    # b -> x -> s is read first; the slow reference a lists s too, while s is still on its way:
    # s belongs at depth 2 under a, and at depth 2 its own related story t is followed.
    site.page("a", "s", delay=SLOW / 2)
    site.page("b", "x")
    site.page("x", "s")
    site.page("s", "t", delay=SLOW)
    site.page("t")
    snap, stored = await crawl(tmp_path, site, "a", "b")
    assert snap.outcome is Outcome.COMPLETE
    tree = parents(snap, site)
    assert tree["s"] == ("a", 2)
    assert tree["t"] == ("s", 3) and site.hits.get("t") == 1
    assert "s" not in [_name(child, site) for child in _node(snap, site, "x").children]
    assert render_json(stored) == render_json(snap)  # the store holds the same tree


@pytest.mark.parametrize("slow", ["first", "second"])
async def test_a_story_two_references_list_hangs_under_the_first_whichever_answers_first(
    tmp_path: Path, site: StorySite, slow: str
) -> None:
    site.page("first", "s", delay=SLOW / 2 if slow == "first" else 0.0)
    site.page("second", "s", delay=SLOW / 2 if slow == "second" else 0.0)
    site.page("s", delay=SLOW)
    snap, stored = await crawl(tmp_path, site, "first", "second")
    assert parents(snap, site)["s"] == ("first", 2)
    assert site.hits["s"] == 1
    assert render_json(stored) == render_json(snap)


async def test_a_story_read_as_a_leaf_moves_up_and_is_followed_from_its_stored_body(
    tmp_path: Path, site: StorySite
) -> None:
    # s answers (and is finished, as a leaf at depth 3) before the slow reference a lists it: it
    # still moves to depth 2 under a, and its related story t is followed, from s's stored
    # body: s is not fetched again.
    site.page("a", "s", delay=SLOW)
    site.page("b", "x")
    site.page("x", "s")
    site.page("s", "t")
    site.page("t")
    snap, stored = await crawl(tmp_path, site, "a", "b")
    tree = parents(snap, site)
    assert tree["s"] == ("a", 2)
    assert tree["t"] == ("s", 3)
    assert site.hits["s"] == 1 and site.hits["t"] == 1
    assert render_json(stored) == render_json(snap)


async def test_a_story_with_stories_of_its_own_stays_where_it_was_read(
    tmp_path: Path, site: StorySite
) -> None:
    # s is read at depth 2 under b and its story t is followed before the slow reference a,
    # which ranks first, lists s too: a subtree does not move.
    site.page("a", "s", delay=SLOW)
    site.page("b", "s")
    site.page("s", "t")
    site.page("t")
    snap, stored = await crawl(tmp_path, site, "a", "b")
    tree = parents(snap, site)
    assert tree["s"] == ("b", 2) and tree["t"] == ("s", 3)
    assert render_json(stored) == render_json(snap)


def _node(snapshot: Snapshot, site: StorySite, name: str) -> Node:
    return next(node for node in snapshot.root.walk() if _name(node, site) == name)
