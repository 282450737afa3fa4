"""The WARC format: a snapshot's fetched pages as WARC/1.0 records (warcio), for replay tools.

Pure like every renderer: the snapshot and a `get_body(sha256) -> bytes | None` callable in
(the store's `get_body`), the bytes of a (by default gzipped) WARC file out. Layout:

    warcinfo                       what wrote the file, for which snapshot
    response  3xx + Location       one per redirect hop, so a replay follows the chain
    response  status + body        the first time a body is seen
    revisit   identical-payload    a body already written: WARC-Refers-To / -Target-URI /
                                   -Date and the same WARC-Payload-Digest, no payload again

The HTTP headers are rebuilt from what the store kept (status, Content-Type, ETag,
Last-Modified); bodies are stored decoded, so no Content-Encoding is claimed. Every record is
dated at the crawl's start, the only time the snapshot keeps. Nodes never fetched on their
own (exact and normalized duplicates repeat another node's answer), nodes fetched without a
body (HEAD) and URLs that are not http(s) (a local article file) are left out.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from crawler.model import DuplicateKind, Node, Snapshot
from crawler.report.common import clean_text, clean_url

GetBody = Callable[[str], bytes | None]
SOFTWARE = "crawler link checker (records written by warcio)"
_NOT_FETCHED = frozenset({DuplicateKind.EXACT.value, DuplicateKind.NORMALIZED.value})


@dataclass
class _Written:
    """What is already in the file: URIs with their responses, and bodies by hash."""

    uris: set[tuple[str, str]] = field(default_factory=set)
    bodies: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # sha -> uri, id, digest


def render_warc(snapshot: Snapshot, get_body: GetBody, *, gzip: bool = True) -> bytes:
    """The snapshot's fetched pages as a WARC file (each record gzipped unless `gzip=False`)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzip)
    date = datetime_to_iso_date(snapshot.started_at.replace(tzinfo=None))
    writer.write_record(_warcinfo(writer, snapshot, date))
    written = _Written()
    for node in snapshot.root.walk():
        if is_archivable(node):
            _write_node(writer, node, get_body, date, written)
    return out.getvalue()


def is_archivable(node: Node) -> bool:
    """True for nodes fetched on their own from an http(s) URL."""
    if node.duplicate_kind in _NOT_FETCHED:
        return False
    return node.url.lower().startswith(("http://", "https://"))


def _warcinfo(writer: WARCWriter, snapshot: Snapshot, date: str) -> object:
    """The leading warcinfo record."""
    ident = "unsaved" if snapshot.snapshot_id is None else str(snapshot.snapshot_id)
    info = {
        "software": SOFTWARE,
        "format": "WARC File Format 1.0",
        "description": f"crawler snapshot {ident} of {clean_url(snapshot.source)}",
        "isPartOf": f"crawler-snapshot-{ident}",
    }
    record = writer.create_warcinfo_record(f"crawler-snapshot-{ident}.warc", info)
    record.rec_headers.replace_header("WARC-Date", date)
    return record


def _write_node(
    writer: WARCWriter, node: Node, get_body: GetBody, date: str, written: _Written
) -> None:
    """Redirect hops, then the body as a response or a revisit."""
    chain = [hop.url for hop in node.redirects] + [node.final_url or node.url]
    for hop, location in zip(node.redirects, chain[1:], strict=False):
        uri = clean_url(hop.url)
        if (uri, "") not in written.uris:
            written.uris.add((uri, ""))
            writer.write_record(_redirect(writer, uri, hop.status_code, location, date))
    if node.content_sha256 is None or node.status_code is None:
        return
    uri = clean_url(chain[-1])
    if (uri, node.content_sha256) in written.uris:
        return
    body = get_body(node.content_sha256)
    if body is None:
        return
    written.uris.add((uri, node.content_sha256))
    first = written.bodies.get(node.content_sha256)
    headers = http_headers(node, len(body))
    if first is None:
        record = writer.create_warc_record(
            uri,
            "response",
            payload=io.BytesIO(body),
            length=len(body),
            http_headers=headers,
            warc_headers_dict={"WARC-Date": date},
        )
        rec = record.rec_headers
        written.bodies[node.content_sha256] = (
            uri,
            rec.get_header("WARC-Record-ID"),
            rec.get_header("WARC-Payload-Digest"),
        )
    else:
        record = _revisit(writer, uri, first, headers, date)
    writer.write_record(record)


def _revisit(
    writer: WARCWriter,
    uri: str,
    first: tuple[str, str, str],
    headers: StatusAndHeaders,
    date: str,
) -> object:
    """A revisit (identical payload digest) pointing at the record that holds the body."""
    first_uri, first_id, digest = first
    record = writer.create_revisit_record(
        uri, digest, first_uri, date, http_headers=headers, warc_headers_dict={"WARC-Date": date}
    )
    record.rec_headers.add_header("WARC-Refers-To", first_id)
    return record


def _redirect(writer: WARCWriter, uri: str, status: int, location: str, date: str) -> object:
    """A bodiless 3xx response whose Location is the next hop."""
    headers = StatusAndHeaders(
        _status_line(status),
        [("Location", clean_url(location)), ("Content-Length", "0")],
        protocol="HTTP/1.1",
    )
    return writer.create_warc_record(
        uri, "response", http_headers=headers, warc_headers_dict={"WARC-Date": date}
    )


def http_headers(node: Node, length: int) -> StatusAndHeaders:
    """HTTP response headers rebuilt from what the snapshot kept."""
    # Server-controlled values: clean_text drops CR/LF, so none can forge a header line.
    pairs = [("Content-Type", clean_text(node.content_type or "application/octet-stream"))]
    if node.etag:
        pairs.append(("ETag", clean_text(node.etag)))
    if node.last_modified:
        pairs.append(("Last-Modified", clean_text(node.last_modified)))
    pairs.append(("Content-Length", str(length)))
    return StatusAndHeaders(_status_line(node.status_code or 200), pairs, protocol="HTTP/1.1")


def _status_line(status: int) -> str:
    """`404 Not Found`."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"
