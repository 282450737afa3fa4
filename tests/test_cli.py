"""The real CLI, run as a subprocess against the fake site: what a user types, what a user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakesite import ARTICLE, FakeSite

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "examples" / "syria-russia.txt"


def write_config(tmp_path: Path) -> Path:
    """A settings file for loopback tests: fast retries, private addresses allowed."""
    cfg = tmp_path / "crawler.toml"
    cfg.write_text(
        "[fetch]\nallow_private_networks = true\nbackoff_base = 0.01\nbackoff_max = 0.05\n"
        "retry_after_cap = 1.5\nurl_timeout = 5.0\n"
        f'[store]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    return cfg


def run_cli(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m crawler ARGS` and capture what it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_crawl_json_validates_and_show_prints_it_again(
    tmp_path: Path, fake_site: FakeSite, snapshot_schema: dict[str, object]
) -> None:
    import jsonschema

    cfg = write_config(tmp_path)
    out = tmp_path / "snap.json"
    url = fake_site.url("/news/plain-refs.txt")
    done = run_cli(
        "--config", str(cfg), "crawl", url, "--format", "json", "-o", str(out), cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr  # dead links found
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(
        snapshot_schema, format_checker=jsonschema.FormatChecker()
    ).validate(data)
    verdicts = {n["url"][len(fake_site.base_url) :]: n["verdict"] for n in data["root"]["children"]}
    assert verdicts["/dead"] == "dead" and verdicts["/flaky"] == "ok"
    assert verdicts["/forbidden"] == "blocked" and verdicts["/soft404"] == "soft404"
    assert data["summary"]["dead"] >= 2 and data["summary"]["duplicates"] >= 1

    again = run_cli(
        "--config", str(cfg), "show", str(data["snapshot_id"]), "--format", "json", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == data

    listing = run_cli("--config", str(cfg), "snapshots", cwd=tmp_path)
    assert listing.stdout.startswith(f"{data['snapshot_id']}\t")


def test_tree_output_and_exit_code_zero_when_nothing_dead(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    cfg = write_config(tmp_path)
    article = tmp_path / "ok.md"
    article.write_text(f"# Fine\n\n[record]({fake_site.url('/news/target.html')})\n")
    done = run_cli("--config", str(cfg), "crawl", str(article), "--depth", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "/news/target.html" in done.stdout and "ok" in done.stdout
    assert "1 references" in done.stdout.splitlines()[-1] or "1 reference" in done.stdout


def test_markdown_from_stdin(tmp_path: Path, fake_site: FakeSite) -> None:
    cfg = write_config(tmp_path)
    text = f"See [gone]({fake_site.url('/gone')}) and <{fake_site.url('/news/target.html')}>.\n"
    done = run_cli(
        "--config",
        str(cfg),
        "crawl",
        "-",
        "--kind",
        "markdown",
        "--format",
        "markdown",
        "--depth",
        "0",
        cwd=tmp_path,
        stdin=text,
    )
    assert done.returncode == 2, done.stderr
    assert "dead" in done.stdout and "/gone" in done.stdout


def test_live_html_article_at_depth_one(tmp_path: Path, fake_site: FakeSite) -> None:
    cfg = write_config(tmp_path)
    done = run_cli(
        "--config",
        str(cfg),
        "crawl",
        fake_site.url(ARTICLE),
        "--format",
        "json",
        "--no-store",
        cwd=tmp_path,
    )
    data = json.loads(done.stdout)
    assert data["root"]["title"] == "Council approves new river bridge"
    related = [c for ref in data["root"]["children"] for c in ref["children"]]
    assert related and all(c["relation"] == "related" for c in related)
    assert not (tmp_path / "data" / "crawler.db").exists()  # --no-store


def test_links_lists_references_without_fetching(tmp_path: Path) -> None:
    done = run_cli("links", str(EXAMPLE), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    urls = done.stdout.split()
    assert len(urls) == 3 and urls[1] == urls[2]
    assert all(u.startswith("https://www.themoscowtimes.com/2025/07/19/") for u in urls)
    verbose = run_cli("links", "-v", str(EXAMPLE), cwd=tmp_path)
    assert "Syria Could Let Russia Keep Air and Naval Bases" in verbose.stdout


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["crawl", "no-such-file.txt"], 3, "no-such-file.txt"),  # a bad argument
        (["crawl", "x.txt", "--depth", "99"], 3, "--depth"),
        (["show", "12345"], 1, "12345"),
        (["frobnicate"], 3, "frobnicate"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    cfg = write_config(tmp_path)
    done = run_cli("--config", str(cfg), *args, cwd=tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[fetch]\nretries = -4\n")
    done = run_cli("--config", str(cfg), "crawl", str(EXAMPLE), cwd=tmp_path)
    assert done.returncode == 3
    assert str(cfg) in done.stderr and "fetch.retries" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("crawl", "links", "show", "snapshots"):
        assert command in done.stdout


def test_startup_heap_is_frozen_once_with_the_fetch_stack_loaded() -> None:
    """The crawl command's start: the fetch stack is imported, then the heap is frozen once."""
    code = (
        "import gc, sys\n"
        "from crawler.cliutil import freeze_startup_heap\n"
        "assert gc.get_freeze_count() == 0 and 'crawler.fetch' not in sys.modules\n"
        "freeze_startup_heap()\n"
        "first = gc.get_freeze_count()\n"
        "garbage = [[i] for i in range(1000)]\n"
        "freeze_startup_heap()\n"
        "loaded = ['crawler.fetch' in sys.modules, 'lxml' in sys.modules]\n"
        "print(first, gc.get_freeze_count(), *loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    first, second, fetch_loaded, lxml_loaded = done.stdout.split()
    assert int(first) > 10_000
    assert second == first  # the second call froze nothing more
    assert (fetch_loaded, lxml_loaded) == ("True", "True")
