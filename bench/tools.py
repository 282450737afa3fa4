"""The clients the bench runs: the crawler, the raw baselines and the peers, as command lines.

A `Tool` turns a run context into an argv and the run's output into `Findings` (the URLs it
called dead, the soft 404s it caught, and what it stored).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peers
from bench.fakeweb import FakeWeb
from bench.measure import directory_size
from bench.workload import render_flat_article, render_html_article

ROOT = Path(__file__).resolve().parent.parent
CRAWLER = ROOT / ".venv" / "bin" / "crawler"
# Above the deep workload's pages at any scale run here (~5,000 per scale unit): the cap never
# decides.
CRAWLER_MAX_PAGES = 100_000


@dataclass(slots=True)
class RunContext:
    """Where one run of one tool happens and what it checks."""

    fakeweb: FakeWeb
    run_dir: Path
    workload: str  # flat, deep or recheck
    concurrency: int
    data_dir: Path | None = None  # the crawler's store; kept between the two recheck crawls

    @property
    def article_url(self) -> str:
        """The article as an HTML page of links, served by the fake web (for the peers)."""
        return self.fakeweb.base + "/__article.html"


@dataclass(slots=True)
class Findings:
    """What a run reported."""

    dead: set[str]
    soft404: set[str] | None = None  # None: the tool has no notion of a soft 404
    stored_bytes: int | None = None
    bodies: int | None = None
    body_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tool:
    """One client: how to start it and how to read what it said."""

    name: str
    argv: Callable[[RunContext], list[str]]
    parse: Callable[[RunContext, str], Findings]
    workloads: tuple[str, ...] = ("flat",)
    ok_codes: tuple[int, ...] = (0,)  # exit codes of a run that worked (dead links found or not)


# -- the crawler ----------------------------------------------------------------------------------


def write_crawler_config(ctx: RunContext) -> Path:
    """A TOML settings file: defaults, except the store, concurrency, depth and page cap."""
    assert ctx.data_dir is not None
    depth = 2 if ctx.workload == "deep" else 0
    path = ctx.run_dir / "crawler.toml"
    path.write_text(
        f'[store]\ndata_dir = "{ctx.data_dir}"\n\n'
        f"[fetch]\nconcurrency = {ctx.concurrency}\nallow_private_networks = true\n\n"
        f"[crawl]\ndepth = {depth}\nmax_pages = {CRAWLER_MAX_PAGES}\n"
    )
    return path


def crawler_argv(ctx: RunContext) -> list[str]:
    """`crawler crawl <article> --format json` with the bench's settings file."""
    workload, port = ctx.fakeweb.workload, ctx.fakeweb.port
    if ctx.workload == "deep":
        article = ctx.run_dir / "article.html"
        article.write_text(render_html_article(workload, port))
    else:
        article = ctx.run_dir / "article.txt"
        article.write_text(render_flat_article(workload, port))
    config = write_crawler_config(ctx)
    out = ctx.run_dir / "out.json"
    return [
        str(CRAWLER), "--config", str(config), "crawl", str(article), "--format", "json",
        "-o", str(out), "--allow-private", "--no-progress",
    ]  # fmt: skip


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.get("children", ()))


def body_counts(data_dir: Path) -> tuple[int | None, int | None]:
    """How many bodies the crawler's SQLite store holds, and their stored (compressed) bytes."""
    db = data_dir / "crawler.db"
    if not db.exists():
        return None, None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            count, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(data)), 0) FROM bodies"
            ).fetchone()
    except sqlite3.Error:
        return None, None
    return int(count), int(size)


def parse_crawler(ctx: RunContext, stdout: str) -> Findings:
    """Dead and soft-404 nodes from the snapshot JSON, and what the store holds."""
    out = ctx.run_dir / "out.json"
    if not out.exists():
        return Findings(set(), set(), notes=["no JSON output"])
    data = json.loads(out.read_text())
    nodes = [n for n in _walk(data["root"]) if n.get("relation") != "root"]
    assert ctx.data_dir is not None
    bodies, body_bytes = body_counts(ctx.data_dir)
    notes = [f"outcome {data.get('outcome')}, {len(nodes)} nodes"]
    errors = sum(1 for n in nodes if n.get("verdict") == "error")
    if errors:  # e.g. timeouts: an `error` node is neither dead nor ok
        notes.append(f"{errors} error verdicts")
    return Findings(
        dead={n["url"] for n in nodes if n.get("verdict") == "dead"},
        soft404={n["url"] for n in nodes if n.get("verdict") == "soft404"},
        stored_bytes=directory_size(ctx.data_dir),
        bodies=bodies,
        body_bytes=body_bytes,
        notes=notes,
    )


# -- the raw baselines ----------------------------------------------------------------------------


def baseline_argv(client: str) -> Callable[[RunContext], list[str]]:
    """The GET loop of one client over the article's references."""

    def argv(ctx: RunContext) -> list[str]:
        urls = ctx.run_dir / "urls.txt"
        urls.write_text(
            "\n".join(ctx.fakeweb.url(p) for p in ctx.fakeweb.workload.references) + "\n"
        )
        return [
            sys.executable, "-m", "bench.baselines", "--client", client, "--urls", str(urls),
            "--concurrency", str(ctx.concurrency), "-o", str(ctx.run_dir / "out.json"),
        ]  # fmt: skip

    return argv


def parse_baseline(ctx: RunContext, stdout: str) -> Findings:
    """The URLs the loop called dead (status >= 400 or an exception)."""
    out = ctx.run_dir / "out.json"
    if not out.exists():
        return Findings(set(), notes=["no output"])
    return Findings(set(json.loads(out.read_text())["dead"]))


# -- the peers ------------------------------------------------------------------------------------


def _linkchecker(throttle: bool) -> Callable[[RunContext], list[str]]:
    def argv(ctx: RunContext) -> list[str]:
        config = peers.write_linkchecker_config(ctx.run_dir / "linkcheckerrc", throttle)
        # LinkChecker drops root privileges to `nobody`; the config must stay readable.
        ctx.run_dir.chmod(0o755)
        config.chmod(0o644)
        return peers.linkchecker_argv(ctx.article_url, ctx.concurrency, config)

    return argv


def _parse_peer(parse: Callable[[str], set[str]]) -> Callable[[RunContext, str], Findings]:
    def parse_output(ctx: RunContext, stdout: str) -> Findings:
        try:
            return Findings(parse(stdout))
        except (ValueError, KeyError) as exc:
            return Findings(set(), notes=[f"unreadable output: {exc}"])

    return parse_output


def all_tools() -> list[Tool]:
    """Every client the bench knows, in table order."""
    return [
        Tool("crawler", crawler_argv, parse_crawler, ("flat", "deep", "recheck"), (0, 2)),
        Tool("aiohttp", baseline_argv("aiohttp"), parse_baseline),
        Tool("aiohttp-retry", baseline_argv("aiohttp-retry"), parse_baseline),
        Tool("httpx-aiohttp", baseline_argv("httpx-aiohttp"), parse_baseline),
        Tool("httpx", baseline_argv("httpx"), parse_baseline),
        Tool(
            "linkinator",
            lambda ctx: peers.linkinator_argv(ctx.article_url, ctx.concurrency),
            _parse_peer(peers.parse_linkinator),
            ok_codes=(0, 1),
        ),
        Tool(
            "linkchecker",
            _linkchecker(throttle=False),
            _parse_peer(peers.parse_linkchecker),
            ok_codes=(0, 1),
        ),
        Tool(
            "linkchecker-default",
            _linkchecker(throttle=True),
            _parse_peer(peers.parse_linkchecker),
            ok_codes=(0, 1),
        ),
    ]


def unavailable(tool: Tool) -> str | None:
    """Why a tool cannot run here (installing peers when missing), or None."""
    if tool.name == "crawler":
        return None if CRAWLER.exists() else f"{CRAWLER} not found"
    if tool.name == "linkinator":
        return peers.ensure_linkinator()
    if tool.name.startswith("linkchecker"):
        return peers.ensure_linkchecker()
    return None
