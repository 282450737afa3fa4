"""History rules as tables: each step is one run of a watch, fed the runs before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crawler.history import (
    LinkState,
    alert_events,
    apply_history,
    build_timelines,
    diff_snapshots,
    failing,
    one_line,
    render_diff,
)
from crawler.model import Flag, Node, Outcome, Relation, Snapshot, Verdict
from crawler.urls import redact_url

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
URL = "https://news.example/story"
OK, DEAD, ERROR, BLOCKED, SOFT404 = (
    Verdict.OK,
    Verdict.DEAD,
    Verdict.ERROR,
    Verdict.BLOCKED,
    Verdict.SOFT404,
)
COMPLETE, INCONCLUSIVE = Outcome.COMPLETE, Outcome.INCONCLUSIVE
REASON = {DEAD: "HTTP 404", ERROR: "timed out", SOFT404: "page says not found", BLOCKED: "HTTP 403"}


def make_node(
    url: str, verdict: Verdict, relation: Relation = Relation.REFERENCE, **kw: Any
) -> Node:
    """A node as the crawl leaves it: a dead verdict carries the dead flag."""
    node = Node(url=url, normalized_url=url, relation=relation, depth=1, verdict=verdict, **kw)
    node.reason = REASON.get(verdict)
    if verdict is DEAD:
        node.add_flag(Flag.DEAD)
    return node


def make_snapshot(
    children: list[Node],
    at: datetime = T0,
    outcome: Outcome = COMPLETE,
    snapshot_id: int | None = None,
) -> Snapshot:
    root = Node(
        url="https://site.example/a",
        normalized_url="https://site.example/a",
        relation=Relation.ROOT,
        depth=0,
        verdict=OK,
        children=children,
    )
    return Snapshot(
        source="https://site.example/a",
        started_at=at,
        root=root,
        outcome=outcome,
        snapshot_id=snapshot_id,
    )


@dataclass
class Run:
    outcome: Outcome
    verdict: Verdict
    sha: str | None = None


def run_watch(runs: list[Run], dead_after: int = 2) -> list[Node]:
    """Play runs in order, as the daemon does: each is judged against the judged runs before it."""
    done: list[Snapshot] = []
    nodes: list[Node] = []
    for i, run in enumerate(runs):
        node = make_node(URL, run.verdict, content_sha256=run.sha)
        snapshot = make_snapshot([node], T0 + timedelta(hours=6 * i), run.outcome)
        apply_history(snapshot, build_timelines(done), dead_after)
        done.append(snapshot)
        nodes.append(node)
    return nodes


def verdicts_and_flags(nodes: list[Node]) -> list[tuple[str, list[str]]]:
    return [(str(n.verdict), [str(f) for f in n.flags]) for n in nodes]


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (OK, False),
        (Verdict.REDIRECTED, False),
        (DEAD, True),
        (ERROR, True),
        (SOFT404, True),
        (BLOCKED, False),
        (Verdict.SKIPPED, False),
    ],
)
def test_failing_verdicts(verdict: Verdict, expected: bool) -> None:
    assert failing(verdict) is expected


STREAK_TABLE = [
    pytest.param(
        [Run(COMPLETE, OK), Run(COMPLETE, DEAD), Run(COMPLETE, DEAD), Run(COMPLETE, DEAD)],
        [("ok", []), ("error", []), ("dead", ["dead", "newly-dead"]), ("dead", ["dead"])],
        id="ok-fail-fail: dead and newly-dead at the second failure, then just dead",
    ),
    pytest.param(
        [Run(COMPLETE, DEAD), Run(INCONCLUSIVE, ERROR), Run(COMPLETE, DEAD)],
        [("error", []), ("error", []), ("dead", ["dead", "newly-dead"])],
        id="an inconclusive run in the middle neither counts nor breaks the streak",
    ),
    pytest.param(
        [Run(COMPLETE, DEAD), Run(COMPLETE, BLOCKED), Run(COMPLETE, DEAD)],
        [("error", []), ("blocked", []), ("dead", ["dead", "newly-dead"])],
        id="blocked is no observation either",
    ),
    pytest.param(
        [Run(COMPLETE, DEAD), Run(COMPLETE, OK), Run(COMPLETE, DEAD)],
        [("error", []), ("ok", []), ("error", [])],
        id="an ok run breaks the streak; nothing was dead, so nothing recovered",
    ),
    pytest.param(
        [Run(COMPLETE, DEAD), Run(COMPLETE, DEAD), Run(COMPLETE, OK), Run(COMPLETE, OK)],
        [("error", []), ("dead", ["dead", "newly-dead"]), ("ok", ["recovered"]), ("ok", [])],
        id="recovered on the first ok after dead, once",
    ),
    pytest.param(
        [
            Run(COMPLETE, DEAD),
            Run(COMPLETE, DEAD),
            Run(COMPLETE, ERROR),
            Run(COMPLETE, DEAD),
            Run(COMPLETE, OK),
        ],
        [
            ("error", []),
            ("dead", ["dead", "newly-dead"]),
            ("error", []),
            ("dead", ["dead"]),
            ("ok", ["recovered"]),
        ],
        id="a timeout inside a dead stretch does not re-alert either way",
    ),
    pytest.param(
        [Run(COMPLETE, ERROR), Run(COMPLETE, DEAD)],
        [("error", []), ("dead", ["dead", "newly-dead"])],
        id="a timeout then a 404 is two failures in a row",
    ),
    pytest.param(
        [Run(COMPLETE, SOFT404), Run(COMPLETE, SOFT404), Run(COMPLETE, DEAD)],
        [("soft404", []), ("soft404", []), ("dead", ["dead", "newly-dead"])],
        id="soft404 counts toward the streak and keeps its own verdict",
    ),
    pytest.param(
        [Run(COMPLETE, ERROR), Run(COMPLETE, ERROR), Run(COMPLETE, ERROR), Run(COMPLETE, OK)],
        [("error", []), ("error", []), ("error", []), ("ok", [])],
        id="only a dead answer is promoted: timeouts stay error",
    ),
    pytest.param(
        [Run(COMPLETE, OK), Run(COMPLETE, DEAD), Run(COMPLETE, OK), Run(COMPLETE, DEAD)],
        [("ok", []), ("error", []), ("ok", []), ("error", ["flapping"])],
        id="flapping at the third switch",
    ),
    pytest.param(
        [Run(COMPLETE, OK), Run(COMPLETE, DEAD), Run(COMPLETE, OK), Run(COMPLETE, DEAD)]
        + [Run(COMPLETE, OK)] * 5,
        [
            ("ok", []),
            ("error", []),
            ("ok", []),
            ("error", ["flapping"]),
            ("ok", ["flapping"]),
            ("ok", ["flapping"]),
            ("ok", ["flapping"]),
            ("ok", []),
            ("ok", []),
        ],
        id="flapping ends when the switches leave the last six runs",
    ),
]


@pytest.mark.parametrize(("runs", "expected"), STREAK_TABLE)
def test_streak_rules(runs: list[Run], expected: list[tuple[str, list[str]]]) -> None:
    assert verdicts_and_flags(run_watch(runs)) == expected


def test_a_not_yet_dead_link_says_how_far_it_is() -> None:
    nodes = run_watch([Run(COMPLETE, DEAD), Run(COMPLETE, DEAD), Run(COMPLETE, DEAD)], dead_after=3)
    assert nodes[0].reason == "failed 1 of 3 runs needed to call it dead: HTTP 404"
    assert nodes[1].reason == "failed 2 of 3 runs needed to call it dead: HTTP 404"
    assert nodes[2].reason == "HTTP 404"
    assert Flag.DEAD not in nodes[0].flags and Flag.DEAD not in nodes[1].flags
    assert nodes[2].flags == ["dead", "newly-dead"]


def test_dead_after_one_is_dead_at_once() -> None:
    [node] = run_watch([Run(COMPLETE, DEAD)], dead_after=1)
    assert (node.verdict, node.flags) == (DEAD, ["dead", "newly-dead"])


def test_dead_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="dead_after"):
        apply_history(make_snapshot([make_node(URL, DEAD)]), {}, 0)


def test_an_inconclusive_run_changes_nothing() -> None:
    at = T0 + timedelta(days=1)
    timeline = [LinkState(URL, DEAD, COMPLETE, T0, content_sha256="aaa")]
    node = make_node(URL, DEAD, content_sha256="bbb")
    snapshot = make_snapshot([node], at, INCONCLUSIVE)
    apply_history(snapshot, {URL: timeline}, 2)
    assert (node.verdict, node.reason, node.flags) == (DEAD, "HTTP 404", ["dead"])


def test_timelines_are_ordered_by_time_whatever_order_they_come_in() -> None:
    states = [
        LinkState(URL, OK, COMPLETE, T0 + timedelta(hours=2)),
        LinkState(URL, DEAD, COMPLETE, T0),
    ]
    node = make_node(URL, DEAD)
    apply_history(make_snapshot([node], T0 + timedelta(hours=4)), {URL: states}, 2)
    assert node.verdict is ERROR  # the last run was ok, so the streak is 1


def test_skipped_nodes_and_the_root_without_history_are_left_alone() -> None:
    skipped = make_node("https://x.example/private", Verdict.SKIPPED)
    skipped.reason = "private address"
    snapshot = make_snapshot([skipped])
    apply_history(snapshot, {}, 2)
    assert (skipped.verdict, skipped.reason, skipped.flags) == (
        Verdict.SKIPPED,
        "private address",
        [],
    )
    assert snapshot.root.flags == []


@pytest.mark.parametrize(
    ("hashes", "changed"),
    [
        (["aaa", "bbb"], True),
        (["aaa", "aaa"], False),
        (["aaa", None], False),
        ([None, "bbb"], False),
        (["aaa", None, "bbb"], True),  # compared with the last hash known, not a missing one
        (["aaa", None, "aaa"], False),
    ],
)
def test_content_changed(hashes: list[str | None], changed: bool) -> None:
    nodes = run_watch([Run(COMPLETE, OK, sha) for sha in hashes])
    assert (Flag.CONTENT_CHANGED in nodes[-1].flags) is changed
    assert all(Flag.CONTENT_CHANGED not in n.flags for n in nodes[:-1])


def test_build_timelines_keeps_one_state_per_link_per_snapshot_oldest_first() -> None:
    later = make_snapshot(
        [make_node(URL, DEAD), make_node(URL, OK)], T0 + timedelta(hours=6), snapshot_id=2
    )
    earlier = make_snapshot([make_node(URL, OK, content_sha256="aaa")], T0, snapshot_id=1)
    timelines = build_timelines([later, earlier])
    assert timelines[URL] == [
        LinkState(URL, OK, COMPLETE, T0, content_sha256="aaa", snapshot_id=1),
        LinkState(URL, DEAD, COMPLETE, T0 + timedelta(hours=6), snapshot_id=2, reason="HTTP 404"),
    ]
    assert [s.verdict for s in timelines["https://site.example/a"]] == [OK, OK]


# -- diff -------------------------------------------------------------------------------------


def related(url: str) -> Node:
    return make_node(url, OK, Relation.RELATED)


def diff_pair() -> tuple[Snapshot, Snapshot]:
    """Two hand-built snapshots of one article, six hours apart."""
    a = make_snapshot(
        [
            make_node(
                "https://n.example/1",
                OK,
                content_sha256="h1",
                children=[related("https://n.example/r1"), related("https://n.example/r2")],
            ),
            make_node("https://n.example/2", OK, content_sha256="h2"),
            make_node("https://n.example/3", DEAD),
            make_node("https://n.example/x", OK, children=[related("https://n.example/rx")]),
        ],
        T0,
        snapshot_id=7,
    )
    b = make_snapshot(
        [
            make_node(
                "https://n.example/1",
                OK,
                content_sha256="h1b",
                children=[related("https://n.example/r2"), related("https://n.example/r3")],
            ),
            make_node("https://n.example/2", DEAD, content_sha256=None),
            make_node("https://n.example/4", OK),
            make_node("https://n.example/x", ERROR),  # did not load: its stories are not "gone"
        ],
        T0 + timedelta(hours=6),
        snapshot_id=9,
    )
    return a, b


def test_diff_snapshots() -> None:
    a, b = diff_pair()
    diff = diff_snapshots(a, b)
    assert diff.added == ("https://n.example/r3", "https://n.example/4")
    assert diff.removed == ("https://n.example/r1", "https://n.example/3", "https://n.example/rx")
    assert [(c.url, c.before, c.after) for c in diff.verdict_changes] == [
        ("https://n.example/2", OK, DEAD),
        ("https://n.example/x", OK, ERROR),
    ]
    assert [(r.parent_url, r.appeared, r.disappeared) for r in diff.related] == [
        ("https://n.example/1", ("https://n.example/r3",), ("https://n.example/r1",)),
    ]
    assert diff.content_changed == ("https://n.example/1",)
    assert not diff.is_empty


def test_a_story_that_moved_between_two_listing_pages_is_no_related_change() -> None:
    """Both references list story s; each crawl hangs it under whichever page was read first.
    That is not a change; a story no page lists any more (r1) and a new one (r3) still are."""
    shared = "https://n.example/s"
    a = make_snapshot(
        [
            make_node(
                "https://n.example/1",
                OK,
                children=[related(shared), related("https://n.example/r1")],
            ),
            make_node("https://n.example/2", OK),
        ],
        T0,
    )
    b = make_snapshot(
        [
            make_node("https://n.example/1", OK),
            make_node(
                "https://n.example/2",
                OK,
                children=[related(shared), related("https://n.example/r3")],
            ),
        ],
        T0 + timedelta(hours=6),
    )
    diff = diff_snapshots(a, b)
    assert [(r.parent_url, r.appeared, r.disappeared) for r in diff.related] == [
        ("https://n.example/1", (), ("https://n.example/r1",)),
        ("https://n.example/2", ("https://n.example/r3",), ()),
    ]


def test_render_diff() -> None:
    a, b = diff_pair()
    assert render_diff(diff_snapshots(a, b)) == (
        "https://site.example/a: snapshot 7 (2024-05-01T06:00:00+00:00)"
        " -> 9 (2024-05-01T12:00:00+00:00)\n"
        "Added (2):\n"
        "  + https://n.example/r3\n"
        "  + https://n.example/4\n"
        "Removed (3):\n"
        "  - https://n.example/r1\n"
        "  - https://n.example/3\n"
        "  - https://n.example/rx\n"
        "Verdict changes (2):\n"
        "  ~ ok -> dead: https://n.example/2\n"
        "  ~ ok -> error: https://n.example/x\n"
        "Related stories (1):\n"
        "  https://n.example/1\n"
        "    + https://n.example/r3\n"
        "    - https://n.example/r1\n"
        "Content changed (1):\n"
        "  * https://n.example/1\n"
    )


def test_identical_snapshots_have_no_diff() -> None:
    a, _ = diff_pair()
    diff = diff_snapshots(a, a)
    assert diff.is_empty
    assert render_diff(diff).endswith("\nNo changes.\n")


def test_render_diff_keeps_page_controlled_strings_on_one_line() -> None:
    hostile = "https://n.example/a\nInjected: line\x1b[31m\u202eevil\u2028more"
    a = make_snapshot([], T0)
    b = make_snapshot([make_node(hostile, OK)], T0 + timedelta(hours=1))
    text = render_diff(diff_snapshots(a, b))
    assert text.splitlines()[1:] == [
        "Added (1):",
        "  + https://n.example/a Injected: line[31mevil more",
    ]
    assert one_line("\ttab\r\nx\x00y\u200f") == "tab  xy"


# -- alert events -------------------------------------------------------------------------------


def test_alert_events_one_per_flagged_link_with_redacted_urls() -> None:
    secret = "https://user:hunter2@n.example/gone?token=abc123&page=2"
    gone = make_node(secret, DEAD, title="Gone story")
    gone.add_flag(Flag.NEWLY_DEAD)
    repeat = make_node(secret, DEAD)
    repeat.add_flag(Flag.NEWLY_DEAD)
    repeat.add_flag(Flag.DUPLICATE)
    back = make_node("https://n.example/back", OK, title="Back")
    back.add_flag(Flag.RECOVERED)
    quiet = make_node("https://n.example/still-dead", DEAD)
    events = alert_events(make_snapshot([gone, repeat, back, quiet]))
    assert [(e.kind, e.url, e.verdict, e.reason, e.title) for e in events] == [
        (Flag.NEWLY_DEAD, redact_url(secret), DEAD, "HTTP 404", "Gone story"),
        (Flag.RECOVERED, "https://n.example/back", OK, None, "Back"),
    ]
    assert "hunter2" not in events[0].url and "abc123" not in events[0].url


def test_no_alert_events_for_an_inconclusive_run() -> None:
    node = make_node("https://n.example/gone", DEAD)
    node.add_flag(Flag.NEWLY_DEAD)
    assert alert_events(make_snapshot([node], outcome=INCONCLUSIVE)) == []


def test_a_watch_played_end_to_end_alerts_once_each_way() -> None:
    runs = [
        Run(COMPLETE, OK),
        Run(COMPLETE, DEAD),
        Run(INCONCLUSIVE, ERROR),
        Run(COMPLETE, DEAD),
        Run(COMPLETE, DEAD),
        Run(COMPLETE, OK),
        Run(COMPLETE, OK),
    ]
    kinds = []
    done: list[Snapshot] = []
    for i, run in enumerate(runs):
        snapshot = make_snapshot(
            [make_node(URL, run.verdict)], T0 + timedelta(hours=i), run.outcome
        )
        apply_history(snapshot, build_timelines(done), 2)
        done.append(snapshot)
        kinds.append([str(e.kind) for e in alert_events(snapshot)])
    assert kinds == [[], [], [], ["newly-dead"], [], ["recovered"], []]
