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
    from crawler.store import SnapshotInfo, Store

RESUME_WINDOW_SECONDS = 24 * 3600  # an interrupted crawl younger than this is resumed
STALE_AFTER_SECONDS = 6 * 3600  # another machine's "running" crawl is believed this long
CUT_SHORT_REASON = "not checked: the crawl was cut short"

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


def resumable_nodes(store: Store, source: str, now: datetime) -> dict[str, Node]:
    """Finished nodes of this source's latest crawl, if it was interrupted recently."""
    latest = store.list_snapshots(source, limit=1)
    if not latest:
        return {}
    info = latest[0]
    recent = (now - info.started_at).total_seconds() <= RESUME_WINDOW_SECONDS
    if info.outcome is not Outcome.PARTIAL or not recent:
        return {}
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
