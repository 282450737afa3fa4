"""Core values of a crawl: links found, fetch results, verdicts and the snapshot tree.

Everything here is plain data. Stages take and return these types; only `crawl.py`
assembles them into a tree and only `store/` and `report/` turn them into rows or text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import overload

SCHEMA_ID = "crawler.snapshot/1"
# Snapshot and watch ids are INTEGER columns: 32-bit in PostgreSQL (64 in SQLite). A larger id
# names nothing in either store, and PostgreSQL refuses to compare with one.
MAX_ROW_ID = 2**31 - 1


class Verdict(StrEnum):
    """What a link did, as a value (lychee's `Status`): a 404 is not an exception."""

    OK = "ok"
    REDIRECTED = "redirected"
    DEAD = "dead"
    BLOCKED = "blocked"
    ERROR = "error"
    SOFT404 = "soft404"
    SKIPPED = "skipped"


class Relation(StrEnum):
    """How a node hangs in the tree."""

    ROOT = "root"
    REFERENCE = "reference"
    RELATED = "related"


class Outcome(StrEnum):
    """How a whole crawl ended. RUNNING exists only in the store, while a crawl is under way."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    INCONCLUSIVE = "inconclusive"
    RUNNING = "running"


class SourceKind(StrEnum):
    """What an article is written in."""

    TEXT = "text"
    HTML = "html"
    MARKDOWN = "markdown"


class Flag(StrEnum):
    """Labels a node may carry besides its verdict."""

    DEAD = "dead"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    NEWLY_DEAD = "newly-dead"
    RECOVERED = "recovered"
    FLAPPING = "flapping"
    CONTENT_CHANGED = "content-changed"
    MALFORMED = "malformed"
    NOT_MODIFIED = "not-modified"
    INSECURE = "insecure"
    RESUMED = "resumed"


class DuplicateKind(StrEnum):
    """How a duplicate matches the node it repeats."""

    EXACT = "exact"
    NORMALIZED = "normalized"
    REDIRECT = "redirect"
    CANONICAL = "canonical"


class Failure(StrEnum):
    """Why no usable HTTP answer came back (the transport-level half of a verdict)."""

    DNS = "dns"
    REFUSED = "refused"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    RESET = "reset"
    TLS = "tls"
    PROTOCOL = "protocol"
    TOO_LARGE = "too-large"
    REDIRECT_LOOP = "redirect-loop"
    TOO_MANY_REDIRECTS = "too-many-redirects"
    BAD_REDIRECT = "bad-redirect"
    UNSUPPORTED_SCHEME = "unsupported-scheme"
    INVALID_URL = "invalid-url"
    PRIVATE_ADDRESS = "private-address"
    ROBOTS = "robots"


@dataclass(frozen=True, slots=True)
class Link:
    """A URL found in an article or page, with where it was found."""

    url: str
    line: int | None = None
    text: str | None = None
    raw: str | None = None
    origin: str | None = None  # e.g. "a[href]", "img[src]", "markdown", "text", "related-block"


@dataclass(frozen=True, slots=True)
class Hop:
    """One redirect answered on the way: the URL asked and the status it gave."""

    url: str
    status_code: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Everything one fetch learned, retries included. Never raised; always returned."""

    url: str
    method: str = "GET"
    status_code: int | None = None
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    attempts: int = 1
    statuses: tuple[int | None, ...] = ()  # status of every attempt, None for a failed one
    elapsed_ms: float | None = None
    failure: Failure | None = None
    detail: str | None = None
    content_type: str | None = None
    body: bytes | None = None
    truncated: bool = False
    etag: str | None = None
    last_modified: str | None = None
    retry_after: float | None = None

    @property
    def answered(self) -> bool:
        """True when some HTTP server answered (any status), i.e. the network worked."""
        return self.status_code is not None or any(s is not None for s in self.statuses)


@dataclass(frozen=True, slots=True)
class Attempted:
    """What a crawl's outcome needs of one fetch, kept for each until the crawl ends: whether a
    server answered and, if not, how it failed (64 bytes, where a FetchResult and its statuses
    take over 200)."""

    url: str
    final_url: str | None
    failure: Failure | None
    answered: bool

    @classmethod
    def of(cls, result: FetchResult) -> Attempted:
        """The part of `result` the outcome reads."""
        return cls(result.url, result.final_url, result.failure, result.answered)


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What a fetched HTML page says about itself and which related stories it lists."""

    title: str | None = None
    heading: str | None = None  # the first <h1>, used to spot soft-404 pages
    canonical_url: str | None = None
    published: str | None = None
    language: str | None = None
    related: tuple[Link, ...] = ()


@overload
def one_copy(value: str, *known: str | None) -> str: ...
@overload
def one_copy(value: str | None, *known: str | None) -> str | None: ...
def one_copy(value: str | None, *known: str | None) -> str | None:
    """`value`, or an equal string a node holds already: one copy per node, not several.

    A crawl keeps every node until it ends, and most nodes' normalized, final and canonical
    URLs are spelled like the URL itself: sharing the string saves ~100 bytes each.
    """
    if value is not None:
        for other in known:
            if other == value:
                return other
    return value


@dataclass(slots=True)
class Node:
    """One URL in the snapshot tree. Mutable while the crawl fills it in."""

    url: str
    normalized_url: str
    relation: Relation
    depth: int
    key: int = 0  # position in the crawl, unique per snapshot; parent_key links the tree
    parent_key: int | None = None
    verdict: Verdict = Verdict.SKIPPED
    reason: str | None = None
    status_code: int | None = None
    final_url: str | None = None
    redirects: list[Hop] = field(default_factory=list)
    attempts: int = 0
    flags: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    duplicate_kind: str | None = None
    title: str | None = None
    canonical_url: str | None = None
    published: str | None = None
    content_sha256: str | None = None
    content_type: str | None = None
    elapsed_ms: float | None = None
    etag: str | None = None
    last_modified: str | None = None
    line: int | None = None
    text: str | None = None
    children: list[Node] = field(default_factory=list)

    def add_flag(self, flag: str) -> None:
        """Add a flag once, keeping the order flags were added in."""
        if flag not in self.flags:
            self.flags.append(flag)

    def walk(self) -> list[Node]:
        """This node and every descendant, depth first, in tree order."""
        out: list[Node] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass(slots=True)
class Snapshot:
    """One crawl of one article."""

    source: str
    started_at: datetime
    root: Node
    outcome: Outcome = Outcome.RUNNING
    finished_at: datetime | None = None
    snapshot_id: int | None = None
    insecure: bool = False

    def summary(self) -> dict[str, int]:
        """Counts for the summary line and the JSON `summary` object."""
        nodes = self.root.walk()
        counts: dict[str, int] = {
            "references": sum(1 for n in nodes if n.relation is Relation.REFERENCE),
            "nodes": len(nodes),
            "dead": sum(1 for n in nodes if n.verdict is Verdict.DEAD),
            "duplicates": sum(1 for n in nodes if Flag.DUPLICATE in n.flags),
        }
        for verdict in Verdict:
            counts[f"verdict_{verdict.value}"] = sum(1 for n in nodes if n.verdict is verdict)
        return counts
