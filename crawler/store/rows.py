"""Pure conversions between `model.Node` and rows of the `nodes` table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from crawler.model import Hop, Node, Relation, Verdict

# Node fields stored as they are (everything but the tree links, enums and lists).
_PLAIN_FIELDS = (
    "key", "parent_key", "url", "normalized_url", "final_url", "depth", "reason", "status_code",
    "attempts", "duplicate_of", "duplicate_kind", "title", "canonical_url", "published",
    "content_sha256", "content_type", "elapsed_ms", "etag", "last_modified", "line", "text",
)  # fmt: skip


def node_to_row(snapshot_id: int, node: Node, saved_at: datetime) -> dict[str, Any]:
    """One `nodes` row; `fetched_at` is the node's own if it has one, else the save time."""
    row: dict[str, Any] = {name: getattr(node, name) for name in _PLAIN_FIELDS}
    row.update(
        snapshot_id=snapshot_id,
        relation=node.relation.value,
        verdict=node.verdict.value,
        redirects=[[hop.url, hop.status_code] for hop in node.redirects],
        flags=[str(flag) for flag in node.flags],
        fetched_at=getattr(node, "fetched_at", None) or saved_at,
    )
    return row


def row_to_node(row: Mapping[Any, Any]) -> Node:
    """A childless Node from a `nodes` row."""
    fields = {name: row[name] for name in _PLAIN_FIELDS}
    return Node(
        relation=Relation(row["relation"]),
        verdict=Verdict(row["verdict"]),
        redirects=[Hop(url, status) for url, status in row["redirects"]],
        flags=list(row["flags"]),
        **fields,
    )


def build_tree(flat: Iterable[Node]) -> Node | None:
    """Link nodes into a tree by `parent_key`, children in key order; None when there are none.

    The root is the parentless node with the lowest key. A node whose parent was never saved
    (possible after a crash) hangs under the root rather than being lost.
    """
    ordered = sorted(flat, key=lambda n: n.key)
    by_key = {node.key: node for node in ordered}
    roots = [n for n in ordered if n.parent_key is None]
    if not roots:
        return None
    root = roots[0]
    for node in ordered:
        if node is root:
            continue
        parent = by_key.get(node.parent_key) if node.parent_key is not None else None
        (parent if parent is not None and parent is not node else root).children.append(node)
    return root
