"""crawler.conclude: the cross-node conclusions of a finished crawl, on hand-built trees."""

from __future__ import annotations

from crawler.conclude import (
    NETWORK_DOWN_REASON,
    conclude_outcome,
    mark_result_duplicates,
    resync_duplicates,
)
from crawler.model import (
    Attempted,
    DuplicateKind,
    Failure,
    FetchResult,
    Flag,
    Node,
    Outcome,
    Relation,
    Verdict,
)


def _tree(*children: Node) -> Node:
    root = Node(
        url="article.txt", normalized_url="article.txt", relation=Relation.ROOT, depth=0, key=0
    )
    for key, child in enumerate(children, start=1):
        child.key, child.parent_key = key, 0
        root.children.append(child)
    return root


def _ref(url: str, **fields: object) -> Node:
    node = Node(url=url, normalized_url=url, relation=Relation.REFERENCE, depth=1)
    for name, value in fields.items():
        setattr(node, name, value)
    return node


def test_links_ending_at_one_final_url_or_canonical_are_duplicates_of_the_first() -> None:
    a = _ref("https://a.example/1", final_url="https://a.example/story")
    b = _ref("https://a.example/2", final_url="https://a.example/story")
    c = _ref("https://c.example/x", canonical_url="https://c.example/story")
    d = _ref("https://c.example/y", canonical_url="https://c.example/story")
    e = _ref("https://e.example/z", final_url="https://e.example/z")
    changed = mark_result_duplicates(_tree(a, b, c, d, e))
    assert changed == [b, d]
    assert (b.duplicate_of, b.duplicate_kind) == (a.url, DuplicateKind.REDIRECT.value)
    assert (d.duplicate_of, d.duplicate_kind) == (c.url, DuplicateKind.CANONICAL.value)
    assert Flag.DUPLICATE in b.flags and Flag.DUPLICATE not in a.flags


def test_repeats_take_the_final_verdict_of_the_url_they_repeat() -> None:
    first = _ref("https://a.example/1", verdict=Verdict.SOFT404, reason="the probe says so")
    repeat = _ref("https://a.example/1", verdict=Verdict.OK)
    unfinished = _ref("https://a.example/1", verdict=Verdict.OK)
    root = _tree(first, repeat, unfinished)
    changed = resync_duplicates(root, {first.normalized_url: first}, {first.key, repeat.key})
    assert changed == [repeat]
    assert (repeat.verdict, repeat.reason) == (Verdict.SOFT404, "the probe says so")
    assert unfinished.verdict is Verdict.OK


def test_outcome_complete_or_partial_when_the_network_worked() -> None:
    node = _ref("https://a.example/1", verdict=Verdict.DEAD)
    results = [FetchResult(node.url, status_code=404)]
    assert conclude_outcome(_tree(node), results, [node], cap_hit=False) == (Outcome.COMPLETE, [])
    assert conclude_outcome(_tree(node), results, [node], cap_hit=True) == (Outcome.PARTIAL, [])


def test_links_failing_after_our_network_went_down_are_errors_not_dead() -> None:
    ok = _ref("https://a.example/1", verdict=Verdict.OK)
    lost = [
        _ref(f"https://a.example/{n}", verdict=Verdict.DEAD, reason="unresolvable") for n in (2, 3)
    ]
    for node in lost:
        node.add_flag(Flag.DEAD)
    results = [FetchResult(ok.url, status_code=200)] + [
        FetchResult(node.url, failure=Failure.DNS) for node in lost
    ]
    # The crawl keeps only what the outcome reads of each fetch: it concludes the same.
    kept = [Attempted.of(result) for result in results]
    assert kept[0] == Attempted(ok.url, None, None, answered=True)
    assert kept[1] == Attempted(lost[0].url, None, Failure.DNS, answered=False)
    from_kept, _ = conclude_outcome(_tree(ok, *lost), kept, [ok, *lost], cap_hit=False)
    assert from_kept is Outcome.INCONCLUSIVE
    for node in lost:  # concluding changed them: back as they were for the FetchResult run
        node.verdict, node.reason = Verdict.DEAD, "unresolvable"
        node.add_flag(Flag.DEAD)
    outcome, changed = conclude_outcome(_tree(ok, *lost), results, [ok, *lost], cap_hit=False)
    assert outcome is Outcome.INCONCLUSIVE and changed == lost
    for node in lost:
        assert node.verdict is Verdict.ERROR and Flag.DEAD not in node.flags
        assert node.reason == f"{NETWORK_DOWN_REASON} (unresolvable)"
    assert ok.verdict is Verdict.OK
