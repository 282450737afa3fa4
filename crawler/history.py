"""Pure: compare snapshots over time -> dead streaks, newly dead, recovered, flapping, changed.

A *timeline* is one link's states in earlier snapshots, oldest first, keyed by the link's
`normalized_url` (`Timelines`). The store builds them from its rows, `build_timelines` from
`Snapshot` objects; `apply_history(current, timelines, dead_after)` then rewrites the
current snapshot's verdicts and flags in place. Nothing here reads a clock or a database.

Rules (the issue's "History and change"):
- An *observation* is a link's verdict in a conclusive run (outcome not `inconclusive`) that
  says something about the link: passing (`ok`, `redirected`) or failing (see `failing`).
  `blocked` and `skipped` runs, and every inconclusive run, are no observation: they
  neither count toward a dead streak nor break one.
- A link whose fetch says `dead` is reported dead only once it has failed in `dead_after`
  consecutive observations, this run included; before that it is `error` with the reason
  "failed N of M runs needed to call it dead: ...". The streak counts any failing verdict,
  so a link that timed out last night and answers 404 today has failed twice. A link that
  only ever times out stays `error`: only a `dead` answer is promoted.
- `newly-dead` marks the run a link becomes dead after a stretch that had no dead in it;
  `recovered` marks the first passing run after a failing stretch that had a dead in it.
  Each failing stretch thus alerts at most once each way, and every recovery alert follows a
  newly-dead alert (a one-night timeout followed by an ok pages nobody).
- `flapping`: the last `FLAP_WINDOW` observations (this run included) switched between
  passing and failing at least `FLAP_CHANGES` times.
- `content-changed`: the body hash differs from the last one known for the link (both set).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from crawler.model import Flag, Node, Outcome, Relation, Snapshot, Verdict
from crawler.urls import redact_url

FLAP_WINDOW = 6
FLAP_CHANGES = 3
PASSING = frozenset({Verdict.OK, Verdict.REDIRECTED})
FAILING = frozenset({Verdict.DEAD, Verdict.ERROR, Verdict.SOFT404})


@dataclass(frozen=True, slots=True)
class LinkState:
    """One link's verdict in one earlier snapshot: a point on its timeline."""

    normalized_url: str
    verdict: Verdict
    outcome: Outcome
    at: datetime
    content_sha256: str | None = None
    snapshot_id: int | None = None
    reason: str | None = None


Timeline = Sequence[LinkState]
Timelines = Mapping[str, Timeline]


def failing(verdict: Verdict) -> bool:
    """True for verdicts that count toward a dead streak: dead, error and soft404.

    `error` counts because a link that outlives its retries night after night is rotting
    even when no server says 404; `soft404` is a page that says it is gone. `blocked` does
    not: the server answered and refused *us* (401, 403, 429, a bot wall), which says
    nothing about whether the page is still there, so it is no observation at all.
    """
    return verdict in FAILING


def passing(verdict: Verdict) -> bool:
    """True for verdicts that show the link works: ok and redirected."""
    return verdict in PASSING


def is_conclusive(outcome: Outcome) -> bool:
    """False only for runs whose own network was down; their verdicts say nothing about links."""
    return outcome is not Outcome.INCONCLUSIVE


def link_state(node: Node, snapshot: Snapshot) -> LinkState:
    """The point a node adds to its link's timeline."""
    return LinkState(
        normalized_url=node.normalized_url,
        verdict=node.verdict,
        outcome=snapshot.outcome,
        at=snapshot.started_at,
        content_sha256=node.content_sha256,
        snapshot_id=snapshot.snapshot_id,
        reason=node.reason,
    )


def build_timelines(snapshots: Iterable[Snapshot]) -> dict[str, list[LinkState]]:
    """Timelines from earlier snapshots: one state per link per snapshot, oldest first."""
    timelines: dict[str, list[LinkState]] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.started_at):
        for node in first_nodes(snapshot).values():
            timelines.setdefault(node.normalized_url, []).append(link_state(node, snapshot))
    return timelines


def first_nodes(snapshot: Snapshot) -> dict[str, Node]:
    """Each normalized URL's first node in tree order (later ones repeat its answer)."""
    nodes: dict[str, Node] = {}
    for node in snapshot.root.walk():
        nodes.setdefault(node.normalized_url, node)
    return nodes


def apply_history(current: Snapshot, timelines: Timelines, dead_after: int) -> None:
    """Rewrite `current`'s verdicts and flags from earlier runs; an inconclusive run is left alone.

    `timelines` maps a normalized URL to its states in *earlier* snapshots, oldest first
    (the current snapshot must not be in them). `dead_after` >= 1 is the streak that makes
    a link dead (settings: `history.dead_after_runs`).
    """
    if dead_after < 1:
        raise ValueError(f"dead_after must be at least 1, got {dead_after}")
    if not is_conclusive(current.outcome):
        return
    for node in current.root.walk():
        timeline = sorted(timelines.get(node.normalized_url, ()), key=lambda s: s.at)
        _mark_content_change(node, timeline)
        _judge_node(node, observations(timeline), dead_after)


def observations(timeline: Iterable[LinkState]) -> list[Verdict]:
    """The verdicts of a timeline that say something about the link, in order."""
    return [
        state.verdict
        for state in timeline
        if is_conclusive(state.outcome) and (passing(state.verdict) or failing(state.verdict))
    ]


def _judge_node(node: Node, seen: list[Verdict], dead_after: int) -> None:
    """Apply streak, recovery and flapping rules to one node, given its earlier observations."""
    if failing(node.verdict):
        if node.verdict is Verdict.DEAD:
            _settle_dead(node, failing_streak(seen) + 1, dead_after, was_dead(seen))
    elif passing(node.verdict):
        if was_dead(seen):
            node.add_flag(Flag.RECOVERED)
    else:
        return  # blocked or skipped: no observation, so no flapping either
    if is_flapping([*seen, node.verdict]):
        node.add_flag(Flag.FLAPPING)


def _settle_dead(node: Node, streak: int, dead_after: int, already_dead: bool) -> None:
    """Keep a dead verdict once the streak is long enough, else report it as error."""
    if streak < dead_after:
        original = f": {node.reason}" if node.reason else ""
        node.verdict = Verdict.ERROR
        node.reason = f"failed {streak} of {dead_after} runs needed to call it dead{original}"
        if Flag.DEAD in node.flags:
            node.flags.remove(Flag.DEAD)
        return
    node.add_flag(Flag.DEAD)
    if not already_dead:
        node.add_flag(Flag.NEWLY_DEAD)


def failing_streak(seen: Sequence[Verdict]) -> int:
    """How many of the latest observations in a row were failing."""
    count = 0
    for verdict in reversed(seen):
        if not failing(verdict):
            break
        count += 1
    return count


def was_dead(seen: Sequence[Verdict]) -> bool:
    """True when the failing stretch that ends the observations contains a dead verdict."""
    streak = failing_streak(seen)
    return streak > 0 and Verdict.DEAD in seen[len(seen) - streak :]


def is_flapping(seen: Sequence[Verdict]) -> bool:
    """True when the last FLAP_WINDOW observations switched passing/failing FLAP_CHANGES times."""
    window = [failing(v) for v in seen[-FLAP_WINDOW:]]
    changes = sum(1 for a, b in pairwise(window) if a != b)
    return changes >= FLAP_CHANGES


def _mark_content_change(node: Node, timeline: Sequence[LinkState]) -> None:
    """Flag a body whose hash differs from the last hash known for the same link."""
    known = [s.content_sha256 for s in timeline if s.content_sha256]
    if node.content_sha256 and known and known[-1] != node.content_sha256:
        node.add_flag(Flag.CONTENT_CHANGED)


# -- diff ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerdictChange:
    """A link present in both snapshots whose verdict changed."""

    url: str
    before: Verdict
    after: Verdict


@dataclass(frozen=True, slots=True)
class RelatedChange:
    """Related stories that appeared on, or disappeared from, one page."""

    parent_url: str
    appeared: tuple[str, ...]
    disappeared: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """What changed from snapshot `a` (before) to snapshot `b` (after)."""

    source: str
    before_id: int | None
    after_id: int | None
    before_at: datetime
    after_at: datetime
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    verdict_changes: tuple[VerdictChange, ...] = ()
    related: tuple[RelatedChange, ...] = ()
    content_changed: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing changed."""
        parts = (self.added, self.removed, self.verdict_changes, self.related, self.content_changed)
        return not any(parts)


def diff_snapshots(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Compare two snapshots of an article link by link (by normalized URL)."""
    before, after = first_nodes(a), first_nodes(b)
    both = [key for key in after if key in before]
    return SnapshotDiff(
        source=b.source,
        before_id=a.snapshot_id,
        after_id=b.snapshot_id,
        before_at=a.started_at,
        after_at=b.started_at,
        added=tuple(after[k].url for k in after if k not in before),
        removed=tuple(before[k].url for k in before if k not in after),
        verdict_changes=tuple(
            VerdictChange(after[k].url, before[k].verdict, after[k].verdict)
            for k in both
            if before[k].verdict is not after[k].verdict
        ),
        related=_related_changes(a, b),
        content_changed=tuple(after[k].url for k in both if _hash_changed(before[k], after[k])),
    )


def _hash_changed(before: Node, after: Node) -> bool:
    """Both bodies are known and differ."""
    return bool(before.content_sha256 and after.content_sha256) and (
        before.content_sha256 != after.content_sha256
    )


def _related_changes(a: Snapshot, b: Snapshot) -> tuple[RelatedChange, ...]:
    """Per page read in both snapshots, the related stories it gained and lost.

    A page that did not load in one snapshot lists no related stories there; comparing it
    would report every story as gone, so only pages that passed in both are compared.

    The tree holds a story once, under whichever of the pages listing it was read first, and
    pages fetched side by side finish in no fixed order: a story two pages list can sit under
    either from one crawl to the next. So a story counts as gained only if no page read before
    listed it, and as lost only if no page read after lists it, not merely because it moved.
    """
    before, after = _related_by_parent(a), _related_by_parent(b)
    anywhere_before = {key for _, stories in before.values() for key in stories}
    anywhere_after = {key for _, stories in after.values() for key in stories}
    changes: list[RelatedChange] = []
    for parent, (parent_url, stories_after) in after.items():
        if parent not in before:
            continue
        stories_before = before[parent][1]
        appeared = tuple(
            url
            for key, url in stories_after.items()
            if key not in stories_before and key not in anywhere_before
        )
        gone = tuple(
            url
            for key, url in stories_before.items()
            if key not in stories_after and key not in anywhere_after
        )
        if appeared or gone:
            changes.append(RelatedChange(parent_url, appeared, gone))
    return tuple(changes)


def _related_by_parent(snapshot: Snapshot) -> dict[str, tuple[str, dict[str, str]]]:
    """Passing page's normalized URL -> (its url, {normalized story URL: story url})."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for node in snapshot.root.walk():
        if not passing(node.verdict) or node.normalized_url in out:
            continue
        stories = {c.normalized_url: c.url for c in node.children if c.relation is Relation.RELATED}
        out[node.normalized_url] = (node.url, stories)
    return out


def render_diff(diff: SnapshotDiff) -> str:
    """Plain text for `crawler diff`; every page-controlled string stays on its own line."""
    head = (
        f"{one_line(diff.source)}: snapshot {_label(diff.before_id, diff.before_at)}"
        f" -> {_label(diff.after_id, diff.after_at)}"
    )
    if diff.is_empty:
        return f"{head}\nNo changes.\n"
    lines = [head]
    lines += _section("Added", [f"  + {one_line(u)}" for u in diff.added])
    lines += _section("Removed", [f"  - {one_line(u)}" for u in diff.removed])
    lines += _section(
        "Verdict changes",
        [f"  ~ {c.before} -> {c.after}: {one_line(c.url)}" for c in diff.verdict_changes],
    )
    lines += _section("Related stories", _related_lines(diff.related), len(diff.related))
    lines += _section("Content changed", [f"  * {one_line(u)}" for u in diff.content_changed])
    return "\n".join(lines) + "\n"


def _label(snapshot_id: int | None, at: datetime) -> str:
    """How a snapshot is named in the diff header."""
    when = at.isoformat(timespec="seconds")
    return f"{snapshot_id} ({when})" if snapshot_id is not None else when


def _section(title: str, items: list[str], count: int | None = None) -> list[str]:
    """A titled block with a count (of lines unless given), or nothing when there is nothing."""
    shown = len(items) if count is None else count
    return [f"{title} ({shown}):", *items] if items else []


def _related_lines(changes: Sequence[RelatedChange]) -> list[str]:
    """One line per page, then one per story that appeared (+) or disappeared (-)."""
    lines: list[str] = []
    for change in changes:
        lines.append(f"  {one_line(change.parent_url)}")
        lines += [f"    + {one_line(u)}" for u in change.appeared]
        lines += [f"    - {one_line(u)}" for u in change.disappeared]
    return lines


_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def one_line(text: str) -> str:
    """Page-controlled text made safe for one line: line breaks become spaces, controls go.

    Bidi overrides go too (CVE-2021-42574, "Trojan Source"): they can reorder what a
    terminal shows.
    """
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            if char.isspace():
                out.append(" ")
            continue
        out.append(char)
    return "".join(out).strip()


# -- alert events ----------------------------------------------------------------------------

ALERT_FLAGS = (Flag.NEWLY_DEAD, Flag.RECOVERED)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A link that became dead or came back, ready to be sent; the URL is redacted."""

    kind: Flag
    url: str
    verdict: Verdict
    reason: str | None
    title: str | None


def alert_events(snapshot: Snapshot) -> list[AlertEvent]:
    """One event per link flagged newly-dead or recovered; none for an inconclusive run."""
    if not is_conclusive(snapshot.outcome):
        return []
    events: list[AlertEvent] = []
    for node in first_nodes(snapshot).values():
        for kind in ALERT_FLAGS:
            if kind in node.flags:
                events.append(
                    AlertEvent(kind, redact_url(node.url), node.verdict, node.reason, node.title)
                )
    return events
