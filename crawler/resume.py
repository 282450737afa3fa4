"""Crash recovery: who owns a running snapshot, and what an interrupted crawl already finished.

A crawl records its owner (host and pid) when it begins; a later start marks snapshots whose
owner is gone as `partial`. A crawl cut short (Ctrl-C, SIGTERM, a deadline) is stored `partial`
too, its unfinished nodes skipped with CUT_SHORT_REASON. Either way, the next crawl of the same
source reuses the finished nodes instead of fetching them again.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.model import DuplicateKind, FetchResult, Node, Outcome, Relation, Verdict

if TYPE_CHECKING:
    from crawler.config import Settings
    from crawler.store import SnapshotInfo, Store

RESUME_WINDOW_SECONDS = 24 * 3600  # an interrupted crawl younger than this is resumed
STALE_AFTER_SECONDS = 6 * 3600  # another machine's "running" crawl is believed this long
CUT_SHORT_REASON = "not checked: the crawl was cut short"
# What an answer depends on (not how fast it came: concurrency, transport, page cap).
ANSWER_FETCH_SETTINGS = (
    "user_agent",
    "connect_timeout",
    "read_timeout",
    "url_timeout",
    "retries",
    "retry_after_cap",
    "max_redirects",
    "max_body_bytes",
    "head_first",
    "verify_tls",
    "allow_private_networks",
)
ANSWER_CRAWL_SETTINGS = ("respect_robots", "related_same_site", "max_links_per_page")

ANSWER_FIELDS = (
    "verdict",
    "reason",
    "status_code",
    "final_url",
    "attempts",
    "elapsed_ms",
    "content_type",
    "etag",
    "last_modified",
    "title",
    "canonical_url",
    "published",
    "content_sha256",
)


def result_of(node: Node) -> FetchResult:
    """A stand-in fetch result for a reused node, enough for the network-down check."""
    return FetchResult(url=node.url, status_code=node.status_code, attempts=node.attempts)


def owner_info() -> dict[str, object]:
    """Who runs a crawl, so a later start can tell a crashed crawl from a running one."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def is_crawl_alive(info: SnapshotInfo, *, stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """Whether a snapshot still "running" in the store belongs to a live crawl."""
    owner = (info.settings or {}).get("owner")
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        # Another machine's crawl: believe it alive for a while, then call it interrupted.
        return (datetime.now(UTC) - info.started_at).total_seconds() < stale_after
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answer_settings(settings: Settings) -> dict[str, object]:
    """The settings an answer depends on: a crawl resumes only one taken with the same."""
    fetch, crawl = settings.fetch, settings.crawl
    return {
        **{key: getattr(fetch, key) for key in ANSWER_FETCH_SETTINGS},
        **{key: getattr(crawl, key) for key in ANSWER_CRAWL_SETTINGS},
    }


def resumable_nodes(
    store: Store, source: str, now: datetime, answers: dict[str, object] | None = None
) -> dict[str, Node]:
    """Finished nodes of this source's latest crawl, if it was interrupted recently and its
    answers were taken with the same `answer_settings` (None: any)."""
    latest = store.list_snapshots(source, limit=1)
    if not latest:
        return {}
    info = latest[0]
    recent = (now - info.started_at).total_seconds() <= RESUME_WINDOW_SECONDS
    if info.outcome is not Outcome.PARTIAL or not recent:
        return {}
    taken_with = (info.settings or {}).get("answers")
    if answers is not None and taken_with is not None and taken_with != answers:
        return {}  # e.g. --allow-private then, not now: its answers are not this crawl's
    saved = store.saved_nodes(info.snapshot_id)
    if info.finished_at is not None and not any(n.reason == CUT_SHORT_REASON for n in saved):
        return {}  # finished, partial only for its page limit: not interrupted
    return {n.normalized_url: n for n in saved if is_reusable(n)}


def is_reusable(node: Node) -> bool:
    """Whether a saved node holds an answer of its own: fetched (or judged without a fetch),
    not skipped untried and not a repeat of an earlier node's URL. A duplicate by redirect
    or canonical was fetched itself; the next crawl marks it again."""
    repeat = node.duplicate_kind in (DuplicateKind.EXACT, DuplicateKind.NORMALIZED)
    untried = node.attempts == 0 and node.verdict is Verdict.SKIPPED
    return node.relation is not Relation.ROOT and not repeat and not untried
