"""Ctrl-C and SIGTERM on a one-off `crawler crawl`, with the real CLI in a child process.

A crawl cut short keeps every node that finished, says why the others were not checked, is
stored `partial`, exits 130 (SIGINT) or 143 (SIGTERM) with one line on stderr, and the next
run of the same source fetches only what the cut-short run did not finish.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.crawl import CUT_SHORT_REASON
from crawler.model import Flag, Node, Outcome, Verdict
from crawler.store import SnapshotInfo, Store
from tests.fakesite import FakeSite, fake_site_fixture  # noqa: F401
from tests.hostile import cli_env, run_cli
from tests.test_crash import db_path, one_line_error, slow_article

pytestmark = pytest.mark.timeout(180)

FINISHED_BEFORE_SIGNAL = 40  # slow pages asked for before the signal is sent (of 400)


@dataclass
class CutShort:
    """A crawl stopped by a signal: its article, the child's exit, what the store kept."""

    article: Path
    returncode: int
    stderr: str
    info: SnapshotInfo
    nodes: list[Node]


def slow_requests(site: FakeSite) -> list[str]:
    """The slow pages the site was asked for so far, in order (paths with their query)."""
    return [path for _, path, _ in list(site.requests) if path.startswith("/slow")]


def crawl_until_signal(tmp_path: Path, site: FakeSite, sig: signal.Signals) -> CutShort:
    """Run the CLI crawl of the slow article and send it `sig` once some pages were asked for."""
    article = slow_article(tmp_path, site)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "crawl", str(article), "--allow-private"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(slow_requests(site)) < FINISHED_BEFORE_SIGNAL:
            if proc.poll() is not None:
                pytest.fail(f"the crawl ended before it could be stopped: {proc.communicate()[1]}")
            assert time.monotonic() < deadline, "the crawl asked for too few pages in 60 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    with Store.open(f"sqlite:///{db_path(tmp_path)}") as store:
        (info,) = store.list_snapshots()
        nodes = store.saved_nodes(info.snapshot_id)
    return CutShort(article, proc.returncode, stderr, info, nodes)


@pytest.fixture(params=[signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def cut_short(request: pytest.FixtureRequest, tmp_path: Path, fake_site: FakeSite) -> CutShort:
    """A one-off CLI crawl stopped by Ctrl-C or SIGTERM part way."""
    return crawl_until_signal(tmp_path, fake_site, request.param)


def fetched_urls(nodes: list[Node]) -> set[str]:
    """URLs the cut-short run finished (fetched), without the root."""
    return {n.url for n in nodes if n.parent_key is not None and n.reason != CUT_SHORT_REASON}


def test_signal_exits_with_its_code_and_one_line(cut_short: CutShort) -> None:
    message = one_line_error(cut_short.stderr)
    if cut_short.returncode == 130:
        assert message == "crawler: interrupted"
    else:
        assert (cut_short.returncode, message) == (143, "crawler: terminated")


def test_cut_short_crawl_keeps_every_finished_node(cut_short: CutShort) -> None:
    info, nodes = cut_short.info, cut_short.nodes
    assert info.outcome is Outcome.PARTIAL and info.finished_at is not None
    assert len(nodes) == 400 + 1  # every reference is stored, finished or not
    skipped = [n for n in nodes if n.reason == CUT_SHORT_REASON]
    finished = fetched_urls(nodes)
    assert all(n.verdict is Verdict.SKIPPED and n.attempts == 0 for n in skipped)
    assert len(finished) >= FINISHED_BEFORE_SIGNAL - 20 and skipped  # cut part way
    assert len(finished) + len(skipped) == 400
    assert info.summary["nodes"] == 401 and info.summary["verdict_skipped"] == len(skipped)


def test_next_run_fetches_only_what_was_cut_short(
    tmp_path: Path, fake_site: FakeSite, cut_short: CutShort
) -> None:
    finished = fetched_urls(cut_short.nodes)
    fake_site.reset()
    done = run_cli(["crawl", str(cut_short.article), "--allow-private"], tmp_path)
    assert done.returncode == 0, done.stderr
    asked = {fake_site.base_url + path for path in slow_requests(fake_site)}
    assert asked.isdisjoint(finished)  # nothing that finished before the signal is asked again
    assert len(asked) + len(finished) == 400  # and everything else is
    with Store.open(f"sqlite:///{db_path(tmp_path)}") as store:
        latest = store.list_snapshots()[0]
        resumed = [n for n in store.saved_nodes(latest.snapshot_id) if Flag.RESUMED in n.flags]
    assert latest.outcome is Outcome.COMPLETE and {n.url for n in resumed} == finished
    listed = run_cli(["snapshots"], tmp_path).stdout.splitlines()
    assert [line.split("\t")[2:4] for line in listed] == [
        ["complete", "401 nodes"],
        ["partial", "401 nodes"],
    ]


def test_a_page_capped_crawl_is_not_resumed(tmp_path: Path, fake_site: FakeSite) -> None:
    """A snapshot partial only because it hit max_pages is a finished crawl: run again, every
    page is fetched again."""
    article = tmp_path / "capped.txt"
    article.write_text("".join(fake_site.url(f"/news/target.html?n={i}") + "\n" for i in range(6)))
    args = ["crawl", str(article), "--allow-private", "--max-pages", "4"]
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stderr
    fake_site.reset()
    second = run_cli(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert fake_site.hits["/news/target.html"] == 4  # fetched again, none resumed
    listed = [line.split("\t")[2] for line in run_cli(["snapshots"], tmp_path).stdout.splitlines()]
    assert listed == ["partial", "partial"]
