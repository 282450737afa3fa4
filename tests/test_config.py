"""Settings: defaults, the shipped TOML, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import Settings, load_settings, read_toml
from crawler.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_matches_code_defaults() -> None:
    """config/crawler.toml documents the defaults: loading it must change nothing."""
    shipped = load_settings(REPO / "config" / "crawler.toml", environ={})
    assert shipped == Settings()


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.fetch.concurrency == Settings().fetch.concurrency
    assert settings.store.url().startswith("sqlite:///")


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[fetch]\nconcurrency = 10\n")
    env = {"CRAWLER_FETCH_CONCURRENCY": "20", "CRAWLER_DATABASE_URL": "sqlite:///x.db"}
    settings = load_settings(cfg, environ=env)
    assert settings.fetch.concurrency == 20
    assert settings.store.url() == "sqlite:///x.db"


def test_flags_override_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CRAWLER_CRAWL_DEPTH": "3"}
    assert load_settings(environ=env).crawl.depth == 3
    settings = load_settings(environ=env, overrides={"crawl": {"depth": 0}})
    assert settings.crawl.depth == 0


def test_bad_value_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[fetch]\nconcurrency = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    message = str(info.value)
    assert str(cfg) in message and "fetch.concurrency" in message and "lots" in message


@pytest.mark.parametrize("url", ["mysql://x", "oracle+cx_oracle://u:pw@h/db", "x"])
def test_unsupported_database_names_file_and_key(tmp_path: Path, url: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[store]\ndatabase_url = "{url}"\n')
    with pytest.raises(ConfigError, match=r"store\.database_url.*only sqlite") as info:
        load_settings(cfg, environ={})
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize("url", ["sqlite:///a.db", "postgresql://u@h/db", "postgres://h/db"])
def test_supported_databases_load(tmp_path: Path, url: str) -> None:
    cfg = tmp_path / "good.toml"
    cfg.write_text(f'[store]\ndatabase_url = "{url}"\n')
    assert load_settings(cfg, environ={}).store.database_url == url


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[crawl]\ndepht = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'crawl\.depht'"):
        load_settings(cfg, environ={})


def test_broken_toml_names_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[fetch\nconcurrency = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        read_toml(cfg)
    assert str(cfg) in str(info.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_bad_environment_value_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"environment.*fetch\.retries"):
        load_settings(None, environ={"CRAWLER_FETCH_RETRIES": "-1", "CRAWLER_CONFIG": ""})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["http://127.0.0.1:8766/hook"]', ["http://127.0.0.1:8766/hook"]),
        ("http://127.0.0.1:8766/hook", ["http://127.0.0.1:8766/hook"]),
        ("http://a.test/h?x=1,2  http://b.test/h", ["http://a.test/h?x=1,2", "http://b.test/h"]),
        ("", []),
    ],
)
def test_list_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CRAWLER_ALERTS_WEBHOOKS": value, "CRAWLER_ALERTS_APPRISE": value, "CRAWLER_CONFIG": ""}
    alerts = load_settings(None, environ=env).alerts
    assert alerts.webhooks == alerts.apprise == expected


def test_a_broken_json_list_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CRAWLER_ALERTS_WEBHOOKS": '["http://a.test/h"', "CRAWLER_CONFIG": ""}
    with pytest.raises(ConfigError, match=r"CRAWLER_ALERTS_WEBHOOKS: invalid JSON array"):
        load_settings(None, environ=env)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('cron = "0 0 30 2 *"', r"key 'watch\.0\.cron' \(x\.txt\): invalid cron .*never fires"),
        ('every = "99999999999999999999d"', r"key 'watch\.0\.every' \(x\.txt\): .*at most 366d"),
        ('every = "3000000d"', r"'3000000d': must be at most 366d"),
        ("", r"key 'watch\.0' \(x\.txt\): give exactly one of 'every' and 'cron'"),
    ],
)
def test_bad_watch_entries_name_the_file_the_entry_and_the_value(
    tmp_path: Path, entry: str, message: str
) -> None:
    cfg = tmp_path / "watches.toml"
    cfg.write_text(f'[[watch]]\nsource = "x.txt"\n{entry}\n')
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(cfg, environ={})
    assert str(info.value).startswith(f"{cfg}: ")


@pytest.mark.parametrize("source", ["ftp://x/y", "-", "javascript:alert(1)", " "])
def test_a_watch_source_no_watch_can_read_is_a_config_error(tmp_path: Path, source: str) -> None:
    cfg = tmp_path / "watches.toml"
    cfg.write_text(f'[[watch]]\nsource = "{source}"\nevery = "1h"\n')
    with pytest.raises(
        ConfigError, match=r"key 'watch\.0\.source'.*give a file or an http"
    ) as info:
        load_settings(cfg, environ={})
    assert str(info.value).startswith(f"{cfg}: ")
