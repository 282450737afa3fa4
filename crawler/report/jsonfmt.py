"""The JSON contract (`crawler.snapshot/1`, ../shared/schema/snapshot.schema.json) and its inverse.

Every URL is redacted on the way out, so an exported snapshot never carries credentials;
`snapshot_from_dict(snapshot_to_dict(s)) == s` therefore holds for snapshots whose URLs
carry none. A snapshot still RUNNING is written as `partial`, a snapshot never stored gets a
stable string id derived from its source and start time, and a naive datetime is taken to
be UTC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from crawler.model import SCHEMA_ID, Flag, Hop, Node, Outcome, Relation, Snapshot, Verdict
from crawler.report.common import outcome_label, redact_text
from crawler.urls import redact_url

# Characters a page may put in a title that would let JSON break out of an HTML <script> it is
# embedded in; JSON allows them escaped, and outside strings JSON never contains them.
_CHUNK_CHARS = 64 * 1024
_HTML_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def render_json(snapshot: Snapshot) -> str:
    """The snapshot as pretty JSON (indent 2, UTF-8 kept, safe to embed in HTML), newline-ended."""
    return "".join(iter_json(snapshot))


def iter_json(snapshot: Snapshot) -> Iterator[str]:
    """`render_json` in pieces, for writing a large snapshot without holding all its text: the
    encoder's pieces are gathered into chunks of about 64 KiB."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    pieces: list[str] = []
    size = 0
    for piece in encoder.iterencode(snapshot_to_dict(snapshot)):
        pieces.append(piece)
        size += len(piece)
        if size >= _CHUNK_CHARS:
            yield "".join(pieces).translate(_HTML_UNSAFE)
            pieces, size = [], 0
    pieces.append("\n")
    yield "".join(pieces).translate(_HTML_UNSAFE)


def snapshot_to_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as the `crawler.snapshot/1` JSON object."""
    data: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "snapshot_id": _snapshot_id(snapshot),
        "source": redact_url(snapshot.source),
        "started_at": _iso(snapshot.started_at),
        "finished_at": None if snapshot.finished_at is None else _iso(snapshot.finished_at),
        "outcome": outcome_label(snapshot),
        "summary": snapshot.summary(),
        "root": node_to_dict(snapshot.root),
    }
    if snapshot.insecure:
        data["insecure"] = True
    return data


def _snapshot_id(snapshot: Snapshot) -> int | str:
    """The store's id, or for an unsaved crawl a stable `local-…` id from source and start."""
    if snapshot.snapshot_id is not None:
        return snapshot.snapshot_id
    seed = f"{redact_url(snapshot.source)}\n{_iso(snapshot.started_at)}".encode()
    return "local-" + hashlib.sha256(seed).hexdigest()[:12]


def _iso(moment: datetime) -> str:
    """ISO 8601 with an explicit offset (RFC 3339 `date-time`); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def node_to_dict(node: Node) -> dict[str, Any]:
    """One node and its subtree as JSON, URLs redacted."""
    return {
        "url": redact_url(node.url),
        "normalized_url": redact_url(node.normalized_url),
        "final_url": _redacted(node.final_url),
        "relation": node.relation.value,
        "depth": node.depth,
        "key": node.key,
        "parent_key": node.parent_key,
        "verdict": node.verdict.value,
        "status_code": node.status_code,
        "reason": None if node.reason is None else redact_text(node.reason),
        "redirects": [
            {"url": redact_url(hop.url), "status_code": hop.status_code} for hop in node.redirects
        ],
        "attempts": node.attempts,
        "flags": _flags(node),
        "duplicate_of": _redacted(node.duplicate_of),
        "duplicate_kind": node.duplicate_kind,
        "title": None if node.title is None else redact_text(node.title),
        "canonical_url": _redacted(node.canonical_url),
        "published": node.published,
        "content_sha256": node.content_sha256,
        "content_type": node.content_type,
        "elapsed_ms": node.elapsed_ms,
        "etag": node.etag,
        "last_modified": node.last_modified,
        "line": node.line,
        "text": None if node.text is None else redact_text(node.text),
        "children": [node_to_dict(child) for child in node.children],
    }


def _redacted(url: str | None) -> str | None:
    """`redact_url` that lets None through."""
    return None if url is None else redact_url(url)


def _flags(node: Node) -> list[str]:
    """Flags without repeats; the schema promises `dead` on every dead node."""
    flags = list(dict.fromkeys(node.flags))
    if node.verdict is Verdict.DEAD and Flag.DEAD.value not in flags:
        flags.insert(0, Flag.DEAD.value)
    return flags


def snapshot_from_dict(data: Mapping[str, Any]) -> Snapshot:
    """Rebuild a Snapshot from its JSON object; ValueError when it is not `crawler.snapshot/1`."""
    if data.get("schema") != SCHEMA_ID:
        raise ValueError(f"not a {SCHEMA_ID} document (schema is {data.get('schema')!r})")
    try:
        return Snapshot(
            source=str(data["source"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            root=node_from_dict(data["root"]),
            outcome=Outcome(data["outcome"]),
            finished_at=_datetime_or_none(data.get("finished_at")),
            snapshot_id=_id_or_none(data.get("snapshot_id")),
            insecure=bool(data.get("insecure", False)),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed {SCHEMA_ID} document: {exc!r}") from exc


def _datetime_or_none(value: Any) -> datetime | None:
    """Parse an ISO 8601 string, None stays None."""
    return None if value is None else datetime.fromisoformat(value)


def _id_or_none(value: Any) -> int | None:
    """The store id back from JSON: integers (or digit strings) only; `local-…` ids are None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def node_from_dict(data: Mapping[str, Any]) -> Node:
    """Rebuild one node and its subtree; optional fields may be absent."""
    return Node(
        url=str(data["url"]),
        normalized_url=str(data["normalized_url"]),
        relation=Relation(data["relation"]),
        depth=int(data["depth"]),
        key=int(data.get("key") or 0),
        parent_key=_int_or_none(data.get("parent_key")),
        verdict=Verdict(data["verdict"]),
        reason=_str_or_none(data.get("reason")),
        status_code=_int_or_none(data.get("status_code")),
        final_url=_str_or_none(data.get("final_url")),
        redirects=[Hop(str(h["url"]), int(h["status_code"])) for h in data.get("redirects", ())],
        attempts=int(data.get("attempts") or 0),
        flags=[str(flag) for flag in data["flags"]],
        duplicate_of=_str_or_none(data.get("duplicate_of")),
        duplicate_kind=_str_or_none(data.get("duplicate_kind")),
        title=_str_or_none(data.get("title")),
        canonical_url=_str_or_none(data.get("canonical_url")),
        published=_str_or_none(data.get("published")),
        content_sha256=_str_or_none(data.get("content_sha256")),
        content_type=_str_or_none(data.get("content_type")),
        elapsed_ms=None if data.get("elapsed_ms") is None else float(data["elapsed_ms"]),
        etag=_str_or_none(data.get("etag")),
        last_modified=_str_or_none(data.get("last_modified")),
        line=_int_or_none(data.get("line")),
        text=_str_or_none(data.get("text")),
        children=[node_from_dict(child) for child in data.get("children", ())],
    )


def _str_or_none(value: Any) -> str | None:
    """`str(value)`, None stays None."""
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    """`int(value)`, None stays None."""
    return None if value is None else int(value)
