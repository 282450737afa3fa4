"""The JUnit XML format: one test case per link, so CI systems show link rot like test failures.

Mapping (a decision, documented for CI users):
    ok, redirected      pass
    dead, soft404       <failure>  the link is gone (a soft 404 is a page saying so)
    error               <error>    the check itself could not finish (timeout, TLS, ...)
    blocked, skipped    <skipped>  nobody could tell: the server refused us, or we did not try
Every node but the article itself is a case, duplicates included (a dead link cited twice is
two places to fix). Names are the redacted URL, made unique with ` [2]`, ` [3]`...; the
class name says where the link was found. Strings are cleaned of characters XML 1.0 forbids.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from crawler.model import Flag, Node, Relation, Snapshot, Verdict
from crawler.report.common import clean_text, clean_url, duration_seconds, outcome_label

FAILURE = frozenset({Verdict.DEAD, Verdict.SOFT404})
SKIPPED = frozenset({Verdict.BLOCKED, Verdict.SKIPPED})
# XML 1.0 §2.2 Char: no C0 controls but tab/LF/CR, no surrogates, no U+FFFE/U+FFFF.
_NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(snapshot: Snapshot) -> str:
    """The snapshot as a JUnit XML `<testsuites>` document with one `<testsuite>`."""
    cases = [node for node in snapshot.root.walk() if node.relation is not Relation.ROOT]
    suite = ET.Element("testsuite", _suite_attrs(snapshot, cases))
    props = ET.SubElement(suite, "properties")
    for name, value in _properties(snapshot).items():
        ET.SubElement(props, "property", name=name, value=_xml(value))
    names: dict[str, int] = {}
    for node in cases:
        suite.append(testcase(node, _unique(clean_url(node.url), names)))
    root = ET.Element("testsuites", {k: suite.attrib[k] for k in _COUNTED})
    root.set("name", "crawler")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_COUNTED = ("tests", "failures", "errors", "skipped", "time")


def _suite_attrs(snapshot: Snapshot, cases: list[Node]) -> dict[str, str]:
    """Name, counts, time and timestamp of the suite."""
    seconds = duration_seconds(snapshot)
    return {
        "name": _xml(f"links of {clean_url(snapshot.source)}"),
        "tests": str(len(cases)),
        "failures": str(sum(1 for n in cases if n.verdict in FAILURE)),
        "errors": str(sum(1 for n in cases if n.verdict is Verdict.ERROR)),
        "skipped": str(sum(1 for n in cases if n.verdict in SKIPPED)),
        "time": f"{seconds or 0.0:.3f}",
        "timestamp": snapshot.started_at.isoformat(timespec="seconds"),
    }


def _properties(snapshot: Snapshot) -> dict[str, str]:
    """Suite-level facts: source, snapshot id, outcome."""
    props = {"source": clean_url(snapshot.source), "outcome": outcome_label(snapshot)}
    if snapshot.snapshot_id is not None:
        props["snapshot_id"] = str(snapshot.snapshot_id)
    return props


def _unique(name: str, seen: dict[str, int]) -> str:
    """`name`, or `name [n]` for its n-th repeat."""
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name} [{seen[name]}]"


def testcase(node: Node, name: str) -> ET.Element:
    """One `<testcase>` with a failure, error or skipped child as its verdict says."""
    where = "reference" if node.relation is Relation.REFERENCE else f"related.depth{node.depth}"
    case = ET.Element("testcase", classname=where, name=_xml(name))
    case.set("time", f"{(node.elapsed_ms or 0.0) / 1000:.3f}")
    message = _xml(_message(node))
    if node.verdict in FAILURE:
        ET.SubElement(case, "failure", message=message, type=node.verdict.value).text = message
    elif node.verdict is Verdict.ERROR:
        ET.SubElement(case, "error", message=message, type=node.verdict.value).text = message
    elif node.verdict in SKIPPED:
        ET.SubElement(case, "skipped", message=message)
    out = _system_out(node)
    if out:
        ET.SubElement(case, "system-out").text = _xml(out)
    return case


def _message(node: Node) -> str:
    """`dead: 404 Not Found` — the verdict, status and reason on one line."""
    status = "" if node.status_code is None else f" {node.status_code}"
    reason = f": {clean_text(node.reason)}" if node.reason else ""
    return f"{node.verdict.value}{status}{reason}"


def _system_out(node: Node) -> str:
    """Redirects, duplicate note, title and line, one per line."""
    lines = [f"{hop.status_code} {clean_url(hop.url)}" for hop in node.redirects]
    if node.final_url and node.final_url != node.url:
        lines.append(f"final URL: {clean_url(node.final_url)}")
    if Flag.DUPLICATE.value in node.flags and node.duplicate_of:
        lines.append(f"duplicate of {clean_url(node.duplicate_of)} ({node.duplicate_kind})")
    if node.title:
        lines.append(f"title: {clean_text(node.title)}")
    if node.line is not None:
        lines.append(f"found on line {node.line}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (ElementTree would write them and break the file)."""
    return _NOT_XML_RE.sub("", text)
