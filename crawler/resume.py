"""Crash recovery: who owns a running snapshot, and what an interrupted crawl already finished.

A crawl records its owner (host and pid) when it begins; a later start marks snapshots whose
owner is gone as `partial` and reuses their finished nodes instead of fetching them again.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.model import FetchResult, Flag, Node, Outcome, Relation, Verdict

if TYPE_CHECKING:
    from crawler.store import SnapshotInfo, Store

RESUME_WINDOW_SECONDS = 24 * 3600  # an interrupted crawl younger than this is resumed
STALE_AFTER_SECONDS = 6 * 3600  # another machine's "running" crawl is believed this long

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
    """Finished nodes of this source's latest crawl, if a crash interrupted it recently."""
    latest = store.list_snapshots(source, limit=1)
    if not latest:
        return {}
    info = latest[0]
    interrupted = info.outcome == Outcome.PARTIAL.value and info.finished_at is None
    if not interrupted or (now - info.started_at).total_seconds() > RESUME_WINDOW_SECONDS:
        return {}
    return {
        n.normalized_url: n
        for n in store.saved_nodes(info.snapshot_id)
        if n.relation is not Relation.ROOT
        and Flag.DUPLICATE not in n.flags
        and (n.attempts > 0 or n.verdict is not Verdict.SKIPPED)
    }
