"""Renderers: JSON contract and round trip, the rich tree, Markdown, escaping and redaction."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from markdown_it import MarkdownIt

from crawler.model import SCHEMA_ID, Flag, Hop, Node, Outcome, Relation, Snapshot, Verdict
from crawler.report import (
    FORMATS,
    render,
    render_json,
    render_markdown,
    render_summary,
    render_tree,
    snapshot_from_dict,
    snapshot_to_dict,
)
from crawler.report.common import INCONCLUSIVE_SENTENCE, redirect_chain
from crawler.report.html import render_html
from crawler.report.jsonfmt import iter_json
from crawler.report.markdown import escape_markdown

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET_URL = "http://user:secret@host.example/p?token=abc"
SCRIPT_TITLE = "<script>alert(1)</script>"
MARKUP_TITLE = "[red]x[/red]"
ANSI = "\x1b[2J"


def make_node(url: str, relation: Relation, depth: int, key: int, **fields: Any) -> Node:
    """A node whose normalized URL is its URL."""
    return Node(url=url, normalized_url=url, relation=relation, depth=depth, key=key, **fields)


def make_snapshot(outcome: Outcome = Outcome.COMPLETE, *, secrets: bool = True) -> Snapshot:
    """A root with references, related stories, a duplicate, dead, redirected, soft404, skipped."""
    ref = Relation.REFERENCE
    root = make_node(
        "https://news.example/article",
        Relation.ROOT,
        0,
        0,
        verdict=Verdict.OK,
        status_code=200,
        attempts=1,
        title="The article",
    )
    ok = make_node(
        "https://a.example/story",
        ref,
        1,
        1,
        parent_key=0,
        verdict=Verdict.OK,
        status_code=200,
        attempts=1,
        title=SCRIPT_TITLE,
        line=3,
        text="a story",
        content_sha256="ab" * 32,
        elapsed_ms=12.5,
        canonical_url="https://a.example/story",
        published="2024-04-30",
    )
    ok.children = [
        make_node(
            "https://a.example/related",
            Relation.RELATED,
            2,
            6,
            parent_key=1,
            verdict=Verdict.SOFT404,
            status_code=200,
            attempts=1,
            title=MARKUP_TITLE,
            reason="page says it was not found",
        ),
        make_node(
            "https://a.example/other",
            Relation.RELATED,
            2,
            7,
            parent_key=1,
            verdict=Verdict.OK,
            status_code=200,
            attempts=1,
            title="Other " + ANSI + "story",
        ),
    ]
    dead_url = SECRET_URL if secrets else "http://host.example/p"
    dead = make_node(
        dead_url,
        ref,
        1,
        2,
        parent_key=0,
        verdict=Verdict.DEAD,
        status_code=404,
        attempts=3,
        flags=[Flag.DEAD.value, Flag.RETRIED.value],
        reason=f"404 Not Found at {dead_url}",
        line=5,
    )
    moved = make_node(
        "http://old.example/x",
        ref,
        1,
        3,
        parent_key=0,
        verdict=Verdict.REDIRECTED,
        status_code=200,
        attempts=1,
        final_url="https://new.example/x",
        redirects=[Hop("http://old.example/x", 301)],
    )
    dup = make_node(
        "https://a.example/story",
        ref,
        1,
        4,
        parent_key=0,
        verdict=Verdict.OK,
        status_code=200,
        attempts=1,
        flags=[Flag.DUPLICATE.value],
        duplicate_of="https://a.example/story",
        duplicate_kind="exact",
        line=9,
    )
    skipped = make_node(
        "ftp://files.example/f",
        ref,
        1,
        5,
        parent_key=0,
        verdict=Verdict.SKIPPED,
        reason="unsupported scheme",
    )
    root.children = [ok, dead, moved, dup, skipped]
    return Snapshot(
        source="https://news.example/article",
        started_at=T0,
        root=root,
        outcome=outcome,
        finished_at=T0 + timedelta(seconds=1.23),
        snapshot_id=42,
    )


def validate(data: dict[str, Any], schema: dict[str, object]) -> None:
    """Validate against the shared schema, Draft 2020-12, formats checked where possible."""
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(data)


# --- JSON -------------------------------------------------------------------------------


def test_json_validates_against_schema(snapshot_schema: dict[str, object]) -> None:
    data = json.loads(render_json(make_snapshot()))
    validate(data, snapshot_schema)
    assert data["schema"] == SCHEMA_ID
    assert data["summary"] == make_snapshot().summary()
    assert data["summary"]["references"] == 5 and data["summary"]["duplicates"] == 1


def test_json_fields(snapshot_schema: dict[str, object]) -> None:
    data = snapshot_to_dict(make_snapshot())
    for key in ("started_at", "finished_at"):
        assert datetime.fromisoformat(data[key]).tzinfo is not None
    story, dead, moved, dup, _ = data["root"]["children"]
    assert moved["redirects"] == [{"url": "http://old.example/x", "status_code": 301}]
    assert moved["final_url"] == "https://new.example/x"
    assert dup["duplicate_of"] == "https://a.example/story" and dup["duplicate_kind"] == "exact"
    assert story["line"] == 3 and story["text"] == "a story" and story["elapsed_ms"] == 12.5
    assert story["title"] == SCRIPT_TITLE  # JSON carries data as it is; escaping is JSON's job
    assert dead["attempts"] == 3 and "dead" in dead["flags"]


def test_json_text_format() -> None:
    text = render_json(make_snapshot())
    assert text.endswith("}\n") and text.startswith('{\n  "schema"')
    snap = make_snapshot()
    snap.root.children[0].title = "Zürich – 東京"
    assert "Zürich – 東京" in render_json(snap)


def test_json_round_trip() -> None:
    snap = make_snapshot(secrets=False)
    again = snapshot_from_dict(json.loads(render_json(snap)))
    assert again == snap
    assert snapshot_to_dict(again) == snapshot_to_dict(snap)


def test_running_renders_as_partial(snapshot_schema: dict[str, object]) -> None:
    snap = make_snapshot(Outcome.RUNNING)
    snap.finished_at = None
    snap.snapshot_id = None
    data = snapshot_to_dict(snap)
    validate(data, snapshot_schema)
    assert data["outcome"] == "partial" and data["finished_at"] is None
    assert data["snapshot_id"] == snapshot_to_dict(snap)["snapshot_id"]  # stable
    assert "outcome partial" in render_summary(snap)
    assert snapshot_from_dict(data).outcome is Outcome.PARTIAL


def test_insecure_and_naive_time(snapshot_schema: dict[str, object]) -> None:
    snap = make_snapshot()
    assert "insecure" not in snapshot_to_dict(snap)
    snap.insecure = True
    snap.started_at = datetime(2024, 5, 1, 12, 0)  # naive: taken as UTC
    data = snapshot_to_dict(snap)
    validate(data, snapshot_schema)
    assert data["insecure"] is True and data["started_at"].endswith("+00:00")
    assert snapshot_from_dict(data).insecure


def test_dead_flag_is_guaranteed(snapshot_schema: dict[str, object]) -> None:
    snap = make_snapshot()
    snap.root.children[1].flags = [Flag.RETRIED.value, Flag.RETRIED.value]
    data = snapshot_to_dict(snap)
    validate(data, snapshot_schema)
    assert data["root"]["children"][1]["flags"] == ["dead", "retried"]


def test_from_dict_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match=r"not a crawler\.snapshot/1"):
        snapshot_from_dict({"schema": "something/else"})
    broken = snapshot_to_dict(make_snapshot())
    del broken["root"]["verdict"]
    with pytest.raises(ValueError, match="malformed"):
        snapshot_from_dict(broken)


# --- tree -------------------------------------------------------------------------------


def test_tree_shows_every_node() -> None:
    snap = make_snapshot()
    text = render_tree(snap, width=200)
    for node in snap.root.walk()[1:]:
        line = next(ln for ln in text.splitlines() if f"#{snap.root.walk().index(node)} " in ln)
        assert node.verdict.value in line
        if "secret" not in node.url:
            assert node.url in line
    assert "“The article”" in text.splitlines()[0] and "outcome complete" in text.splitlines()[0]
    assert "301 → 200 http://old.example/x → https://new.example/x" in text
    assert "[duplicate of #1 exact]" in text
    assert "[retried]" in text and "— unsupported scheme" in text
    assert text.rstrip("\n").splitlines()[-1] == render_summary(snap)
    assert INCONCLUSIVE_SENTENCE not in text


def test_tree_is_nested() -> None:
    lines = render_tree(make_snapshot(), width=200).splitlines()
    related = next(ln for ln in lines if "a.example/related" in ln)
    story = next(ln for ln in lines if "a.example/story" in ln)
    assert related.index("#") > story.index("#")  # indented one level deeper


def test_tree_colour_only_when_asked() -> None:
    snap = make_snapshot()
    plain = render_tree(snap)
    coloured = render_tree(snap, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1;31mdead" in coloured  # dead is bold red
    assert "\x1b[32mok" in coloured and "\x1b[36mredirected" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_tree_shows_hostile_strings_literally() -> None:
    text = render_tree(make_snapshot(), width=200)
    assert f"“{MARKUP_TITLE}”" in text
    assert f"“{SCRIPT_TITLE}”" in text
    assert "\x1b" not in text and "“Other [2Jstory”" in text  # the page's ESC is gone
    coloured = render_tree(make_snapshot(), color=True, width=200)
    assert "\x1b[2J" not in coloured and MARKUP_TITLE in coloured


def test_summary_line() -> None:
    root = make_node("a.md", Relation.ROOT, 0, 0)
    refs = [
        make_node(f"https://x.example/{i}", Relation.REFERENCE, 1, i, verdict=Verdict.OK)
        for i in (1, 2, 3)
    ]
    refs[2].flags.append(Flag.DUPLICATE.value)
    refs[0].children = [
        make_node(f"https://y.example/{i}", Relation.RELATED, 2, 3 + i) for i in (1, 2)
    ]
    root.children = refs
    snap = Snapshot("a.md", T0, root, Outcome.COMPLETE, T0 + timedelta(seconds=1.2))
    assert render_summary(snap) == (
        "3 references · 6 nodes · 0 dead · 1 duplicate · outcome complete (1.2 s)"
    )
    snap.finished_at = T0 + timedelta(seconds=125)
    assert render_summary(snap).endswith("(2 min 05 s)")
    for ref in refs:  # one dead URL cited twice, and another: 3 dead nodes, 2 dead URLs
        ref.verdict = Verdict.DEAD
    refs[2].normalized_url = refs[1].normalized_url
    assert " · 3 dead (2 URLs) · " in render_summary(snap)
    assert "| Dead | 3 (2 URLs) |" in render_markdown(snap)
    refs[2].normalized_url = "https://x.example/other"
    assert " · 3 dead · " in render_summary(snap)


def test_inconclusive_sentence() -> None:
    snap = make_snapshot(Outcome.INCONCLUSIVE)
    assert INCONCLUSIVE_SENTENCE in " ".join(render_tree(snap, width=300).split())
    assert escape_markdown(INCONCLUSIVE_SENTENCE) in render_markdown(snap)
    assert "Inconclusive" not in render_markdown(make_snapshot())


# --- Markdown ---------------------------------------------------------------------------

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def test_markdown_structure() -> None:
    snap = make_snapshot()
    text = render_markdown(snap)
    lines = text.splitlines()
    assert lines[0].startswith("# Link report: https://news.example/article")
    assert "| Dead | 1 |" in lines and "| References | 5 |" in lines
    html_out = MD.render(text)
    assert "<table>" in html_out and html_out.count("<ul>") == 2  # one nested list
    assert "<strong>soft404</strong>" in html_out
    assert "301 → 200" in text


def test_markdown_escapes_page_strings() -> None:
    snap = make_snapshot()
    snap.root.children[4].text = "[x](javascript:alert(1)) **b** `c`"
    text = render_markdown(snap)
    assert "<script>" not in text
    html_out = MD.render(text)
    assert "<script" not in html_out and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_out
    assert "<a " not in html_out and "javascript:" in html_out  # shown, not linked
    assert "[red]x[/red]" in html_out and "**b**" in html_out and "`c`" in html_out


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1))
def test_escape_markdown_renders_literally(text: str) -> None:
    rendered = MD.render(escape_markdown(text))
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n")
    assert html.unescape(rendered[3:-5]) == text


# --- redaction and dispatch ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_secrets_redacted_in_every_format(fmt: str) -> None:
    snap = make_snapshot()
    snap.source = "https://editor:hunter2@news.example/article?api_key=k3y"
    text = render(snap, fmt, color=True)
    for secret in ("secret", "token=abc", "hunter2", "k3y"):
        assert secret not in text
    assert "host.example/p" in text


def test_render_dispatch(capsys: pytest.CaptureFixture[str]) -> None:
    snap = make_snapshot()
    assert render(snap, "text") == render(snap, "tree") == render_tree(snap)
    assert render(snap, "tree", color=True) == render_tree(snap, color=True)
    assert render(snap, "json") == render_json(snap)
    assert render(snap, "markdown") == render_markdown(snap)
    assert set(FORMATS) == {"tree", "text", "json", "markdown", "html", "csv", "junit"}
    with pytest.raises(ValueError, match="unknown format"):
        render(snap, "yaml")
    assert capsys.readouterr().out == ""  # renderers return strings, never print


def test_json_in_pieces_is_the_same_text_as_one_dump() -> None:
    """A snapshot far over one 64 KiB piece, with HTML-unsafe titles on piece boundaries: the
    pieces `crawl -o out.json` writes join into exactly `json.dumps` of the snapshot, escaped."""
    snap = make_snapshot(secrets=False)
    ref = snap.root.children[0]
    for i in range(2000):
        title = f"</script><b>{i}</b> & \u2028 Zürich"
        ref.children.append(
            make_node(f"https://a.example/r/{i}", Relation.RELATED, 2, 1000 + i, title=title)
        )
    pieces = list(iter_json(snap))
    assert len(pieces) > 3
    text = "".join(pieces)
    expected = json.dumps(snapshot_to_dict(snap), indent=2, ensure_ascii=False)
    assert (
        text
        == expected.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        + "\n"
    )
    assert text == render_json(snap)
    assert "</script>" not in text
    assert json.loads(text) == snapshot_to_dict(snap)


def test_redirect_chain_shows_each_answer_once() -> None:
    hops = [Hop("http://a.example/1", 301), Hop("http://a.example/2", 302)]
    followed = make_node("http://a.example/1", Relation.REFERENCE, 1, 1, redirects=hops)
    followed.final_url, followed.status_code = "http://a.example/3", 200
    assert redirect_chain(followed) == "301 → 302 → 200"
    # Given up at the second hop (too many redirects): its 302 is the last answer, not twice.
    refused = make_node("http://a.example/1", Relation.REFERENCE, 1, 1, redirects=hops)
    refused.final_url, refused.status_code = "http://a.example/2", 302
    assert redirect_chain(refused) == "301 → 302"
    root = make_node("a.md", Relation.ROOT, 0, 0)
    root.children = [refused]
    html = render_html(Snapshot("a.md", T0, root, Outcome.COMPLETE, T0))
    assert "301 → 302<" in html and "302 → 302" not in html
