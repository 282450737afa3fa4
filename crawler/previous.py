"""What the store knows of a crawl's URLs: their last fetch before this crawl (for a conditional
request) and the bodies it keeps, asked for on the crawl's store thread.

The references' last fetches come in one query before the first request. A page's related
stories' come in one query when the page is read: their visits, queued already, start after
that and find the answer under way. A visit that finds neither asks for itself.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from crawler.model import Node, Relation

if TYPE_CHECKING:
    from crawler.store import PreviousFetch, Store
    from crawler.storewriter import StoreWriter


class PreviousFetches:
    """The last fetches and stored bodies of one crawl's URLs (none without a store)."""

    def __init__(self, store: Store | None, writer: StoreWriter) -> None:
        self.store = store
        self.writer = writer
        self.references: dict[str, PreviousFetch] = {}  # by normalized URL
        # A page's related stories' lookup, one query per page, by normalized URL.
        self.lookups: dict[str, asyncio.Task[dict[str, PreviousFetch]]] = {}

    async def load_references(self, urls: list[str]) -> None:
        """The references' last fetches, in one query, before any is visited."""
        if self.store is not None:
            self.references = await self.writer.call(self.store.previous_fetches, urls)

    def look_up(self, urls: list[str], group: asyncio.TaskGroup | None) -> None:
        """Ask, in one query beside the crawl, how a page's related stories were last fetched."""
        if self.store is None or group is None or not urls:
            return
        try:
            task = group.create_task(self.writer.call(self.store.previous_fetches, urls))
        except RuntimeError:  # "TaskGroup is shutting down": each visit asks for itself
            return
        for url in urls:
            self.lookups[url] = task

    async def of(self, node: Node) -> PreviousFetch | None:
        """How the store last fetched `node`'s URL, or None (never, or no store)."""
        if self.store is None:
            return None
        if node.relation is Relation.REFERENCE:  # asked for all references at the start
            return self.references.get(node.normalized_url)
        lookup = self.lookups.pop(node.normalized_url, None)
        if lookup is not None:
            return (await lookup).get(node.normalized_url)
        return await self.writer.call(self.store.previous_fetch, node.normalized_url)

    def forget(self, node: Node) -> None:
        """Drop the lookup a visit that never fetched left behind."""
        self.lookups.pop(node.normalized_url, None)

    async def body(self, sha256: str) -> bytes | None:
        """A stored body by its hash (kept by an earlier crawl or written by this one), or None
        (not kept, or no store)."""
        if self.store is None:
            return None
        return await self.writer.call(self.store.get_body, sha256)
