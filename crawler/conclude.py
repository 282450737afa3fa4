"""What a finished crawl concludes across its nodes: duplicates by final URL and canonical,
repeats brought in line with the URL they repeat, and the crawl's outcome.

Each function changes nodes in place and returns the ones it changed, so that the crawl can
write them again.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence

from crawler.classify import Fetched, network_down_since
from crawler.model import DuplicateKind, Flag, Node, Outcome, Relation, Verdict
from crawler.urls import normalize_url

NETWORK_DOWN_REASON = "not checked: the checker's own network looked down"


def mark_duplicate(node: Node, first: Node, kind: DuplicateKind) -> None:
    """Flag `node` as a duplicate of `first`."""
    node.add_flag(Flag.DUPLICATE)
    node.duplicate_of = first.url
    node.duplicate_kind = kind.value


def resync_duplicates(
    root: Node, by_normalized: Mapping[str, Node], completed: Container[int]
) -> list[Node]:
    """Repeats of a URL take its final verdict (a site probe may change it after they copied)."""
    changed = []
    for node in root.walk():
        first = by_normalized.get(node.normalized_url)
        if first is None or first is node or node.key not in completed:
            continue
        if (node.verdict, node.reason) != (first.verdict, first.reason):
            node.verdict, node.reason = first.verdict, first.reason
            changed.append(node)
    return changed


def mark_result_duplicates(root: Node) -> list[Node]:
    """Flag links that end at the same final URL or canonical as an earlier link."""
    changed = []
    seen_final: dict[str, Node] = {}
    seen_canonical: dict[str, Node] = {}
    for node in sorted(root.walk(), key=lambda n: n.key):
        if node.relation is Relation.ROOT or Flag.DUPLICATE in node.flags:
            continue
        final = normalize_url(node.final_url) if node.final_url else None
        canonical = normalize_url(node.canonical_url) if node.canonical_url else None
        first = seen_final.get(final) if final else None
        if first is not None:
            mark_duplicate(node, first, DuplicateKind.REDIRECT)
            changed.append(node)
        elif canonical and canonical in seen_canonical:
            mark_duplicate(node, seen_canonical[canonical], DuplicateKind.CANONICAL)
            changed.append(node)
        if final:
            seen_final.setdefault(final, node)
        if canonical:
            seen_canonical.setdefault(canonical, node)
    return changed


def conclude_outcome(
    root: Node, results: Sequence[Fetched], fetched: Sequence[Node], *, cap_hit: bool
) -> tuple[Outcome, list[Node]]:
    """Inconclusive when our own network was down, and then the links that failed since say
    so instead of calling themselves dead; partial when a limit cut the crawl short.

    `results` are the crawl's fetches in completion order, `fetched` the node of each.
    """
    since = network_down_since(results)
    if since is None:
        return (Outcome.PARTIAL if cap_hit else Outcome.COMPLETE), []
    lost = {n.normalized_url for n in fetched[since:]}
    changed = []
    for node in root.walk():
        failed = node.verdict in (Verdict.DEAD, Verdict.ERROR)
        if node.relation is Relation.ROOT or not failed or node.normalized_url not in lost:
            continue
        node.reason = f"{NETWORK_DOWN_REASON} ({node.reason})"
        node.verdict = Verdict.ERROR
        if Flag.DEAD in node.flags:
            node.flags.remove(Flag.DEAD)
        changed.append(node)
    return Outcome.INCONCLUSIVE, changed
