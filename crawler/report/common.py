"""What every human-readable format shares: labels, the summary line, safe page strings.

Anything a web page controls (titles, URLs, link text, reasons quoting a server) is
untrusted. Before it reaches a terminal or a Markdown file it is redacted (no credentials
or secret query values), stripped of control characters (an ESC in a <title> would
otherwise drive the reader's terminal) and of bidi overrides (CVE-2021-42574, "Trojan
Source"), and squeezed onto one line.
"""

from __future__ import annotations

import re

from crawler.model import Flag, Node, Outcome, Snapshot, Verdict
from crawler.urls import redact_url

INCONCLUSIVE_SENTENCE = (
    "Inconclusive: the checker's own network looked down (no host answered); "
    "no link is reported dead."
)
TITLE_WIDTH = 60
TEXT_WIDTH = 40

# C0/C1 controls and DEL, plus the Unicode bidi embeddings, overrides and isolates.
_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES_RE = re.compile(r"\s{2,}")
# A URL inside free text (a reason or link text), up to the next space or quote.
_URL_IN_TEXT_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>]+")
# Flags the badge or the duplicate note already say.
_SHOWN_ELSEWHERE = frozenset({Flag.DEAD.value, Flag.DUPLICATE.value})


def outcome_label(snapshot: Snapshot) -> str:
    """The outcome as reported: a crawl still RUNNING is shown as `partial`."""
    if snapshot.outcome is Outcome.RUNNING:
        return Outcome.PARTIAL.value
    return snapshot.outcome.value


def duration_seconds(snapshot: Snapshot) -> float | None:
    """Wall time of the crawl in seconds, or None while it has not finished."""
    if snapshot.finished_at is None:
        return None
    return (snapshot.finished_at - snapshot.started_at).total_seconds()


def format_duration(seconds: float) -> str:
    """`1.2 s` below a minute, `3 min 04 s` above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def render_summary(snapshot: Snapshot) -> str:
    """One line: `3 references · 6 nodes · 0 dead · 1 duplicate · outcome complete (1.2 s)`."""
    counts = snapshot.summary()
    parts = [
        _plural(counts["references"], "reference"),
        _plural(counts["nodes"], "node"),
        f"{counts['dead']} dead{dead_urls(snapshot, counts['dead'])}",
        _plural(counts["duplicates"], "duplicate"),
        f"outcome {outcome_label(snapshot)}",
    ]
    line = " · ".join(parts)
    seconds = duration_seconds(snapshot)
    return line if seconds is None else f"{line} ({format_duration(seconds)})"


def dead_urls(snapshot: Snapshot, count: int) -> str:
    """` (2 URLs)` when some of the `count` dead nodes repeat a URL cited already, else ""."""
    urls = {n.normalized_url for n in snapshot.root.walk() if n.verdict is Verdict.DEAD}
    return "" if len(urls) == count else f" ({_plural(len(urls), 'URL')})"


def _plural(count: int, noun: str) -> str:
    """`1 node`, `2 nodes`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def redact_text(text: str) -> str:
    """Redact every URL found inside free text (a reason may quote one)."""
    return _URL_IN_TEXT_RE.sub(lambda match: redact_url(match.group(0)), text)


def clean_text(text: str) -> str:
    """A page string made safe to print: one line, no control characters, no secrets."""
    text = _UNSAFE_RE.sub(" ", redact_text(text))
    return _SPACES_RE.sub(" ", text).strip()


def clean_url(url: str) -> str:
    """A URL redacted and made safe to print on one line."""
    return _UNSAFE_RE.sub("", redact_url(url))


def truncate(text: str, width: int) -> str:
    """Cut `text` to `width` characters, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def redirect_chain(node: Node) -> str | None:
    """The statuses along a redirect chain, compactly: `301 → 302 → 200`; None without hops.

    A chain given up on (too long, a loop, a bad location) ends at its last hop's status."""
    if not node.redirects:
        return None
    codes = [str(hop.status_code) for hop in node.redirects]
    if node.final_url != node.redirects[-1].url:  # else the chain was refused at its last hop
        codes.append("—" if node.status_code is None else str(node.status_code))
    return " → ".join(codes)


def extra_flags(node: Node) -> list[str]:
    """Flags worth a label of their own (not `dead` or `duplicate`), `retried` included."""
    flags = [flag for flag in node.flags if flag not in _SHOWN_ELSEWHERE]
    if node.attempts > 1 and Flag.RETRIED.value not in flags:
        flags.append(Flag.RETRIED.value)
    return flags


def number_nodes(root: Node) -> dict[int, int]:
    """Display numbers in tree order (root is #0), keyed by `id(node)`."""
    return {id(node): index for index, node in enumerate(root.walk())}


def duplicate_targets(root: Node) -> dict[str, Node]:
    """For each URL, the first node (tree order) that is not itself a duplicate."""
    first: dict[str, Node] = {}
    for node in root.walk():
        if Flag.DUPLICATE.value in node.flags:
            continue
        first.setdefault(node.url, node)
        first.setdefault(node.normalized_url, node)
    return first
