"""Pure: the dashboard's pages as HTML strings, from data the handlers read.

Same rules as the HTML report (and its stylesheet): every stored string is cleaned and
escaped, only http(s) URLs become links, and no script runs on these pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlencode

from crawler.history import SnapshotDiff, render_diff
from crawler.model import Outcome, Verdict
from crawler.report.common import clean_text, clean_url
from crawler.report.html import esc, page_html, url_html
from crawler.store import SnapshotInfo
from crawler.store.watches import Watch
from crawler.web.queries import DeadLink

NAV: tuple[tuple[str, str], ...] = (
    ("Watches", "/"),
    ("Snapshots", "/snapshots"),
    ("Dead links", "/dead"),
    ("Metrics", "/metrics"),
)
OUTCOME_CLASSES = {"complete": "c-ok", "partial": "c-error", "inconclusive": "c-blocked"}


def when(moment: datetime | None) -> str:
    """`2025-01-06 10:00 UTC`, or a dash."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def relative(moment: datetime | None, now: datetime) -> str:
    """`in 5 min`, `due 2 h ago`, `in 3 d` — how far a run is from now."""
    if moment is None:
        return "—"
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 60:
        amount = f"{span:.0f} s"
    elif span < 3600:
        amount = f"{span / 60:.0f} min"
    elif span < 86400:
        amount = f"{span / 3600:.0f} h"
    else:
        amount = f"{span / 86400:.0f} d"
    return f"in {amount}" if seconds > 0 else f"due {amount} ago"


def _outcome(outcome: str | None) -> str:
    """An outcome word in its colour."""
    if outcome is None:
        return "—"
    return f'<span class="{OUTCOME_CLASSES.get(outcome, "")}">{esc(outcome)}</span>'


def _source(source: str) -> str:
    """An article source: a link when it is a URL."""
    return url_html(source, "source")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    """A table from trusted cell markup."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _schedule(watch: Watch) -> str:
    """`every 6h` or `cron 0 6 * * *`."""
    return esc(clean_text(watch.schedule))


def watches_page(
    rows: Sequence[Watch], now: datetime, *, writable: bool, notice: str | None = None
) -> str:
    """Watched articles with their last outcome and next run, and the action forms."""
    parts = ["<h1>Watched articles</h1>"]
    if notice:
        parts.append(f'<p class="warn" id="notice">{esc(notice)}</p>')
    if rows:
        parts.append(_table(_WATCH_HEADERS, [_watch_row(w, now) for w in rows], "watches"))
    else:
        parts.append('<p id="no-watches">No watched articles yet.</p>')
    if writable:
        parts.append(_action_forms(rows))
    else:
        parts.append(
            '<p class="meta">Read-only. Actions (add a watch, run now) need a token: '
            "set <code>CRAWLER_DASHBOARD_TOKEN</code> where the dashboard runs.</p>"
        )
    return page_html("Watched articles — crawler", "\n".join(parts), nav=NAV)


_WATCH_HEADERS = ("#", "Article", "Schedule", "Last run", "Outcome", "Snapshot", "Next run")


def _watch_row(watch: Watch, now: datetime) -> list[str]:
    """The cells of one watch."""
    snap = watch.last_snapshot_id
    link = "—" if snap is None else f'<a href="/snapshots/{snap}">#{snap}</a>'
    next_run = relative(watch.next_run_at, now) if watch.enabled else "disabled"
    return [
        str(watch.watch_id),
        _source(watch.source),
        _schedule(watch),
        esc(when(watch.last_run_at)),
        _outcome(watch.last_outcome),
        link,
        f'<span title="{esc(when(watch.next_run_at))}">{esc(next_run)}</span>',
    ]


def _action_forms(rows: Sequence[Watch]) -> str:
    """Add-a-watch and run-now forms; both post the token typed in."""
    token = '<label>Token <input type="password" name="token" required></label>'
    add = (
        '<form method="post" action="/watches" id="add-watch"><h2>Add a watch</h2>'
        '<label>Article <input name="source" required size="60"></label> '
        '<label>Every <input name="every" placeholder="6h" size="6"></label> '
        f'{token} <button type="submit">Add</button></form>'
    )
    if not rows:
        return add
    options = "".join(
        f'<option value="{w.watch_id}">#{w.watch_id} {esc(clean_url(w.source))}</option>'
        for w in rows
    )
    run = (
        '<form method="post" action="/run" id="run-now"><h2>Run now</h2>'
        f'<select name="watch_id">{options}</select> {token} '
        '<button type="submit">Run now</button></form>'
    )
    return add + run


def snapshots_page(rows: Sequence[SnapshotInfo], source: str | None) -> str:
    """Stored snapshots, newest first, and a form to diff two of them."""
    title = "Snapshots" if source is None else f"Snapshots of {clean_url(source)}"
    parts = [f"<h1>{esc(title)}</h1>"]
    if not rows:
        parts.append("<p>No snapshots stored yet.</p>")
        return page_html(f"{title} — crawler", "".join(parts), nav=NAV)
    headers = ("#", "Started", "Outcome", "Nodes", "Dead", "Duplicates", "Watch", "Article")
    parts.append(_table(headers, [_snapshot_row(r) for r in rows], "snapshots"))
    parts.append(_diff_form(rows))
    return page_html(f"{title} — crawler", "\n".join(parts), nav=NAV)


def _snapshot_row(info: SnapshotInfo) -> list[str]:
    """The cells of one snapshot."""
    summary = info.summary or {}
    outcome = Outcome.PARTIAL.value if info.outcome is Outcome.RUNNING else info.outcome.value
    listed = "/snapshots?" + urlencode({"source": info.source})
    return [
        f'<a href="/snapshots/{info.snapshot_id}">#{info.snapshot_id}</a>',
        esc(when(info.started_at)),
        _outcome(outcome) + (" (running)" if info.outcome is Outcome.RUNNING else ""),
        str(summary.get("nodes", 0)),
        f'<span class="c-dead">{summary.get("dead", 0)}</span>',
        str(summary.get("duplicates", 0)),
        "—" if info.watch_id is None else str(info.watch_id),
        f'{_source(info.source)} <a href="{esc(listed)}" class="meta">all runs</a>',
    ]


def _diff_form(rows: Sequence[SnapshotInfo]) -> str:
    """Pick two snapshots to compare (the older one first)."""
    options = [f'<option value="{r.snapshot_id}">#{r.snapshot_id}</option>' for r in rows]
    before = "".join(options[1:2] + options[:1] + options[2:])
    return (
        '<form method="get" action="/diff" id="diff-form"><h2>Compare two snapshots</h2>'
        f'<label>Before <select name="a">{before}</select></label> '
        f'<label>After <select name="b">{"".join(options)}</select></label> '
        '<button type="submit">Diff</button></form>'
    )


def dead_page(dead: Sequence[DeadLink]) -> str:
    """Dead links across every watched article (latest snapshot of each)."""
    parts = [f"<h1>Dead links across watched articles ({len(dead)})</h1>"]
    if not dead:
        parts.append('<p id="no-dead">No dead links in the latest snapshots.</p>')
    else:
        headers = ("Link", "Status", "Reason", "Dead since", "Found on", "Article", "Snapshot")
        parts.append(_table(headers, [_dead_row(d) for d in dead], "dead"))
    return page_html("Dead links — crawler", "\n".join(parts), nav=NAV)


def _dead_row(item: DeadLink) -> list[str]:
    """The cells of one dead link."""
    node = item.node
    return [
        f'<span class="badge v-{Verdict.DEAD.value}">dead</span> {url_html(node.url, "url")}',
        "—" if node.status_code is None else str(node.status_code),
        esc(clean_text(node.reason or "")),
        esc(when(item.dead_since)),
        "—" if item.parent_url is None else url_html(item.parent_url, "url"),
        _source(item.source),
        f'<a href="/snapshots/{item.snapshot_id}#n{item.number}">#{item.snapshot_id}</a>',
    ]


def diff_page(diff: SnapshotDiff) -> str:
    """What changed between two snapshots, section by section, plus the plain-text diff."""
    head = (
        f"<h1>Diff: snapshot #{diff.before_id} → #{diff.after_id}</h1>"
        f'<p class="source">{esc(clean_url(diff.source))}</p>'
        f'<p class="meta">{esc(when(diff.before_at))} → {esc(when(diff.after_at))}</p>'
    )
    if diff.is_empty:
        return page_html("Diff — crawler", head + '<p id="no-changes">No changes.</p>', nav=NAV)
    sections = [
        _list("Added", [url_html(u, "url") for u in diff.added]),
        _list("Removed", [url_html(u, "url") for u in diff.removed]),
        _list(
            "Verdict changes",
            [
                f"{_badge(c.before)} → {_badge(c.after)} {url_html(c.url, 'url')}"
                for c in diff.verdict_changes
            ],
        ),
        _list(
            "Related stories",
            [_related(c.parent_url, c.appeared, c.disappeared) for c in diff.related],
        ),
        _list("Content changed", [url_html(u, "url") for u in diff.content_changed]),
    ]
    text = f"<details><summary>Plain text</summary><pre>{esc(render_diff(diff))}</pre></details>"
    return page_html("Diff — crawler", head + "".join(sections) + text, nav=NAV)


def _badge(verdict: Verdict) -> str:
    """A verdict as a coloured badge."""
    return f'<span class="badge v-{verdict.value}">{verdict.value}</span>'


def _related(parent: str, appeared: Sequence[str], gone: Sequence[str]) -> str:
    """One page's related stories that appeared (+) and disappeared (−)."""
    items = [f"<li>+ {url_html(u, 'url')}</li>" for u in appeared]
    items += [f"<li>− {url_html(u, 'url')}</li>" for u in gone]
    return f"on {url_html(parent, 'url')}<ul>{''.join(items)}</ul>"


def _list(title: str, items: Sequence[str]) -> str:
    """A titled list of trusted items, or nothing when empty."""
    if not items:
        return ""
    slug = title.lower().replace(" ", "-")
    lis = "".join(f"<li>{item}</li>" for item in items)
    return f'<h2>{esc(title)} ({len(items)})</h2><ul id="{slug}">{lis}</ul>'


def message_page(title: str, message: str) -> str:
    """A plain page with one escaped message (errors, refusals)."""
    body = f'<h1>{esc(title)}</h1><p id="message">{esc(message)}</p>'
    return page_html(f"{title} — crawler", body, nav=NAV)
