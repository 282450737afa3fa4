"""Renderers: a Snapshot in, a string out. Only the CLI prints.

    tree / text   rich tree for the terminal    (tree.py)
    json          the crawler.snapshot/1 JSON   (jsonfmt.py)
    markdown      heading, table, nested list   (markdown.py)

Every URL in every format is passed through `crawler.urls.redact_url`.
"""

from __future__ import annotations

from crawler.model import Snapshot
from crawler.report.common import render_summary
from crawler.report.jsonfmt import render_json, snapshot_from_dict, snapshot_to_dict
from crawler.report.markdown import render_markdown
from crawler.report.tree import render_tree

FORMATS: tuple[str, ...] = ("tree", "text", "json", "markdown")


def render(snapshot: Snapshot, fmt: str, *, color: bool = False) -> str:
    """Render `snapshot` in one of FORMATS; ValueError names the formats for any other."""
    if fmt in ("tree", "text"):
        return render_tree(snapshot, color=color)
    if fmt == "json":
        return render_json(snapshot)
    if fmt == "markdown":
        return render_markdown(snapshot)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "render",
    "render_json",
    "render_markdown",
    "render_summary",
    "render_tree",
    "snapshot_from_dict",
    "snapshot_to_dict",
]
