"""The terminal format: a rich Tree of the snapshot, rendered to a string.

Labels are built as `rich.text.Text` pieces, never as markup strings, so a page title such
as `[bold]x[/bold]` cannot style anything: it is shown exactly as written. Page strings are
also cleaned (`common.clean_text`) so they cannot carry terminal escape sequences.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from crawler.model import Flag, Node, Outcome, Snapshot, Verdict
from crawler.report.common import (
    INCONCLUSIVE_SENTENCE,
    TEXT_WIDTH,
    TITLE_WIDTH,
    clean_text,
    clean_url,
    duplicate_targets,
    extra_flags,
    number_nodes,
    outcome_label,
    redirect_chain,
    render_summary,
    truncate,
)

VERDICT_STYLES: dict[Verdict, str] = {
    Verdict.OK: "green",
    Verdict.REDIRECTED: "cyan",
    Verdict.DEAD: "bold red",
    Verdict.BLOCKED: "magenta",
    Verdict.ERROR: "yellow",
    Verdict.SOFT404: "bright_yellow",  # no orange among the 16 standard colours
    Verdict.SKIPPED: "dim",
}
OUTCOME_STYLES: dict[str, str] = {
    "complete": "green",
    "partial": "yellow",
    "inconclusive": "magenta",
}
FLAG_STYLES: dict[str, str] = {Flag.NEWLY_DEAD.value: "bold red", Flag.RECOVERED.value: "green"}
BADGE_WIDTH = max(len(verdict.value) for verdict in Verdict)


def render_tree(snapshot: Snapshot, *, color: bool = False, width: int = 100) -> str:
    """The snapshot as a text tree, a summary line, and a warning when inconclusive."""
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,  # the caller decides; NO_COLOR in the environment is the CLI's concern
        width=width,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(build_tree(snapshot))
    console.print(Text(render_summary(snapshot), style="bold"))
    if snapshot.outcome is Outcome.INCONCLUSIVE:
        console.print(Text(INCONCLUSIVE_SENTENCE, style="magenta"))
    return out.getvalue()


def build_tree(snapshot: Snapshot) -> Tree:
    """The rich Tree: the article at the root, one line per node below it."""
    numbers = number_nodes(snapshot.root)
    targets = duplicate_targets(snapshot.root)
    tree = Tree(root_label(snapshot), guide_style="dim")
    _add_children(tree, snapshot.root, numbers, targets)
    return tree


def _add_children(
    branch: Tree, node: Node, numbers: dict[int, int], targets: dict[str, Node]
) -> None:
    """Attach every child of `node` (recursively) under `branch`."""
    for child in node.children:
        sub = branch.add(node_label(child, numbers, targets))
        _add_children(sub, child, numbers, targets)


def root_label(snapshot: Snapshot) -> Text:
    """The article line: its source, the crawl outcome and, if fetched, its own status."""
    label = Text().append(clean_url(snapshot.source), style="bold")
    outcome = outcome_label(snapshot)
    label.append("  outcome ").append(outcome, style=OUTCOME_STYLES.get(outcome, ""))
    if snapshot.insecure:
        label.append("  [insecure: TLS not verified]", style="bold red")
    root = snapshot.root
    if root.status_code is not None or root.title:
        label.append("  ").append_text(_details(root))
    return label


def node_label(node: Node, numbers: dict[int, int], targets: dict[str, Node]) -> Text:
    """`#3 dead 404 https://… “Title” — reason [duplicate of #1 exact] [retried]`."""
    label = Text().append(f"#{numbers.get(id(node), 0)} ", style="dim")
    label.append_text(_details(node))
    if Flag.DUPLICATE.value in node.flags:
        label.append(" ").append(_duplicate_note(node, numbers, targets), style="yellow")
    for flag in extra_flags(node):
        label.append(" ").append(f"[{flag}]", style=FLAG_STYLES.get(flag, "dim"))
    if node.line is not None:
        label.append(f"  line {node.line}", style="dim")
    return label


def _details(node: Node) -> Text:
    """Badge, status (or redirect chain), URL, final URL, title and reason of one node."""
    text = Text().append(f"{node.verdict.value:<{BADGE_WIDTH}}", style=VERDICT_STYLES[node.verdict])
    status = redirect_chain(node) or ("—" if node.status_code is None else str(node.status_code))
    text.append(f" {status} ").append(clean_url(node.url))
    if node.final_url and node.final_url != node.url:
        text.append(f" → {clean_url(node.final_url)}", style="cyan")
    if node.title:
        text.append(f" “{truncate(clean_text(node.title), TITLE_WIDTH)}”", style="italic")
    if node.text and not node.title:
        text.append(f" ({truncate(clean_text(node.text), TEXT_WIDTH)})", style="dim")
    if node.reason:
        text.append(f" — {clean_text(node.reason)}", style="dim")
    return text


def _duplicate_note(node: Node, numbers: dict[int, int], targets: dict[str, Node]) -> str:
    """`[duplicate of #N kind]`, or the repeated URL when that node is not in the tree."""
    target = targets.get(node.duplicate_of or node.normalized_url)
    where = clean_url(node.duplicate_of or "?") if target is None else f"#{numbers[id(target)]}"
    kind = f" {clean_text(node.duplicate_kind)}" if node.duplicate_kind else ""
    return f"[duplicate of {where}{kind}]"
