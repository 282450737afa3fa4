"""The Markdown format: a heading, a summary table, then the tree as a nested list.

Page strings are backslash-escaped (CommonMark §2.4 lets any ASCII punctuation be escaped),
so a title like `[x](javascript:…)` or `<script>` renders as the text it is, never as a link
or HTML.
"""

from __future__ import annotations

import re

from crawler.model import Flag, Node, Outcome, Snapshot, Verdict
from crawler.report.common import (
    INCONCLUSIVE_SENTENCE,
    TEXT_WIDTH,
    TITLE_WIDTH,
    clean_text,
    clean_url,
    dead_urls,
    duration_seconds,
    extra_flags,
    format_duration,
    outcome_label,
    redirect_chain,
    truncate,
)

# Inline syntax: emphasis, code, links/images, autolinks and raw HTML, tables, strikethrough,
# entities. Line-start syntax (headings, lists, quotes, setext) is handled in escape_markdown.
_INLINE_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]()<>|~&!])")
_LINE_START_RE = re.compile(r"^(\s*)([#+\-=>]|\d+[.)])")
INDENT = "  "


def render_markdown(snapshot: Snapshot) -> str:
    """The snapshot as a Markdown report."""
    lines = [f"# Link report: {escape_markdown(clean_url(snapshot.source))}", ""]
    lines += summary_table(snapshot)
    if snapshot.outcome is Outcome.INCONCLUSIVE:
        lines += ["", f"**{escape_markdown(INCONCLUSIVE_SENTENCE)}**"]
    if snapshot.insecure:
        lines += ["", "**Insecure:** TLS certificates were not verified during this crawl."]
    lines += ["", "## Links", ""]
    lines += _list_items(snapshot.root, 0) or ["_No links found._"]
    return "\n".join(lines) + "\n"


def escape_markdown(text: str) -> str:
    """Backslash-escape `text` so Markdown shows it literally (one line assumed)."""
    text = _INLINE_SPECIAL_RE.sub(r"\\\1", text)
    return _LINE_START_RE.sub(lambda m: f"{m.group(1)}{_escape_last(m.group(2))}", text)


def _escape_last(marker: str) -> str:
    """`#` -> `\\#`, `1.` -> `1\\.`: escape the character that makes a line-start marker."""
    return f"{marker[:-1]}\\{marker[-1]}"


def summary_table(snapshot: Snapshot) -> list[str]:
    """A two-column table: outcome, counts, verdict tallies, timing."""
    counts = snapshot.summary()
    rows = [
        ("Outcome", outcome_label(snapshot)),
        ("References", str(counts["references"])),
        ("Nodes", str(counts["nodes"])),
        ("Dead", f"{counts['dead']}{dead_urls(snapshot, counts['dead'])}"),
        ("Duplicates", str(counts["duplicates"])),
    ]
    rows += [
        (f"Verdict {verdict.value}", str(counts[f"verdict_{verdict.value}"]))
        for verdict in Verdict
        if counts[f"verdict_{verdict.value}"]
    ]
    rows.append(("Started", snapshot.started_at.isoformat()))
    seconds = duration_seconds(snapshot)
    if seconds is not None:
        rows.append(("Duration", format_duration(seconds)))
    return ["| | |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]


def _list_items(node: Node, level: int) -> list[str]:
    """The children of `node` as nested list items, `level` deep."""
    lines: list[str] = []
    for child in node.children:
        lines.append(f"{INDENT * level}- {node_line(child)}")
        lines += _list_items(child, level + 1)
    return lines


def node_line(node: Node) -> str:
    """`**dead** 404 url “title” — reason · duplicate of url (exact) · retried · line 3`."""
    status = redirect_chain(node) or ("—" if node.status_code is None else str(node.status_code))
    parts = [f"**{node.verdict.value}** {status} {_url(node.url)}"]
    if node.final_url and node.final_url != node.url:
        parts[0] += f" → {_url(node.final_url)}"
    if node.title:
        parts[0] += f" “{_text(node.title, TITLE_WIDTH)}”"
    elif node.text:
        parts[0] += f" ({_text(node.text, TEXT_WIDTH)})"
    if node.reason:
        parts.append(_text(node.reason, 200))
    parts += _notes(node)
    return " · ".join(parts)


def _notes(node: Node) -> list[str]:
    """Duplicate, extra flags and the article line, as short italic notes."""
    notes: list[str] = []
    if Flag.DUPLICATE.value in node.flags:
        kind = f" ({_text(node.duplicate_kind, 40)})" if node.duplicate_kind else ""
        notes.append(f"_duplicate of_ {_url(node.duplicate_of or '?')}{kind}")
    notes += [f"_{escape_markdown(flag)}_" for flag in extra_flags(node)]
    if node.line is not None:
        notes.append(f"line {node.line}")
    return notes


def _url(url: str) -> str:
    """A redacted, escaped URL."""
    return escape_markdown(clean_url(url))


def _text(text: str, width: int) -> str:
    """A cleaned, truncated, escaped page string."""
    return escape_markdown(truncate(clean_text(text), width))
