"""URL extraction on linkify-it's and GFM's fixtures, with a reason for every failure.

The loaders and the oracle come from tests/test_extract.py, so the suite and the tests agree
on what a pass is. Failures are explained by policy: the crawler checks web links, so text
without an http(s) scheme (bare domains, e-mail, ftp:, //host) is not extracted from prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from accuracy.table import Figure, ratio
from crawler.extract import extract_text_links
from tests.test_extract import (
    SCHEMEFUL,
    expected_hrefs,
    first_raw,
    found_hrefs,
    gfm_examples,
    linkify_cases,
)

GFM_FILES = (
    ("spec_links_section_excerpt.txt", None),
    ("spec_autolinks_sections_excerpt.txt", None),
    ("extensions.txt", "Autolinks"),
)
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/|$)")


@dataclass(frozen=True, slots=True)
class Failure:
    """One fixture the extractor does not pass, and why."""

    suite: str
    text: str
    expected: str
    got: str
    reason: str


def reason_for(expected: str) -> str:
    """Why the crawler does not extract `expected` from prose (its policy), else a bug."""
    lowered = expected.lower()
    if lowered.startswith("//"):
        return "protocol-relative (//host): no scheme, not taken from prose"
    if lowered.startswith(("ftp:", "mailto:")):
        return f"{lowered.split(':')[0]}: is not an http(s) link the crawler checks"
    if "@" in expected and "://" not in expected:
        return "bare e-mail address: not a web link"
    if _IP_RE.match(expected):
        return "bare IP without scheme: fuzzy IPs are off (linkify-it needs fuzzyIP too)"
    if not SCHEMEFUL.match(expected):
        return "schema-less domain: prose is only searched for http(s):// and www. links"
    return "BUG: an http(s) link the crawler should find"


def linkify_results(root: Path) -> tuple[int, int, int, int, list[Failure]]:
    """(http(s) passed, http(s) total, all passed, all total, failures) for links.txt."""
    cases = linkify_cases(root / "linkify-it" / "links.txt")
    failures = []
    schemeful = passed = passed_schemeful = 0
    for text, want in cases:
        got = first_raw(text)
        is_schemeful = bool(SCHEMEFUL.match(want))
        schemeful += is_schemeful
        if got == want:
            passed += 1
            passed_schemeful += is_schemeful
        else:
            failures.append(Failure("linkify-it links", text, want, got or "-", reason_for(want)))
    return passed_schemeful, schemeful, passed, len(cases), failures


def not_links_results(root: Path) -> tuple[int, int, list[Failure]]:
    """(correctly empty, total, failures) for not_links.txt."""
    text = (root / "linkify-it" / "not_links.txt").read_text(encoding="utf-8")
    inputs = [ln for ln in text.split("\n") if ln.strip() and not ln.startswith("%")]
    failures = []
    for line in inputs:
        found = [link.url for link in extract_text_links(line)]
        if found:
            failures.append(Failure("linkify-it not_links", line, "-", " ".join(found), "BUG"))
    return len(inputs) - len(failures), len(inputs), failures


def gfm_results(root: Path) -> tuple[int, int, list[Failure]]:
    """(passed, total, failures) over the GFM link, autolink and extension examples."""
    passed = total = 0
    failures = []
    for filename, section in GFM_FILES:
        for markdown, expected_html, autolink in gfm_examples(
            root / "gfm-spec" / filename, section
        ):
            if expected_html.strip() == "<IGNORE>":
                continue
            total += 1
            want, got = expected_hrefs(expected_html), found_hrefs(markdown, autolink)
            if want == got:
                passed += 1
                continue
            missing = [u for u in want if u not in got]
            reason = reason_for(missing[0]) if missing else "BUG: extra link"
            failures.append(
                Failure(f"GFM {filename}", markdown, " ".join(want), " ".join(got), reason)
            )
    return passed, total, failures


def extraction_figures(root: Path) -> tuple[list[Figure], list[Failure]]:
    """linkify-it and GFM pass rates, and every failure."""
    ok_http, n_http, ok_all, n_all, link_fail = linkify_results(root)
    ok_not, n_not, not_fail = not_links_results(root)
    ok_gfm, n_gfm, gfm_fail = gfm_results(root)
    figures = [
        ratio("URLs: linkify-it links.txt, http(s) cases", "100%", ok_http, n_http, 1.0),
        ratio("URLs: linkify-it links.txt, all cases", "-", ok_all, n_all, None),
        ratio("URLs: linkify-it not_links.txt, none found", "100%", ok_not, n_not, 1.0),
        ratio("URLs: GFM links + autolinks examples", "-", ok_gfm, n_gfm, None),
    ]
    return figures, [*link_fail, *not_fail, *gfm_fail]
