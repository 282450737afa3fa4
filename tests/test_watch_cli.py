"""The watch commands of the CLI: watch add/list/remove, history and diff, run through `main`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.config import load_settings
from crawler.crawl import run_crawl
from crawler.store import Store
from tests.fakesite import FakeSite

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(name="config")
def config_fixture(tmp_path: Path) -> Path:
    """A config file whose store lives in tmp_path; fetches may reach loopback."""
    path = tmp_path / "crawler.toml"
    path.write_text(
        "[fetch]\nallow_private_networks = true\nbackoff_base = 0.01\nbackoff_max = 0.05\n"
        f"[store]\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n"
    )
    return path


def crawler(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `crawler --config CONFIG ARGS...`; its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_watch_add_list_remove(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "story.md").write_text("# Story\n")
    code, out, _ = crawler(config, capsys, "watch", "add", "story.md", "--every", "6h")
    assert code == 0 and out.startswith("added watch 1: every 6h, next run ")
    code, out, _ = crawler(config, capsys, "watch", "add", "./story.md", "--every", "360m")
    assert code == 0 and out.startswith("unchanged watch 1: every 6h")
    code, out, _ = crawler(config, capsys, "watch", "add", "story.md", "--cron", "0 7 * * *")
    assert code == 0 and out.startswith("updated watch 1: cron 0 7 * * *, next run ")
    assert out.rstrip().endswith(" 07:00:00Z")
    code, out, _ = crawler(
        config, capsys, "watch", "add", "https://news.example/a", "--every", "1d", "--depth", "2"
    )
    assert code == 0 and out.startswith("added watch 2: every 1d")

    code, out, _ = crawler(config, capsys, "watch", "list")
    header, first, second = out.splitlines()
    assert header.split("\t")[:3] == ["id", "schedule", "depth"]
    assert first.split("\t")[:5] == ["1", "cron 0 7 * * *", "-", "-", "never run"]
    assert first.endswith(f"\t{tmp_path / 'story.md'}")  # stored as an absolute path
    assert second.split("\t")[:3] == ["2", "every 1d", "2"]
    assert second.endswith("\thttps://news.example/a")

    assert crawler(config, capsys, "watch", "remove", "1")[:2] == (0, "removed watch 1\n")
    code, _, err = crawler(config, capsys, "watch", "remove", "1")
    assert code == 1 and "no watch 1" in err
    assert len(crawler(config, capsys, "watch", "list")[1].splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "soon"], "invalid interval 'soon'"),
        (["--every", "3000000d"], "invalid interval '3000000d': must be at most 366d"),
        (["--every", "99999999999999999999d"], "must be at most 366d"),
        (["--cron", "0 0 30 2 *"], "invalid cron expression '0 0 30 2 *': it never fires"),
        (["--cron", "at seven"], "invalid cron expression"),
        (["--every", "1h", "--cron", "0 7 * * *"], "exactly one of --every and --cron"),
        ([], "exactly one of --every and --cron"),
    ],
)
def test_watch_add_rejects_bad_schedules(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = crawler(config, capsys, "watch", "add", "story.md", *args)
    assert code == 3 and message in err and "Traceback" not in err
    code, out, err = crawler(config, capsys, "watch", "list")
    assert code == 0 and out == "" and "No watches" in err


def test_watch_add_stores_files_by_absolute_path(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, every in (("a", "1h"), ("b", "2h")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "art.txt").write_text("http://news.example/x\n")
        monkeypatch.chdir(tmp_path / name)
        code, out, _ = crawler(config, capsys, "watch", "add", "art.txt", "--every", every)
        assert code == 0 and out.startswith("added watch "), out  # two files, two watches
    sources = [
        line.split("\t")[-1] for line in crawler(config, capsys, "watch", "list")[1].splitlines()
    ]
    assert sources[1:] == [str(tmp_path / "a" / "art.txt"), str(tmp_path / "b" / "art.txt")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.txt", "missing.txt: no such file"),
        ("ftp://x/y", "unsupported source 'ftp://x/y'"),
        ("javascript:alert(1)//http://x/", "unsupported source 'javascript:alert(1)"),
        ("file:///etc/passwd", "unsupported source 'file:///etc/passwd'"),
        ("http:///no-host", "unsupported source"),
        (".", ".: a directory, not a file"),
    ],
)
def test_watch_add_refuses_sources_that_cannot_work(
    config: Path, capsys: pytest.CaptureFixture[str], source: str, message: str
) -> None:
    code, _, err = crawler(config, capsys, "watch", "add", source, "--every", "1h")
    assert code == 3 and message in err and "SOURCE" in err
    assert crawler(config, capsys, "watch", "list")[1] == ""


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "remove", "9" * 25],
        ["watch", "remove", "0"],
        ["diff", "1", str(2**63)],
        # PostgreSQL's INTEGER ends at 2**31 - 1: beyond it an id is refused, not a database error.
        ["show", str(2**31)],
        ["diff", str(2**31), "1"],
        ["watch", "remove", str(2**31)],
    ],
)
def test_ids_beyond_the_database_range_are_bad_arguments(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, _, err = crawler(config, capsys, *args)
    assert code == 3 and "is not in the range" in err and "Traceback" not in err


def test_watch_list_shows_config_watches_not_stored_yet(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with config.open("a") as out:
        out.write('[[watch]]\nsource = "art.txt"\nevery = "90m"\ndepth = 0\n')
    code, out, _ = crawler(config, capsys, "watch", "list")
    assert code == 0
    assert out.splitlines()[1].split("\t") == [
        "-", "every 1h30m", "0", "-", "in config, not stored yet", "-", str(tmp_path / "art.txt"),
    ]  # fmt: skip


async def test_history_and_diff(
    config: Path, tmp_path: Path, fake_site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(config, overrides={"crawl": {"depth": 0}})
    article = tmp_path / "story.md"
    target = fake_site.url("/news/target.html")
    article.write_text(f"# Story\n\n- [record]({target})\n- [gone]({fake_site.url('/gone')})\n")
    with Store.open(settings.store.url()) as store:
        before = await run_crawl(str(article), settings, store=store)
        fake_site.set_status("/news/target.html", 404)
        article.write_text(f"# Story\n\n- [record]({target})\n- [new]({fake_site.url('/dead')})\n")
        after = await run_crawl(str(article), settings, store=store)

    code, out, _ = crawler(config, capsys, "history", target + "?utm_source=feed")
    lines = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [line[0] for line in lines] == [
        str(after.snapshot_id),
        str(before.snapshot_id),
    ]
    assert [line[2:5] for line in lines] == [["complete", "dead", "404"], ["complete", "ok", "200"]]

    code, out, _ = crawler(config, capsys, "diff", str(before.snapshot_id), str(after.snapshot_id))
    assert code == 0
    first, second = (
        f"{s.snapshot_id} ({s.started_at.isoformat(timespec='seconds')})" for s in (before, after)
    )
    assert out.splitlines()[0] == f"{article}: snapshot {first} -> {second}"
    assert f"Added (1):\n  + {fake_site.url('/dead')}\n" in out
    assert f"Removed (1):\n  - {fake_site.url('/gone')}\n" in out
    assert f"Verdict changes (1):\n  ~ ok -> dead: {target}\n" in out

    code, _, err = crawler(config, capsys, "history", fake_site.url("/never-seen"))
    assert code == 1 and err.startswith("crawler: error: no history for")
    code, _, err = crawler(config, capsys, "diff", str(before.snapshot_id), "999")
    assert code == 1 and "no snapshot 999" in err


def test_a_url_watch_is_one_whatever_its_scheme_case_and_a_disabled_one_has_no_next_run(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from crawler.cli_watch import _watch_line
    from crawler.store.watches import list_watches

    for source in ("HTTP://news.example/a", "http://news.example/a"):
        assert crawler(config, capsys, "watch", "add", source, "--every", "1h")[0] == 0
    settings = load_settings(config, environ={})
    with Store.open(settings.store.url()) as store:
        [watch] = list_watches(store)
    assert watch.source == "http://news.example/a"
    assert _watch_line(watch).split("\t")[5] != "-"
    assert _watch_line(replace(watch, enabled=False)).split("\t")[4:6] == [
        "never run (disabled)",
        "-",
    ]
