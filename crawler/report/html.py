"""The HTML format: one self-contained page (inline CSS and JS, nothing fetched) per snapshot.

The tree is nested `<details>` (collapsible by level), every node shows its verdict badge,
status or redirect chain, URL, title, reason, timing and flags, and two filters (dead only,
duplicates only) hide the rest in a few lines of vanilla JS. For a watched article the caller
may pass `timelines` (normalized URL -> that link's past runs, newest first, as the store's
`link_history` returns them) and each link gets a row of coloured squares.

Safety: every page-controlled string (titles, URLs, link text, reasons) is redacted and
cleaned as in the other formats, then `html.escape`d, attribute values included; only
http(s) URLs become links, so a `javascript:` URL stays text. No data is embedded as JSON.
A Content-Security-Policy allows only the one inline script below (by its SHA-256), so even
markup that slipped through could not run a script or load anything from the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from crawler.model import Flag, Node, Outcome, Relation, Snapshot, Verdict
from crawler.report.common import (
    INCONCLUSIVE_SENTENCE,
    clean_text,
    clean_url,
    duplicate_targets,
    duration_seconds,
    extra_flags,
    format_duration,
    number_nodes,
    outcome_label,
    redirect_chain,
    render_summary,
)

TIMELINE_POINTS = 30  # squares per link; older runs are left out
OPEN_BELOW_DEPTH = 2  # initially the article and its references are expanded

VERDICT_COLOURS: dict[Verdict, str] = {
    Verdict.OK: "#1a7f37",
    Verdict.REDIRECTED: "#0969da",
    Verdict.DEAD: "#cf222e",
    Verdict.BLOCKED: "#8250df",
    Verdict.ERROR: "#9a6700",
    Verdict.SOFT404: "#bc4c00",
    Verdict.SKIPPED: "#6e7781",
}

STYLE = (
    """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;
padding:0 16px 40px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;margin:18px 0 6px}
a{color:#0969da}nav.top{padding:8px 0;border-bottom:1px solid #d0d7de}nav.top a{margin-right:14px}
.source,.url,.final,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;
overflow-wrap:anywhere}
.summary{margin:4px 0}.warn{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px}
.alarm{background:#ffebe9;border:1px solid #cf222e;padding:6px 10px}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
ul.counts li{border:1px solid #d0d7de;border-radius:12px;padding:1px 10px}
.controls{position:sticky;top:0;background:#f6f8fa;border:1px solid #d0d7de;padding:6px 10px;
display:flex;flex-wrap:wrap;gap:14px;align-items:center;z-index:1}
.controls button{font:inherit;padding:1px 8px}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:18px}ul.tree{padding-left:0}
li.node{margin:3px 0}li.node>details>ul,li.node>div.leaf+ul{border-left:1px dotted #afb8c1}
summary{cursor:pointer}summary::marker{color:#6e7781}div.leaf{padding-left:14px}
.num{color:#6e7781;font-size:12px}.badge{display:inline-block;min-width:72px;text-align:center;
color:#fff;border-radius:4px;padding:0 4px;font-size:12px;font-weight:600}
.status{color:#57606a;font-size:12px}.title{font-style:italic}.final{color:#0969da}
.meta{display:block;color:#57606a;font-size:12px;margin:1px 0 2px 14px}.meta>span{margin-right:10px}
.flag{border:1px solid #d0d7de;border-radius:8px;padding:0 6px}
.flag.newly-dead{border-color:#cf222e;color:#cf222e}.flag.recovered{border-color:#1a7f37;color:#1a7f37}
.dup{color:#9a6700}ol.hops{margin:2px 0 2px 14px;padding-left:18px;font-size:12px;color:#57606a}
.timeline{display:inline-flex;gap:2px;vertical-align:middle}
.timeline i{display:inline-block;width:9px;height:9px;border-radius:2px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}
"""
    + "".join(
        f".v-{v.value}{{background:{c}}}.c-{v.value}{{color:{c};font-weight:600}}"
        for v, c in VERDICT_COLOURS.items()
    )
    + "\n"
)

SCRIPT = """
(function(){
var tree=document.getElementById('tree');if(!tree)return;
var empty=document.getElementById('empty');
var selectors={dead:'li.node[data-verdict="dead"]',duplicate:'li.node[data-dup]'};
function filter(kind){var sel=selectors[kind],shown=0,nodes=tree.querySelectorAll('li.node');
for(var i=0;i<nodes.length;i++){var li=nodes[i];
var hit=!sel||li.matches(sel),below=sel?li.querySelector(sel):null;
li.hidden=!(hit||below);if(hit&&sel)shown++;
var d=li.querySelector(':scope>details');if(d&&below)d.open=true;}
empty.hidden=!sel||shown>0;}
function expand(level){var all=tree.querySelectorAll('details');
for(var i=0;i<all.length;i++){all[i].open=Number(all[i].dataset.depth)<level;}}
// Level N shows nodes down to depth N: the details of depth < N are open.
var radios=document.querySelectorAll('input[name="filter"]');
for(var i=0;i<radios.length;i++){radios[i].addEventListener('change',function(e){
filter(e.target.value==='all'?null:e.target.value);});}
var buttons=document.querySelectorAll('button[data-level]');
for(var j=0;j<buttons.length;j++){buttons[j].addEventListener('click',function(e){
expand(Number(e.target.dataset.level));});}
})();
"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src '{SCRIPT_HASH}'; img-src data:; base-uri 'none'; form-action 'self'"
)


class TimelinePoint(Protocol):
    """One past run of a link (the store's `HistoryEntry` fits)."""

    @property
    def snapshot_id(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def status_code(self) -> int | None: ...


Timelines = Mapping[str, Sequence[TimelinePoint]]


def esc(text: str) -> str:
    """Escape text for HTML content and quoted attribute values alike."""
    return html.escape(text, quote=True)


def render_html(
    snapshot: Snapshot,
    *,
    timelines: Timelines | None = None,
    nav: Sequence[tuple[str, str]] = (),
) -> str:
    """The snapshot as one self-contained HTML page; `nav` adds (label, href) links on top."""
    title = f"Link report: {clean_url(snapshot.source)}"
    body = header_html(snapshot) + CONTROLS_HTML + tree_html(snapshot, timelines or {})
    return page_html(title, body, nav=nav, script=True)


def page_html(
    title: str, body: str, *, nav: Sequence[tuple[str, str]] = (), script: bool = False
) -> str:
    """A whole page around trusted `body` markup; `title` and `nav` are escaped here."""
    links = "".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in nav)
    top = f'<nav class="top">{links}</nav>' if nav else ""
    js = f"<script>{SCRIPT}</script>" if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style></head>\n"
        f"<body>{top}\n{body}\n{js}</body></html>\n"
    )


def header_html(snapshot: Snapshot) -> str:
    """Heading, source, summary line, verdict counts and any warning."""
    counts = snapshot.summary()
    chips = "".join(
        f'<li><span class="c-{v.value}">{v.value}</span> <b>{counts[f"verdict_{v.value}"]}</b></li>'
        for v in Verdict
    )
    when = snapshot.started_at.isoformat(timespec="seconds")
    seconds = duration_seconds(snapshot)
    took = f" · took {format_duration(seconds)}" if seconds is not None else ""
    ident = f"snapshot {snapshot.snapshot_id} · " if snapshot.snapshot_id is not None else ""
    parts = [
        "<header><h1>Link report</h1>",
        f'<p class="source">{esc(clean_url(snapshot.source))}</p>',
        f'<p class="summary">{esc(render_summary(snapshot))}</p>',
        f'<p class="meta">{ident}started {esc(when)}{esc(took)} · outcome '
        f"<b>{esc(outcome_label(snapshot))}</b></p>",
        f'<ul class="counts">{chips}</ul>',
    ]
    if snapshot.outcome is Outcome.INCONCLUSIVE:
        parts.append(f'<p class="warn">{esc(INCONCLUSIVE_SENTENCE)}</p>')
    if snapshot.insecure:
        parts.append('<p class="alarm">Insecure: TLS certificates were not verified.</p>')
    return "".join(parts) + "</header>\n"


CONTROLS_HTML = (
    '<div class="controls" role="toolbar">'
    '<span>Show: <label><input type="radio" name="filter" value="all" checked> all</label> '
    '<label><input type="radio" name="filter" value="dead"> dead only</label> '
    '<label><input type="radio" name="filter" value="duplicate"> duplicates only</label></span>'
    '<span>Expand to: <button type="button" data-level="0">article</button> '
    '<button type="button" data-level="1">references</button> '
    '<button type="button" data-level="2">related</button> '
    '<button type="button" data-level="3">level 3</button> '
    '<button type="button" data-level="99">all</button></span></div>\n'
    '<p id="empty" hidden>No link matches this filter.</p>\n'
)


def tree_html(snapshot: Snapshot, timelines: Timelines) -> str:
    """The node tree as nested lists, the article at the top."""
    context = _Context(number_nodes(snapshot.root), duplicate_targets(snapshot.root), timelines)
    return f'<ul class="tree" id="tree">{context.node(snapshot.root)}</ul>\n'


class _Context:
    """What rendering one node needs to know about the whole tree."""

    def __init__(
        self, numbers: dict[int, int], targets: dict[str, Node], timelines: Timelines
    ) -> None:
        self.numbers = numbers
        self.targets = targets
        self.timelines = timelines

    def node(self, node: Node) -> str:
        """One `<li>` with its line, details and (collapsible) children."""
        number = self.numbers.get(id(node), 0)
        dup = " data-dup" if Flag.DUPLICATE.value in node.flags else ""
        attrs = f'class="node" id="n{number}" data-verdict="{node.verdict.value}"{dup}'
        head = node_line(node, number) + self.meta(node)
        if not node.children:
            return f'<li {attrs}><div class="leaf">{head}{hops_html(node)}</div></li>'
        opened = " open" if node.depth < OPEN_BELOW_DEPTH else ""
        kids = "".join(self.node(child) for child in node.children)
        return (
            f'<li {attrs}><details data-depth="{node.depth}"{opened}><summary>{head}</summary>'
            f"{hops_html(node)}<ul>{kids}</ul></details></li>"
        )

    def meta(self, node: Node) -> str:
        """Reason, duplicate note, flags, timing, line and timeline (phrasing content only)."""
        spans: list[str] = []
        if node.reason:
            spans.append(f'<span class="reason">{esc(clean_text(node.reason))}</span>')
        if Flag.DUPLICATE.value in node.flags:
            spans.append(self.duplicate_note(node))
        spans += [f'<span class="flag {esc(f)}">{esc(f)}</span>' for f in extra_flags(node)]
        spans += _facts(node)
        timeline = timeline_html(self.timelines.get(node.normalized_url, ()))
        if timeline:
            spans.append(timeline)
        if not spans:
            return ""
        return f'<span class="meta">{"".join(spans)}</span>'

    def duplicate_note(self, node: Node) -> str:
        """`duplicate of #N (kind)`, linking to that node when it is in the tree."""
        target = self.targets.get(node.duplicate_of or node.normalized_url)
        kind = f" ({esc(clean_text(node.duplicate_kind))})" if node.duplicate_kind else ""
        if target is None:
            where = f"<code>{esc(clean_url(node.duplicate_of or '?'))}</code>"
        else:
            number = self.numbers[id(target)]
            where = f'<a href="#n{number}">#{number}</a>'
        return f'<span class="dup">duplicate of {where}{kind}</span>'


def node_line(node: Node, number: int) -> str:
    """Number, verdict badge, status, URL (a link if http/https), final URL and title."""
    parts = [
        f'<span class="num">#{number}</span> ',
        f'<span class="badge v-{node.verdict.value}">{node.verdict.value}</span> ',
        f'<span class="status">{esc(_status(node))}</span> ',
        url_html(node.url, "url"),
    ]
    if node.final_url and node.final_url != node.url:
        parts.append(" → " + url_html(node.final_url, "final"))
    if node.title:
        parts.append(f' <q class="title">{esc(clean_text(node.title))}</q>')
    elif node.text and node.relation is not Relation.ROOT:
        parts.append(f' <span class="text">({esc(clean_text(node.text))})</span>')
    return "".join(parts)


def _status(node: Node) -> str:
    """The status code, or the chain of codes for a redirected node, or a dash."""
    return redirect_chain(node) or _code(node.status_code)


def _code(status: int | None) -> str:
    return "—" if status is None else str(status)


def _facts(node: Node) -> list[str]:
    """Timing, attempts, content type and the line in the article, as short spans."""
    facts: list[str] = []
    if node.elapsed_ms is not None:
        facts.append(f"{node.elapsed_ms:.0f} ms")
    if node.attempts > 1:
        facts.append(f"{node.attempts} attempts")
    if node.content_type:
        facts.append(esc(clean_text(node.content_type)))
    if node.published:
        facts.append("published " + esc(clean_text(node.published)))
    if node.line is not None:
        facts.append(f"line {node.line}")
    return [f'<span class="fact">{fact}</span>' for fact in facts]


def url_html(url: str, css_class: str) -> str:
    """A redacted URL: a link when it is http(s), plain text otherwise (no `javascript:`)."""
    shown = clean_url(url)
    if not shown.lower().startswith(("http://", "https://")):
        return f'<span class="{css_class}">{esc(shown)}</span>'
    rel = "noopener noreferrer nofollow"
    return f'<a class="{css_class}" href="{esc(shown)}" rel="{rel}">{esc(shown)}</a>'


def hops_html(node: Node) -> str:
    """The redirect chain, one hop per line: status and the URL that answered it."""
    if not node.redirects:
        return ""
    items = [f"<li>{hop.status_code} {url_html(hop.url, 'url')}</li>" for hop in node.redirects]
    last = url_html(node.final_url or node.url, "url")
    items.append(f"<li>{_code(node.status_code)} {last}</li>")
    return f'<ol class="hops">{"".join(items)}</ol>'


def timeline_html(points: Sequence[TimelinePoint]) -> str:
    """Coloured squares for a link's past runs, oldest first (input is newest first)."""
    if not points:
        return ""
    recent = sorted(points, key=lambda p: (p.started_at, p.snapshot_id))[-TIMELINE_POINTS:]
    squares = "".join(
        f'<i class="v-{p.verdict.value}" title="{esc(_point_label(p))}"></i>' for p in recent
    )
    label = f"{len(recent)} runs: " + ", ".join(p.verdict.value for p in recent)
    return f'<span class="timeline" role="img" aria-label="{esc(label)}">{squares}</span>'


def _point_label(point: TimelinePoint) -> str:
    """`#12 2025-01-06 10:00 dead 404 (inconclusive run)`."""
    when = point.started_at.strftime("%Y-%m-%d %H:%M")
    label = f"#{point.snapshot_id} {when} {point.verdict.value} {_code(point.status_code)}"
    if point.outcome is Outcome.INCONCLUSIVE:
        label += " (inconclusive run)"
    return label
