"""Site-wide soft 404s: pages that look generic are compared with what the site answers for a
path that cannot exist.

A page "looks generic" when another page of its host came back with the very same body, or when
a deep link names the site's front page as its canonical URL. For such a page the crawl fetches a
made-up sibling path once per directory; if the site answers it 2xx with the same body (or the
same title), every OK twin of that body on the host is a soft 404. The check runs beside the
crawl: the node is finished first and corrected when the probe answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawler.model import Node, PageInfo, Verdict
from crawler.urls import host_key, is_front_page, is_same_site

if TYPE_CHECKING:
    from crawler.fetch import Fetcher

SOFT404_REASON = "the site answers made-up paths with this same page (a soft 404)"

# A page reader: (content type, body, url) -> the page's metadata, None when not a page.
ReadPage = Callable[[str | None, bytes | None, str], PageInfo | None]
# The made-up path's answer: its body's sha256 and its title; None when it was not a 2xx page.
ProbeAnswer = tuple[str, str | None] | None


class SiteProbe:
    """One crawl's probes of made-up paths, and the pages of each host grouped by body."""

    def __init__(self, fetcher: Fetcher, read_page: ReadPage) -> None:
        self.fetcher = fetcher
        self.read_page = read_page
        self.probes: dict[str, asyncio.Task[ProbeAnswer]] = {}  # directory -> its probe
        self.same_body: dict[tuple[str, str], list[Node]] = {}  # (host, sha256) -> OK nodes

    def looks_generic(self, node: Node, page: PageInfo) -> bool:
        """A page worth comparing with a made-up path: the same body as another page of its
        host, or a deep link whose canonical URL is the site's front page."""
        if node.verdict is not Verdict.OK or node.content_sha256 is None:
            return False
        url = node.final_url or node.url
        twins = self.same_body.setdefault((host_key(url), node.content_sha256), [])
        twins.append(node)
        return len(twins) >= 2 or canonical_is_front_page(url, page.canonical_url)

    async def check(self, node: Node, page: PageInfo) -> list[Node]:
        """Compare a generic-looking page with the site's answer for a made-up sibling path;
        the nodes turned into soft 404s (the page and its twins), for the caller to store."""
        url = node.final_url or node.url
        directory = url.split("?", 1)[0].rsplit("/", 1)[0]
        if directory not in self.probes:
            self.probes[directory] = asyncio.create_task(self._probe(url))
        answer = await self.probes[directory]
        if answer is None or node.content_sha256 is None:
            return []
        sha, title = answer
        if sha != node.content_sha256 and (title is None or title != page.title):
            return []
        changed = []
        for twin in self.same_body[(host_key(url), node.content_sha256)]:
            if twin.verdict is Verdict.OK:
                twin.verdict, twin.reason = Verdict.SOFT404, SOFT404_REASON
                changed.append(twin)
        return changed

    async def _probe(self, url: str) -> ProbeAnswer:
        """Fetch a sibling path that cannot exist: its body hash and title, or None if not 2xx."""
        result = await self.fetcher.fetch(probe_url(url), want_body=True)
        if result.status_code is None or not 200 <= result.status_code < 300 or not result.body:
            return None
        page = self.read_page(result.content_type, result.body, result.final_url or url)
        return hashlib.sha256(result.body).hexdigest(), page.title if page else None


def canonical_is_front_page(url: str, canonical: str | None) -> bool:
    """A deep link whose page names the site's front page as its canonical URL."""
    if not canonical or is_front_page(url):
        return False
    return is_front_page(canonical) and is_same_site(url, canonical)


def probe_url(url: str) -> str:
    """A sibling of `url` that cannot exist: the last path segment with a random tail."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    head, _, last = base.rpartition("/")
    return f"{head}/{last or 'index'}-{secrets.token_hex(6)}"
