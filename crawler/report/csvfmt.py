"""The CSV format: one row per node, in tree order, for spreadsheets and scripts (RFC 4180).

URLs are redacted and page strings cleaned as in every format. A cell a spreadsheet would
read as a formula (a page title starting with `=`, `+`, `-` or `@`) gets a leading `'`,
as OWASP's "CSV injection" advice has it: a hostile <title> must not run in Excel.
"""

from __future__ import annotations

import csv
import io

from crawler.model import Node, Snapshot
from crawler.report.common import clean_text, clean_url

COLUMNS = (
    "snapshot_id", "key", "parent_key", "depth", "relation", "verdict", "status_code", "url",
    "final_url", "redirects", "reason", "title", "text", "duplicate_of", "duplicate_kind",
    "flags", "attempts", "elapsed_ms", "content_type", "content_sha256", "canonical_url",
    "published", "line",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render_csv(snapshot: Snapshot) -> str:
    """The snapshot's nodes as CSV with a header row (CRLF line ends, as RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    snapshot_id = "" if snapshot.snapshot_id is None else str(snapshot.snapshot_id)
    for node in snapshot.root.walk():
        writer.writerow([snapshot_id, *node_row(node)])
    return out.getvalue()


def node_row(node: Node) -> list[str]:
    """The cells of one node after `snapshot_id`, in COLUMNS order."""
    hops = " ".join(f"{hop.status_code} {clean_url(hop.url)}" for hop in node.redirects)
    return [
        str(node.key),
        _cell(node.parent_key),
        str(node.depth),
        node.relation.value,
        node.verdict.value,
        _cell(node.status_code),
        clean_url(node.url),
        "" if node.final_url is None else clean_url(node.final_url),
        hops,
        _text(node.reason),
        _text(node.title),
        _text(node.text),
        "" if node.duplicate_of is None else clean_url(node.duplicate_of),
        node.duplicate_kind or "",
        ";".join(dict.fromkeys(node.flags)),
        str(node.attempts),
        "" if node.elapsed_ms is None else f"{node.elapsed_ms:.1f}",
        _text(node.content_type),
        node.content_sha256 or "",
        "" if node.canonical_url is None else clean_url(node.canonical_url),
        _text(node.published),
        _cell(node.line),
    ]


def _cell(value: int | None) -> str:
    """An optional number as a cell."""
    return "" if value is None else str(value)


def _text(value: str | None) -> str:
    """A page string cleaned, and defused if a spreadsheet would take it for a formula."""
    if value is None:
        return ""
    text = clean_text(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
