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
