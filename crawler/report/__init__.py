"""Renderers: a Snapshot in, a string out. Only the CLI prints.

    tree / text   rich tree for the terminal    (tree.py)
    json          the crawler.snapshot/1 JSON   (jsonfmt.py)
    markdown      heading, table, nested list   (markdown.py)
    html          one self-contained page       (html.py)
    csv           one row per node              (csvfmt.py)
    junit         one test case per link        (junit.py)
    warc          fetched pages as WARC records (warc.py; bytes, needs the bodies: render_warc)

Every URL in every format is passed through `crawler.urls.redact_url`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.model import Snapshot
from crawler.report.common import render_summary
from crawler.report.csvfmt import render_csv
from crawler.report.html import Timelines, render_html
from crawler.report.jsonfmt import render_json, snapshot_from_dict, snapshot_to_dict
from crawler.report.junit import render_junit
from crawler.report.markdown import render_markdown
from crawler.report.tree import render_tree

if TYPE_CHECKING:
    from crawler.report.warc import GetBody

FORMATS: tuple[str, ...] = ("tree", "text", "json", "markdown", "html", "csv", "junit")
BINARY_FORMATS: tuple[str, ...] = ("warc",)  # bytes, from `render_bytes`


def render(
    snapshot: Snapshot, fmt: str, *, color: bool = False, timelines: Timelines | None = None
) -> str:
    """Render `snapshot` in one of FORMATS; ValueError for a binary format or an unknown one."""
    if fmt in ("tree", "text"):
        return render_tree(snapshot, color=color)
    if fmt == "json":
        return render_json(snapshot)
    if fmt == "markdown":
        return render_markdown(snapshot)
    if fmt == "html":
        return render_html(snapshot, timelines=timelines)
    if fmt == "csv":
        return render_csv(snapshot)
    if fmt == "junit":
        return render_junit(snapshot)
    if fmt in BINARY_FORMATS:
        raise ValueError(f"{fmt} is a binary format: use render_bytes with the stored bodies")
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def render_bytes(snapshot: Snapshot, fmt: str, get_body: GetBody, *, gzip: bool = True) -> bytes:
    """Render `snapshot` in a binary format (`warc`), reading fetched bodies through `get_body`."""
    if fmt == "warc":
        from crawler.report.warc import render_warc  # warcio is only needed here

        return render_warc(snapshot, get_body, gzip=gzip)
    raise ValueError(f"{fmt!r} is not a binary format; expected one of {', '.join(BINARY_FORMATS)}")


__all__ = [
    "BINARY_FORMATS",
    "FORMATS",
    "Timelines",
    "render",
    "render_bytes",
    "render_csv",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_summary",
    "render_tree",
    "snapshot_from_dict",
    "snapshot_to_dict",
]
