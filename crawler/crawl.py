"""Orchestration: an article in, a snapshot tree out.

The frontier holds URLs, never pages: a body lives only while its page is parsed and then goes to
the store. Every normalized URL is fetched at most once per crawl; repeats become duplicate nodes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from crawler.classify import classify_result, is_network_down
from crawler.config import Settings
from crawler.errors import SourceError
from crawler.model import (
    DuplicateKind,
    FetchResult,
    Flag,
    Link,
    Node,
    Outcome,
    PageInfo,
    Relation,
    Snapshot,
    SourceKind,
    Verdict,
)
from crawler.related import parse_page
from crawler.sources import Article, is_url_source, parse_article, read_source
from crawler.urls import normalize_url, redact_url

if TYPE_CHECKING:
    from crawler.fetch import Fetcher
    from crawler.store import PreviousFetch, Store

HTML_TYPES = ("text/html", "application/xhtml+xml")
FLUSH_NODES = 200  # nodes written per store transaction
FLUSH_BODY_BYTES = 8 * 1024 * 1024  # ... or sooner, when this many body bytes wait
NETWORK_DOWN_REASON = "not checked: the checker's own network looked down"


Progress = Callable[[int, int], None]  # told nodes finished and nodes known so far


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def is_html(content_type: str | None) -> bool:
    """True for an HTML content type (or none given, which servers often mean as HTML)."""
    if not content_type:
        return True
    return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES


def looks_like_page(url: str) -> bool:
    """Whether a URL probably names an HTML page, so a GET (not a HEAD) is worth it."""
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0].split("#", 1)[0])
    return guessed is None or guessed in HTML_TYPES or guessed == "text/plain"


@dataclass
class _Pending:
    """Work the store has not seen yet."""

    nodes: dict[int, Node] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    body_bytes: int = 0


class Crawl:
    """One crawl of one article: frontier, dedupe, depth, store writes."""

    def __init__(
        self,
        article: Article,
        settings: Settings,
        fetcher: Fetcher,
        store: Store | None = None,
        *,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = utcnow,
        root_result: FetchResult | None = None,
    ) -> None:
        self.article = article
        self.root_result = root_result
        self.settings = settings
        self.fetcher = fetcher
        self.store = store
        self.progress = progress
        self.clock = clock
        self.by_normalized: dict[str, Node] = {}
        self.results: list[FetchResult] = []
        self.pending = _Pending()
        self.next_key = 0
        self.total = 0
        self.done = 0
        self.pages_fetched = 0
        self.cap_hit = False
        self.flush_lock = asyncio.Lock()
        self.finished: dict[int, asyncio.Event] = {}
        self.group: asyncio.TaskGroup | None = None
        self.snapshot = Snapshot(
            source=article.source,
            started_at=clock(),
            root=self._root_node(),
            insecure=not settings.fetch.verify_tls,
        )

    def _root_node(self) -> Node:
        url = self.article.base_url or self.article.source
        root = Node(url=url, normalized_url=normalize_url(url), relation=Relation.ROOT, depth=0)
        root.key, self.next_key = 0, 1
        root.verdict, root.title = Verdict.OK, self.article.title
        return root

    def _new_node(self, link: Link, parent: Node, relation: Relation) -> Node:
        node = Node(
            url=link.url,
            normalized_url=normalize_url(link.url),
            relation=relation,
            depth=parent.depth + 1,
            key=self.next_key,
            parent_key=parent.key,
            line=link.line,
            text=link.text,
        )
        self.next_key += 1
        parent.children.append(node)
        return node

    async def run(self) -> Snapshot:
        """Crawl the article to the configured depth and return the finished snapshot."""
        snap = self.snapshot
        if self.store is not None:
            snap.snapshot_id = await asyncio.to_thread(
                self.store.begin_snapshot, snap.source, snap.started_at, insecure=snap.insecure
            )
        if self.root_result is not None:
            self._apply(snap.root, self.root_result, None, self.root_result.body)
            snap.root.title = self.article.title
        else:
            self._keep_body(snap.root, self.article.text.encode("utf-8"))
        self._queue_node(snap.root)
        async with asyncio.TaskGroup() as group:
            self.group = group
            for link in self.article.links:
                node = self._new_node(link, snap.root, Relation.REFERENCE)
                self._schedule(group, node)
        self.group = None
        self._mark_result_duplicates()
        snap.outcome = self._outcome()
        snap.finished_at = self.clock()
        await self._flush(final=True)
        return snap

    def _schedule(self, group: asyncio.TaskGroup, node: Node) -> None:
        """Fetch a node unless an equal URL was already taken, in which case it is a duplicate."""
        self.total += 1
        first = self.by_normalized.get(node.normalized_url)
        if first is not None:
            kind = DuplicateKind.EXACT if first.url == node.url else DuplicateKind.NORMALIZED
            self._mark_duplicate(node, first, kind)
            group.create_task(self._copy_when_done(node, first))
            return
        self.by_normalized[node.normalized_url] = node
        self.finished[node.key] = asyncio.Event()
        group.create_task(self._visit_safely(group, node))

    async def _visit_safely(self, group: asyncio.TaskGroup, node: Node) -> None:
        """Visit a node; a bug while handling one page becomes that node's error, not a crash."""
        try:
            await self._visit(group, node)
        except Exception as exc:  # the crawl goes on; the node says what went wrong
            node.verdict, node.reason = (
                Verdict.ERROR,
                f"internal error: {type(exc).__name__}: {exc}",
            )
            self._finish(node)

    async def _copy_when_done(self, node: Node, first: Node) -> None:
        """A duplicate is not fetched again: it takes the first node's answer once that is known."""
        await self.finished[first.key].wait()
        for name in (
            "verdict",
            "reason",
            "status_code",
            "final_url",
            "title",
            "canonical_url",
            "published",
            "content_sha256",
            "content_type",
        ):
            setattr(node, name, getattr(first, name))
        node.redirects = list(first.redirects)
        if Flag.DEAD in first.flags:
            node.add_flag(Flag.DEAD)
        self._finish(node)

    def _mark_duplicate(self, node: Node, first: Node, kind: DuplicateKind) -> None:
        node.add_flag(Flag.DUPLICATE)
        node.duplicate_of = first.url
        node.duplicate_kind = kind.value

    def _follow_level(self, node: Node) -> int:
        """How many related-story levels lie below this node (0: do not parse it for links)."""
        level = node.depth - 1  # references are level 0 of the related-story chain
        return self.settings.crawl.depth - level

    async def _visit(self, group: asyncio.TaskGroup, node: Node) -> None:
        """Fetch, classify and parse one node; schedule its related stories."""
        if self.pages_fetched >= self.settings.crawl.max_pages:
            self.cap_hit = True
            node.verdict, node.reason = Verdict.SKIPPED, "page limit reached for this crawl"
            self._finish(node)
            return
        self.pages_fetched += 1  # reserved before any await, so concurrent visits respect the cap
        robots = node.relation is Relation.RELATED and self.settings.crawl.respect_robots
        if robots and not await self.fetcher.allowed_by_robots(node.url):
            self.pages_fetched -= 1
            node.verdict, node.reason = Verdict.SKIPPED, "disallowed by robots.txt"
            self._finish(node)
            return
        follow = self._follow_level(node) > 0
        want_body = follow or looks_like_page(node.url)
        previous = await self._previous(node)
        result = await self.fetcher.fetch(
            node.url,
            want_body=want_body,
            etag=previous.etag if previous else None,
            last_modified=previous.last_modified if previous else None,
        )
        self.results.append(dataclasses.replace(result, body=None))  # the frontier keeps no pages
        body = result.body
        if result.status_code == 304 and previous is not None and previous.content_sha256:
            node.add_flag(Flag.NOT_MODIFIED)
            node.content_sha256 = previous.content_sha256
            body = await self._stored_body(previous.content_sha256)
        page = self._parse(result, body, node.url)
        self._apply(node, result, page, body)
        if follow and page is not None and node.verdict in (Verdict.OK, Verdict.REDIRECTED):
            for link in page.related:
                if normalize_url(link.url) in self.by_normalized:
                    continue  # already in the tree: related blocks cross-link, no need to repeat
                child = self._new_node(link, node, Relation.RELATED)
                self._schedule(group, child)
        self._finish(node)

    async def _previous(self, node: Node) -> PreviousFetch | None:
        if self.store is None:
            return None
        return await asyncio.to_thread(self.store.previous_fetch, node.normalized_url)

    async def _stored_body(self, sha256: str) -> bytes | None:
        if self.store is None:
            return None
        return await asyncio.to_thread(self.store.get_body, sha256)

    def _parse(self, result: FetchResult, body: bytes | None, url: str) -> PageInfo | None:
        if body is None or not is_html(result.content_type):
            return None
        crawl = self.settings.crawl
        return parse_page(
            body,
            result.final_url or url,
            max_related=crawl.max_related_per_page,
            same_site=crawl.related_same_site,
            max_links_scanned=crawl.max_links_per_page,
        )

    def _apply(
        self, node: Node, result: FetchResult, page: PageInfo | None, body: bytes | None
    ) -> None:
        """Copy what the fetch and the page said onto the node."""
        node.verdict, node.reason = classify_result(result, page)
        node.status_code = result.status_code
        node.final_url = result.final_url
        node.redirects = list(result.redirects)
        node.attempts = result.attempts
        node.elapsed_ms = result.elapsed_ms
        node.content_type = result.content_type
        node.etag, node.last_modified = result.etag, result.last_modified
        if result.attempts > 1:
            node.add_flag(Flag.RETRIED)
        if node.verdict is Verdict.DEAD:
            node.add_flag(Flag.DEAD)
        if page is not None:
            node.title, node.canonical_url, node.published = (
                page.title,
                page.canonical_url,
                page.published,
            )
        if body is not None and result.status_code != 304:
            self._keep_body(node, body)

    def _keep_body(self, node: Node, body: bytes) -> None:
        """Hash a body onto its node and queue it for the store (stored once per content)."""
        node.content_sha256 = hashlib.sha256(body).hexdigest()
        if self.settings.crawl.store_bodies and self.store is not None:
            self.pending.bodies.append(body)
            self.pending.body_bytes += len(body)

    def _finish(self, node: Node) -> None:
        if node.key in self.finished:
            self.finished[node.key].set()
        self.done += 1
        self._queue_node(node)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _queue_node(self, node: Node) -> None:
        if self.store is None:
            return
        self.pending.nodes[node.key] = node
        full = len(self.pending.nodes) >= FLUSH_NODES or self.pending.body_bytes >= FLUSH_BODY_BYTES
        if full and self.group is not None:
            self.group.create_task(self._flush())

    async def _flush(self, final: bool = False) -> None:
        """Write waiting bodies, then nodes, in one batch; the snapshot finishes last."""
        store, snap = self.store, self.snapshot
        if store is None or snap.snapshot_id is None:
            return
        async with self.flush_lock:
            pending, self.pending = self.pending, _Pending()
            if final:
                pending.nodes.update({n.key: n for n in snap.root.walk()})
            await asyncio.to_thread(_write_batch, store, snap.snapshot_id, pending)
            if final and snap.finished_at is not None:
                await asyncio.to_thread(
                    store.finish_snapshot,
                    snap.snapshot_id,
                    finished_at=snap.finished_at,
                    outcome=snap.outcome,
                    summary=snap.summary(),
                )

    def _mark_result_duplicates(self) -> None:
        """Flag links that end at the same final URL or canonical as an earlier link."""
        seen_final: dict[str, Node] = {}
        seen_canonical: dict[str, Node] = {}
        for node in sorted(self.snapshot.root.walk(), key=lambda n: n.key):
            if node.relation is Relation.ROOT or Flag.DUPLICATE in node.flags:
                continue
            final = normalize_url(node.final_url) if node.final_url else None
            canonical = normalize_url(node.canonical_url) if node.canonical_url else None
            first = seen_final.get(final) if final else None
            if first is not None:
                self._mark_duplicate(node, first, DuplicateKind.REDIRECT)
            elif canonical and canonical in seen_canonical:
                self._mark_duplicate(node, seen_canonical[canonical], DuplicateKind.CANONICAL)
            if final:
                seen_final.setdefault(final, node)
            if canonical:
                seen_canonical.setdefault(canonical, node)

    def _outcome(self) -> Outcome:
        """Inconclusive when our own network was down; partial when a limit cut the crawl short."""
        if is_network_down(self.results):
            for node in self.snapshot.root.walk():
                if node.relation is not Relation.ROOT and node.verdict in (
                    Verdict.DEAD,
                    Verdict.ERROR,
                ):
                    node.reason = f"{NETWORK_DOWN_REASON} ({node.reason})"
                    node.verdict = Verdict.ERROR
                    if Flag.DEAD in node.flags:
                        node.flags.remove(Flag.DEAD)
            return Outcome.INCONCLUSIVE
        return Outcome.PARTIAL if self.cap_hit else Outcome.COMPLETE


def _write_batch(store: Store, snapshot_id: int, pending: _Pending) -> None:
    for body in pending.bodies:
        store.put_body(body)
    if pending.nodes:
        store.save_nodes(snapshot_id, list(pending.nodes.values()))


def elapsed_seconds(snapshot: Snapshot) -> float:
    """Wall time of a finished crawl."""
    if snapshot.finished_at is None:
        return 0.0
    return (snapshot.finished_at - snapshot.started_at).total_seconds()


async def read_article(
    source: str, fetcher: Fetcher, *, kind: SourceKind | None = None
) -> tuple[Article, FetchResult]:
    """Fetch a live article by URL and read it; SourceError when it cannot be had."""
    result = await fetcher.fetch(source, want_body=True)
    verdict, reason = classify_result(result, None)
    if result.body is None or verdict not in (Verdict.OK, Verdict.REDIRECTED):
        why = reason or verdict.value
        raise SourceError(f"{redact_url(source)}: cannot read the article: {why}")
    article = parse_article(
        source,
        result.body,
        kind,
        base_url=result.final_url or source,
        content_type=result.content_type,
    )
    return article, result


async def run_crawl(
    source: str,
    settings: Settings,
    *,
    kind: SourceKind | None = None,
    stdin: BinaryIO | None = None,
    store: Store | None = None,
    progress: Progress | None = None,
) -> Snapshot:
    """Read an article (a path, `-` or a URL), crawl it, store and return the snapshot."""
    from crawler.fetch import Fetcher

    article = None if is_url_source(source) else read_source(source, kind, stdin=stdin)
    async with Fetcher(settings.fetch) as fetcher:
        root_result = None
        if article is None:
            article, root_result = await read_article(source, fetcher, kind=kind)
        crawl = Crawl(article, settings, fetcher, store, progress=progress, root_result=root_result)
        return await crawl.run()
