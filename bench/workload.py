"""Deterministic fake-web workloads with ground truth: what each URL does and should be called.

The server process and the bench both call `build_workload()` with the same arguments and get
the same table, so nothing but a few numbers crosses the process boundary.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from enum import StrEnum

FIRST_HOST = 2  # 127.0.0.2 ...
DEFAULT_HOSTS = 50
FLAT_REFERENCES = 2000
DEEP_REFERENCES = 300
DEEP_RELATED = 4  # related stories listed on each page of the deep workload
DEEP_DEPTH = 2


class Kind(StrEnum):
    """How a fake URL behaves."""

    OK = "ok"
    DEAD = "dead"  # 404 or 410
    REDIRECT = "redirect"  # a chain of 1-3 hops ending on an ok page
    FLAKY = "flaky"  # 503 the first time, then 200: not dead
    RATE_LIMITED = "ratelimited"  # 429 Retry-After: 1 the first time, then 200: not dead
    SOFT404 = "soft404"  # 200 with a "Page not found" page
    SLOW = "slow"  # 200 after 2 s
    BLOCKED = "blocked"  # 403: blocked, not dead


# Realistic shares of a news article's references (they add up to 1).
SHARES: tuple[tuple[Kind, float], ...] = (
    (Kind.OK, 0.70),
    (Kind.DEAD, 0.08),
    (Kind.REDIRECT, 0.08),
    (Kind.FLAKY, 0.04),
    (Kind.RATE_LIMITED, 0.03),
    (Kind.SOFT404, 0.03),
    (Kind.SLOW, 0.02),
    (Kind.BLOCKED, 0.02),
)
# Kinds whose final answer is a real article page (which may list related stories).
HAS_PAGE = frozenset({Kind.OK, Kind.REDIRECT, Kind.FLAKY, Kind.RATE_LIMITED, Kind.SLOW})


@dataclass(frozen=True, slots=True)
class Entry:
    """One path the fake web answers."""

    path: str
    kind: Kind
    host: int  # last octet of the 127.0.0.x address
    status: int = 200  # 404/410 for dead; redirect hop status for redirects
    target: str | None = None  # next hop's path, for redirects
    title: str = ""
    depth: int = 0  # crawl depth of the page (0 = a reference of the article)
    related: tuple[str, ...] = ()  # paths of related stories (same host)


@dataclass(slots=True)
class Workload:
    """Every path served, the article's references and the ground truth."""

    name: str
    entries: dict[str, Entry] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)  # paths, in article order
    expected: dict[str, int] = field(
        default_factory=dict
    )  # path -> depth, URLs a crawl should check

    def url(self, path: str, port: int) -> str:
        """The absolute URL of a path on its host."""
        return f"http://127.0.0.{self.entries[path].host}:{port}{path}"

    def truth(self, kind: Kind) -> set[str]:
        """Paths of checked URLs (references and related) of one kind."""
        return {p for p in self.expected if self.entries[p].kind is kind}


def _kinds(rng: random.Random, count: int) -> list[Kind]:
    """Exactly `count` kinds in the realistic shares, shuffled."""
    kinds: list[Kind] = []
    for kind, share in SHARES[1:]:
        kinds += [kind] * round(count * share)
    kinds += [Kind.OK] * (count - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _random_kinds(rng: random.Random, count: int) -> list[Kind]:
    """`count` kinds drawn independently in the realistic shares."""
    return rng.choices([k for k, _ in SHARES], weights=[s for _, s in SHARES], k=count)


def _slug(rng: random.Random) -> str:
    words = (
        "ministry",
        "talks",
        "bases",
        "election",
        "market",
        "storm",
        "court",
        "budget",
        "trade",
    )
    return "-".join(rng.choice(words) for _ in range(3))


class _Builder:
    """Adds entries to a workload, numbering paths."""

    def __init__(self, workload: Workload, rng: random.Random) -> None:
        self.workload = workload
        self.rng = rng
        self.counter = 0

    def add(self, kind: Kind, host: int, depth: int) -> str:
        """Add one URL of a kind (and its redirect chain) and return its path."""
        self.counter += 1
        n, rng = self.counter, self.rng
        path = f"/{rng.choice(('news', 'world', 'politics'))}/{n:05d}-{_slug(rng)}.html"
        title = f"Story {n}: {_slug(rng).replace('-', ' ').title()}"
        status = rng.choice((404, 410)) if kind is Kind.DEAD else 200
        entries = self.workload.entries
        if kind is Kind.REDIRECT:
            final = path.replace(".html", "-final.html")
            entries[final] = Entry(final, Kind.OK, host, title=title, depth=depth)
            target = final
            for hop in range(rng.randint(1, 3), 0, -1):
                hop_path = f"/go/{n:05d}/{hop}"
                code = rng.choice((301, 302, 307, 308))
                entries[hop_path] = Entry(hop_path, kind, host, code, target, title, depth)
                target = hop_path
            return target
        entries[path] = Entry(path, kind, host, status, None, title, depth)
        return path

    def relate(self, path: str, related: tuple[str, ...]) -> None:
        """Give the page a path resolves to (following redirects) its related stories."""
        entries = self.workload.entries
        entry = entries[path]
        while entry.target is not None:
            entry = entries[entry.target]
        entries[entry.path] = Entry(
            entry.path,
            entry.kind,
            entry.host,
            entry.status,
            None,
            entry.title,
            entry.depth,
            related,
        )


def build_workload(
    name: str, seed: int = 7, hosts: int = DEFAULT_HOSTS, scale: float = 1.0
) -> Workload:
    """The `flat` (2,000 references) or `deep` (related stories to depth 2) workload."""
    rng = random.Random(f"{name}:{seed}")
    workload = Workload(name)
    builder = _Builder(workload, rng)
    count = max(8, round((FLAT_REFERENCES if name == "flat" else DEEP_REFERENCES) * scale))
    host_of = [FIRST_HOST + i % hosts for i in range(count)]
    rng.shuffle(host_of)
    for kind, host in zip(_kinds(rng, count), host_of, strict=True):
        path = builder.add(kind, host, 0)
        workload.references.append(path)
        workload.expected[path] = 0
    if name == "deep":
        _grow_related(builder, workload.references, 1)
    return workload


def _grow_related(builder: _Builder, parents: list[str], depth: int) -> None:
    """Give every real page under `parents` related stories, down to DEEP_DEPTH (+1 unvisited)."""
    workload = builder.workload
    children: list[str] = []
    for parent in parents:
        entry = workload.entries[parent]
        if entry.kind not in HAS_PAGE:
            continue
        kinds = _random_kinds(builder.rng, DEEP_RELATED) if depth <= DEEP_DEPTH else [Kind.OK] * 4
        related = tuple(builder.add(kind, entry.host, depth) for kind in kinds)
        builder.relate(parent, related)
        if depth <= DEEP_DEPTH:
            for path in related:
                workload.expected[path] = depth
            children += related
    if depth <= DEEP_DEPTH:
        _grow_related(builder, children, depth + 1)


def etag_of(path: str) -> str:
    """A stable strong ETag for a page."""
    return '"' + hashlib.blake2b(path.encode(), digest_size=8).hexdigest() + '"'


def render_flat_article(workload: Workload, port: int) -> str:
    """The flat article as plain text: a few sentences, one reference per line."""
    lines = ["Benchmark article: what the sources say.", ""]
    for i, path in enumerate(workload.references, 1):
        lines.append(f"[{i}] Source {i}: {workload.url(path, port)}")
    return "\n".join(lines) + "\n"


def render_html_article(workload: Workload, port: int) -> str:
    """The article as an HTML page of links (for the deep crawl and for the peers)."""
    items = "\n".join(
        f'<li><a href="{workload.url(p, port)}">Source {i}</a></li>'
        for i, p in enumerate(workload.references, 1)
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Benchmark article</title></head>"
        f"<body><article><h1>Benchmark article</h1><p>What the sources say.</p><ol>\n{items}\n"
        "</ol></article></body></html>\n"
    )
