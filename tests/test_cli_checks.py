"""The real CLI refusing bad input before any work, and keeping its progress bar off the report."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakesite import ARTICLE, ARTICLE_REFERENCES, FakeSite
from tests.test_cli import run_cli, write_config

ESCAPE_OR_CHAR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[^\x1b]")


def screen_rows(raw: str) -> list[str]:
    """What a terminal shows after `raw`: carriage return, newline, cursor-up and erase-line
    applied, every other escape sequence (colours, cursor visibility) dropped."""
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in ESCAPE_OR_CHAR.findall(raw):
        if token == "\r":
            col = 0
        elif token == "\n":
            row += 1
            rows += [[] for _ in range(row + 1 - len(rows))]
        elif token.endswith("A") and token.startswith("\x1b["):
            row = max(0, row - int(token[2:-1] or 1))
        elif token == "\x1b[2K":
            rows[row] = []
        elif not token.startswith("\x1b"):
            line = rows[row]
            line += [" "] * (col + 1 - len(line))
            line[col] = token
            col += 1
    return ["".join(r).rstrip() for r in rows]


def test_progress_bar_is_gone_before_the_report_prints(tmp_path: Path, fake_site: FakeSite) -> None:
    """On a terminal (`script` gives the CLI one), the report never shares a line with the bar."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("util-linux `script` is not installed")
    article = tmp_path / "article.txt"
    article.write_text(f"see {fake_site.url('/news/target.html')}\n")
    command = [sys.executable, "-m", "crawler", "--config", str(write_config(tmp_path))]
    command += ["crawl", str(article), "--depth", "0", "--no-store"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    done = subprocess.run(
        [script, "-qec", shlex.join(command), "/dev/null"],
        cwd=tmp_path,
        capture_output=True,  # bytes: universal newlines would turn each "\r" into a new line
        timeout=60,
        env={**env, "COLUMNS": "120", "TERM": "xterm"},
        stdin=subprocess.DEVNULL,
    )
    shown = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, shown
    rows = screen_rows(shown)
    first = next(r for r in rows if str(article) in r)
    assert first.startswith(str(article)), rows
    assert not any("crawling" in r for r in rows), rows  # transient: no bar left behind


def test_oversized_snapshot_id_is_a_bad_argument(tmp_path: Path) -> None:
    done = run_cli("--config", str(write_config(tmp_path)), "show", "9" * 23, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "SNAPSHOT_ID" in done.stderr and "Traceback" not in done.stderr


def test_unsupported_database_url_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[store]\ndatabase_url = "mysql://x"\n')
    done = run_cli("--config", str(cfg), "snapshots", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert f"{cfg}: key 'store.database_url': only sqlite:/// and postgresql://" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_warc_without_stored_bodies_is_refused_before_crawling(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + "[crawl]\nstore_bodies = false\n")
    out = tmp_path / "x.warc"
    url = fake_site.url(ARTICLE)
    done = run_cli(
        "--config", str(cfg), "crawl", url, "--format", "warc", "-o", str(out), cwd=tmp_path
    )
    assert done.returncode == 3, done.stderr
    assert "store_bodies" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "data").exists() and not fake_site.hits


@pytest.mark.parametrize("where", ["missing-dir/x.json", "a-file.txt/x.json"])
def test_unwritable_output_is_refused_before_crawling(
    tmp_path: Path, fake_site: FakeSite, where: str
) -> None:
    (tmp_path / "a-file.txt").write_text("not a directory\n")
    out = tmp_path / where
    url = fake_site.url(ARTICLE)
    cfg = str(write_config(tmp_path))
    done = run_cli("--config", cfg, "crawl", url, "--format", "json", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert str(out) in done.stderr and "--output" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists() and not fake_site.hits  # nothing fetched or stored


@pytest.mark.parametrize(
    ("command", "source", "needle"),
    [
        ("crawl", "no-such-file.txt", "no-such-file.txt: no such file"),
        ("links", "no-such-file.txt", "no-such-file.txt: no such file"),
        ("crawl", "http://", "http://: the URL has no host"),
        ("links", "https://", "https://: the URL has no host"),
        ("crawl", "http://:80/x", "http://:80/x: the URL has no host"),
    ],
)
def test_bad_source_is_a_bad_argument(
    tmp_path: Path, command: str, source: str, needle: str
) -> None:
    done = run_cli("--config", str(write_config(tmp_path)), command, source, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_links_allow_private_reads_a_loopback_article(tmp_path: Path, fake_site: FakeSite) -> None:
    """No config and no environment variable: the flag alone lets `links` fetch 127.0.0.1."""
    done = run_cli("links", "--allow-private", fake_site.url(ARTICLE), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = done.stdout.split()
    assert all(fake_site.url(p) in found for p in ARTICLE_REFERENCES if "#" not in p)
