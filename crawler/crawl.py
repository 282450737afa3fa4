"""Orchestration: an article in, a snapshot tree out.

The frontier holds URLs, never pages: a body lives only while its page is parsed and then goes to
the store. Every normalized URL is fetched at most once per crawl; repeats become duplicate nodes.
A related story that several pages list is not repeated: it hangs under the shallowest of them,
then the first in tree order (`crawler/tree.py`); one read as a leaf before it moved up is
followed from its stored body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from crawler.answer import apply_answer, looks_like_page, read_article, read_page
from crawler.conclude import (
    conclude_outcome,
    mark_duplicate,
    mark_result_duplicates,
    resync_duplicates,
)
from crawler.config import Settings
from crawler.errors import CrawlerError, first_crawler_error
from crawler.frontier import Frontier
from crawler.model import (
    Attempted,
    DuplicateKind,
    Failure,
    FetchResult,
    Flag,
    Node,
    Outcome,
    PageInfo,
    Relation,
    Snapshot,
    SourceKind,
    Verdict,
)
from crawler.previous import PreviousFetches
from crawler.resume import (
    ANSWER_FIELDS,
    CUT_SHORT_REASON,
    answer_settings,
    is_crawl_alive,
    owner_info,
    result_of,
    resumable_nodes,
)
from crawler.soft404 import SiteProbe
from crawler.sources import Article, is_url_source, read_source
from crawler.storewriter import StoreWriter
from crawler.tree import Tree
from crawler.urls import normalize_url

if TYPE_CHECKING:
    from crawler.fetch import Fetcher
    from crawler.store import Store

# Visits under way per connection slot. The Fetcher limits requests on the wire (concurrency,
# per_host_concurrency); a visit that waits out a Retry-After or a backoff holds no connection,
# so more visits than slots keep the connections busy meanwhile. Waiting visits hold no body.
# Per host, 4 visits per slot. Crawl-wide, 32: the visits waiting for one busy host's slots must
# not keep the other hosts' work from starting (with 4, a deep crawl's 256 visits sat on ~10 of
# its 50 hosts while the rest waited). 32 against 16: flat +4-6% req/s, deep unchanged, +1.5 MB;
# 8: flat -10% (side by side, see bench/RESULTS.md).
VISITS_PER_SLOT = 32
VISITS_PER_HOST_SLOT = 4
# What a repeat of a URL takes from its first occurrence (not the requests, which it did not make).
REPEATED_FIELDS = tuple(
    f for f in ANSWER_FIELDS if f not in ("attempts", "elapsed_ms", "etag", "last_modified")
)


Progress = Callable[[int, int], None]  # told nodes finished and nodes known so far


_normalize = normalize_url  # cached in crawler.urls


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


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
        resume: Mapping[str, Node] | None = None,
        watch_id: int | None = None,
        finalize: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.article = article
        self.root_result = root_result
        self.resume = dict(resume or {})
        self.watch_id = watch_id
        self.finalize = finalize
        self.site_probe = SiteProbe(fetcher, self._read_page)
        self.completed: set[int] = set()  # keys of nodes that reached a verdict
        self.dirty: dict[int, Node] = {}  # nodes changed after they were queued for the store
        self.settings = settings
        self.fetcher = fetcher
        self.store = store
        self.progress = progress
        self.clock = clock
        self.by_normalized: dict[str, Node] = {}
        self.results: list[Attempted] = []  # what the outcome reads of each fetch, in order
        self.fetched: list[Node] = []  # the node of each result
        self.total = 0
        self.done = 0
        self.pages_fetched = 0
        self.cap_hit = False
        self.repeats: dict[int, list[Node]] = {}  # first node's key -> duplicates awaiting it
        self.group: asyncio.TaskGroup | None = None
        self.frontier: Frontier | None = None
        self.tree = Tree(article.base_url or article.source, article.title)
        self.writer = StoreWriter(store, keep_bodies=settings.crawl.store_bodies)
        self.previous = PreviousFetches(store, self.writer)
        self.snapshot = Snapshot(
            source=article.source,
            started_at=clock(),
            root=self.tree.root,
            insecure=not settings.fetch.verify_tls,
        )

    async def run(self) -> Snapshot:
        """Crawl the article to the configured depth and return the finished snapshot."""
        try:
            await self._begin()
            try:
                await self._crawl_all()
            except asyncio.CancelledError:
                # Cut short (SIGTERM, a deadline): what finished is kept, the rest says why not.
                await self._end(cut_short=True)
                raise
            await self._end()
            return self.snapshot
        finally:
            self.writer.close()

    async def _crawl_all(self) -> None:
        """Visit every reference and, to the configured depth, their related stories."""
        try:
            async with asyncio.TaskGroup() as group:
                self.group, self.writer.spawn = group, group.create_task
                fetch = self.settings.fetch
                self.frontier = Frontier(
                    self._visit_safely,
                    group.create_task,
                    concurrency=fetch.concurrency * VISITS_PER_SLOT,
                    per_host=fetch.per_host_concurrency * VISITS_PER_HOST_SLOT,
                )
                root = self.snapshot.root
                for position, link in enumerate(self.article.links):
                    self._schedule(self.tree.add(link, root, Relation.REFERENCE, position))
                await self.frontier.wait_idle()
        except BaseExceptionGroup as exc:
            raise first_crawler_error(exc) from exc
        finally:
            self.group = self.writer.spawn = None

    async def _begin(self) -> None:
        """Record the running snapshot and its root before any link is fetched."""
        snap = self.snapshot
        if self.store is not None:
            snap.snapshot_id = await self.writer.call(
                self.store.begin_snapshot,
                snap.source,
                snap.started_at,
                watch_id=self.watch_id,
                insecure=snap.insecure,
                settings={"owner": owner_info(), "answers": answer_settings(self.settings)},
            )
            self.writer.snapshot_id = snap.snapshot_id
            urls = [_normalize(link.url) for link in self.article.links]
            await self.previous.load_references(urls)
        if self.root_result is not None:
            self._apply(snap.root, self.root_result, None, self.root_result.body)
            snap.root.title = self.article.title
        else:
            self._keep_body(snap.root, self.article.text.encode("utf-8"))
        self.writer.add_node(snap.root)

    async def _end(self, *, cut_short: bool = False) -> None:
        """Cross-node flags, the outcome, then one final write that marks the snapshot finished."""
        snap = self.snapshot
        changed = resync_duplicates(snap.root, self.by_normalized, self.completed)
        changed += mark_result_duplicates(snap.root)
        if cut_short:
            for node in snap.root.walk():
                if node.key not in self.completed and node.relation is not Relation.ROOT:
                    self.dirty[node.key] = node
                    node.verdict, node.reason = Verdict.SKIPPED, CUT_SHORT_REASON
            snap.outcome = Outcome.PARTIAL
        else:
            snap.outcome, lost = conclude_outcome(
                snap.root, self.results, self.fetched, cap_hit=self.cap_hit
            )
            changed += lost
        self.dirty.update((node.key, node) for node in changed)
        if self.finalize is not None:
            self.finalize(snap)
        snap.finished_at = self.clock()
        await self._write_final()

    def _schedule(self, node: Node) -> None:
        """Queue a node unless an equal URL was already taken, in which case it is a duplicate."""
        self.total += 1
        first = self.by_normalized.get(node.normalized_url)
        if first is not None:
            kind = DuplicateKind.EXACT if first.url == node.url else DuplicateKind.NORMALIZED
            mark_duplicate(node, first, kind)
            self.dirty[node.key] = node
            if first.key in self.completed:
                self._copy_answer(node, first)
            else:
                self.repeats.setdefault(first.key, []).append(node)
            return
        self.by_normalized[node.normalized_url] = node
        assert self.frontier is not None
        self.frontier.push(node)

    async def _visit_safely(self, node: Node) -> None:
        """Visit a node; a bug while handling one page becomes that node's error, not a crash."""
        try:
            await self._visit(node)
        except CrawlerError:
            raise  # the store failing is the crawl's problem, not this node's
        except Exception as exc:  # the crawl goes on; the node says what went wrong
            node.verdict, node.reason = (
                Verdict.ERROR,
                f"internal error: {type(exc).__name__}: {exc}",
            )
            self._finish(node)

    def _copy_answer(self, node: Node, first: Node) -> None:
        """A duplicate is not fetched again: it takes the first node's answer."""
        for name in REPEATED_FIELDS:
            setattr(node, name, getattr(first, name))
        node.redirects = list(first.redirects)
        if not first.redirects and first.final_url is not None:
            node.final_url = node.url  # no redirect to show: the answer came from this URL's twin
        if Flag.DEAD in first.flags:
            node.add_flag(Flag.DEAD)
        self._finish(node)

    def _follow_level(self, node: Node) -> int:
        """How many related-story levels lie below this node (0: do not parse it for links)."""
        level = node.depth - 1  # references are level 0 of the related-story chain
        return self.settings.crawl.depth - level

    async def _visit(self, node: Node) -> None:
        """Fetch, classify and parse one node; schedule its related stories."""
        if node.key in self.completed:  # read already, then adopted by a shallower page
            await self._follow_stored(node)
            return
        if self.pages_fetched >= self.settings.crawl.max_pages:
            self.cap_hit = True
            node.verdict, node.reason = Verdict.SKIPPED, "page limit reached for this crawl"
            self._finish(node)
            return
        self.pages_fetched += 1  # reserved before any await, so concurrent visits respect the cap
        await self.writer.wait_for_room()
        robots = node.relation is Relation.RELATED and self.settings.crawl.respect_robots
        if robots and not await self.fetcher.allowed_by_robots(node.url):
            self.pages_fetched -= 1
            node.verdict, node.reason = Verdict.SKIPPED, "disallowed by robots.txt"
            self._finish(node)
            return
        done = self.resume.get(node.normalized_url)
        if done is not None:
            page = await self._reuse(node, done)
        else:
            page = await self._fetch(node)
        follow = self._follow_level(node) > 0  # the node is settled: its depth is final
        if follow and page is not None and node.verdict in (Verdict.OK, Verdict.REDIRECTED):
            self._follow(node, page)
        self._finish(node)

    def _follow(self, node: Node, page: PageInfo) -> None:
        """Schedule a page's related stories; one the tree holds already may move under it."""
        queued = []
        for position, link in enumerate(page.related):
            known = self.by_normalized.get(_normalize(link.url))
            if known is not None:  # related blocks cross-link: not repeated, maybe adopted
                level = self._follow_level(known)
                if self.tree.adopt(known, node, position) and known.key in self.completed:
                    self._moved_after_reading(known, level)
                continue
            child = self.tree.add(link, node, Relation.RELATED, position)
            self._schedule(child)
            if self.by_normalized.get(child.normalized_url) is child:
                queued.append(child.normalized_url)
        self.previous.look_up(queued, self.group)

    def _moved_after_reading(self, story: Node, level_before: int) -> None:
        """A story read as a leaf moved up: store it again, and follow its related stories if
        its new depth asks for it (read from its stored body, not fetched again)."""
        self.dirty[story.key] = story
        followed = story.verdict in (Verdict.OK, Verdict.REDIRECTED) and story.content_sha256
        if level_before <= 0 < self._follow_level(story) and followed:
            assert self.frontier is not None
            self.tree.settle(story)
            self.frontier.push(story)

    async def _follow_stored(self, node: Node) -> None:
        """Follow the related stories of a page read before, from its body (waiting for the
        store or kept by it); without a stored body it stays a leaf."""
        digest = node.content_sha256
        body = self.writer.batch.bodies.get(digest) if digest else None
        if body is None and digest:
            body = await self.previous.body(digest)
        page = self._read(node.content_type, body, node.final_url or node.url, True)
        if page is not None:
            self._follow(node, page)
        if not node.children:
            self.tree.release(node)

    def _settle(self, node: Node) -> bool:
        """Fix a node's place in the tree before its page is read (no page adopts it from now
        on) and say whether its related stories are followed from there."""
        self.tree.settle(node)
        return self._follow_level(node) > 0

    async def _fetch(self, node: Node) -> PageInfo | None:
        """Fetch a node (conditionally when the store knows it), classify it, parse its page."""
        # A story adopted by a shallower page while this fetch is under way is followed from
        # there; a body is wanted for any page that is followed now or looks like a page.
        want_body = self._follow_level(node) > 0 or looks_like_page(node.url)
        previous = await self.previous.of(node)
        result = await self.fetcher.fetch(
            node.url,
            want_body=want_body,
            etag=previous.etag if previous else None,
            last_modified=previous.last_modified if previous else None,
        )
        follow = self._settle(node)
        self._record(node, result)
        body = result.body
        unchanged = result.status_code == 304 and previous is not None
        if unchanged and previous is not None and previous.content_sha256:
            node.add_flag(Flag.NOT_MODIFIED)
            node.content_sha256 = previous.content_sha256
            # Only a page whose related stories are followed is read again from the store; a
            # leaf keeps what the last fetch learned from it.
            body = await self.previous.body(previous.content_sha256) if follow else None
        if unchanged and previous is not None and body is None:
            page: PageInfo | None = PageInfo(
                title=previous.title,
                canonical_url=previous.canonical_url,
                published=previous.published,
            )
        else:
            page = self._read(result.content_type, body, result.final_url or node.url, follow)
        self._apply(node, result, page, body)
        if unchanged and previous is not None and previous.verdict is Verdict.SOFT404:
            node.verdict, node.reason = previous.verdict, previous.reason  # still the same page
        if (
            self.group is not None
            and page is not None
            and self.site_probe.looks_generic(node, page)
        ):
            # Checked beside the crawl: the node is finished now and corrected if the probe says so.
            self.group.create_task(self._check_site_soft404(node, page))
        return page

    async def _reuse(self, node: Node, done: Node) -> PageInfo | None:
        """Take a node's answer from the interrupted crawl this one resumes, without fetching."""
        follow = self._settle(node)
        for name in ANSWER_FIELDS:
            setattr(node, name, getattr(done, name))
        node.redirects = list(done.redirects)
        for flag in done.flags:
            if flag in (Flag.DEAD, Flag.RETRIED, Flag.NOT_MODIFIED):
                node.add_flag(flag)
        node.add_flag(Flag.RESUMED)
        self._record(node, result_of(done))
        if not follow or not done.content_sha256:
            return None
        body = await self.previous.body(done.content_sha256)
        return self._read(done.content_type, body, done.final_url or done.url, follow)

    async def _check_site_soft404(self, node: Node, page: PageInfo) -> None:
        """Compare a generic-looking page with the site's answer for a made-up path."""
        for changed in await self.site_probe.check(node, page):
            self.dirty[changed.key] = changed

    def _read_page(self, content_type: str | None, body: bytes | None, url: str) -> PageInfo | None:
        """A page's metadata only (for the soft-404 probe's answer)."""
        return self._read(content_type, body, url, False)

    def _read(
        self, content_type: str | None, body: bytes | None, url: str, follow: bool
    ) -> PageInfo | None:
        return read_page(self.settings.crawl, content_type, body, url, follow)

    def _apply(
        self, node: Node, result: FetchResult, page: PageInfo | None, body: bytes | None
    ) -> None:
        """Copy the answer onto the node and keep its body (a 304 brought none)."""
        apply_answer(node, result, page)
        if body is not None and result.status_code != 304:
            self._keep_body(node, body)

    def _keep_body(self, node: Node, body: bytes) -> None:
        """Hash a body onto its node and queue it for the store (stored once per content)."""
        node.content_sha256 = hashlib.sha256(body).hexdigest()
        self.writer.add_body(node.content_sha256, body)

    def _finish(self, node: Node) -> None:
        self.completed.add(node.key)
        if node.children:
            self.tree.settle(node)  # a subtree moves no more
        else:
            self.tree.release(node)  # a leaf may still move up (and be followed from there)
        self.previous.forget(node)  # a lookup left by a visit that never fetched
        for repeat in self.repeats.pop(node.key, []):
            self._copy_answer(repeat, node)
        self.done += 1
        self.writer.add_node(node)
        if self.progress is not None:
            self.progress(self.done, self.total)

    async def _write_final(self) -> None:
        """The last batch, with every node changed after it was queued (after a finalize hook,
        which may change any node, every node), then the snapshot marked finished."""
        snap, store = self.snapshot, self.store
        changed = snap.root.walk() if self.finalize is not None else self.dirty.values()
        await self.writer.flush(changed)
        if store is not None and snap.snapshot_id is not None and snap.finished_at is not None:
            await self.writer.call(
                store.finish_snapshot,
                snap.snapshot_id,
                finished_at=snap.finished_at,
                outcome=snap.outcome,
                summary=snap.summary(),
            )

    def _record(self, node: Node, result: FetchResult) -> None:
        """Keep what the outcome needs of a fetch (the frontier keeps no pages)."""
        self.results.append(Attempted.of(result))
        self.fetched.append(node)
        if result.failure is Failure.INVALID_URL:
            node.add_flag(Flag.MALFORMED)


async def run_crawl(
    source: str,
    settings: Settings,
    *,
    kind: SourceKind | None = None,
    stdin: BinaryIO | None = None,
    store: Store | None = None,
    progress: Progress | None = None,
    fetcher: Fetcher | None = None,
    watch_id: int | None = None,
    finalize: Callable[[Snapshot], None] | None = None,
) -> Snapshot:
    """Read an article (a path, `-` or a URL), crawl it, store and return the snapshot.

    Pass a `fetcher` to share one client and its per-host limits between crawls (the daemon does).
    """
    from crawler.fetch import Fetcher

    article = None if is_url_source(source) else read_source(source, kind, stdin=stdin)
    resume: dict[str, Node] = {}
    if store is not None:
        await asyncio.to_thread(store.recover_interrupted, is_crawl_alive)
        answers = answer_settings(settings)
        resume = await asyncio.to_thread(resumable_nodes, store, source, utcnow(), answers)
    async with contextlib.AsyncExitStack() as stack:
        if fetcher is None:
            fetcher = await stack.enter_async_context(Fetcher(settings.fetch))
        root_result = None
        if article is None:
            article, root_result = await read_article(source, fetcher, kind=kind)
        crawl = Crawl(
            article,
            settings,
            fetcher,
            store,
            progress=progress,
            root_result=root_result,
            resume=resume,
            watch_id=watch_id,
            finalize=finalize,
        )
        return await crawl.run()
