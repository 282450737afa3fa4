"""Settings: every default is a named constant here; loaded once from TOML, env, then flags.

The CLI calls `load_settings()` once and passes the resulting `Settings` down; library code
takes typed settings objects, never a path or a global.

Environment overrides: `CRAWLER_<SECTION>_<KEY>` (e.g. `CRAWLER_FETCH_CONCURRENCY=32`), plus the
short forms `CRAWLER_DATABASE_URL`, `CRAWLER_DATA_DIR` and `CRAWLER_CONFIG` (the file to read).
A list key takes a JSON array (`["http://a/hook", "http://b/hook"]`) or whitespace-separated
items: whitespace, unlike a comma, never appears inside a URL (Apprise URLs use commas).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crawler import __version__
from crawler.errors import ConfigError

# -- defaults: one documented home, shared by the CLI, the daemon and the docs ------------------
DEFAULT_CONFIG_PATH = Path("config/crawler.toml")
DEFAULT_DATA_DIR = Path(".crawler")
DEFAULT_USER_AGENT = f"crawler/{__version__} (link checker; +https://github.com/crawler/crawler)"
DEFAULT_CONCURRENCY = 64
DEFAULT_PER_HOST_CONCURRENCY = 8
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_URL_TIMEOUT = 30.0  # total time for one URL, retries and redirects included
DEFAULT_RETRIES = 3  # retries after the first attempt
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 8.0
DEFAULT_RETRY_AFTER_CAP = 30.0
DEFAULT_MAX_REDIRECTS = 10
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_DEPTH = 1
DEFAULT_MAX_PAGES = 5000
DEFAULT_MAX_LINKS_PER_PAGE = 1000
DEFAULT_MAX_RELATED_PER_PAGE = 50
DEFAULT_DEAD_AFTER_RUNS = 2
DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_JITTER_SECONDS = 0.0
DEFAULT_HOST_RATE = 5.0  # requests per second per host, shared by all workers (cluster mode)
DEFAULT_HOST_BURST = 1
DEFAULT_DASHBOARD_HOST = "127.0.0.1"
DEFAULT_DASHBOARD_PORT = 8080

ENV_PREFIX = "CRAWLER_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Section):
    """How URLs are fetched: limits, timeouts, retries, politeness."""

    user_agent: str = DEFAULT_USER_AGENT
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=10_000)
    per_host_concurrency: int = Field(DEFAULT_PER_HOST_CONCURRENCY, ge=1, le=1_000)
    connect_timeout: float = Field(DEFAULT_CONNECT_TIMEOUT, gt=0)
    read_timeout: float = Field(DEFAULT_READ_TIMEOUT, gt=0)
    url_timeout: float = Field(DEFAULT_URL_TIMEOUT, gt=0)
    retries: int = Field(DEFAULT_RETRIES, ge=0, le=20)
    backoff_base: float = Field(DEFAULT_BACKOFF_BASE, ge=0)
    backoff_max: float = Field(DEFAULT_BACKOFF_MAX, ge=0)
    retry_after_cap: float = Field(DEFAULT_RETRY_AFTER_CAP, ge=0)
    max_redirects: int = Field(DEFAULT_MAX_REDIRECTS, ge=0, le=100)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    head_first: bool = True
    verify_tls: bool = True
    allow_private_networks: bool = False
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    host_rate: float = Field(DEFAULT_HOST_RATE, gt=0)  # cluster mode: requests/s per host
    host_burst: int = Field(DEFAULT_HOST_BURST, ge=1)


class CrawlSettings(_Section):
    """What a crawl follows and how far."""

    depth: int = Field(DEFAULT_DEPTH, ge=0, le=10)
    max_pages: int = Field(DEFAULT_MAX_PAGES, ge=1)
    max_links_per_page: int = Field(DEFAULT_MAX_LINKS_PER_PAGE, ge=1)
    max_related_per_page: int = Field(DEFAULT_MAX_RELATED_PER_PAGE, ge=0)
    related_same_site: bool = True
    respect_robots: bool = True
    store_bodies: bool = True


class StoreSettings(_Section):
    """Where snapshots live: an embedded SQLite file by default."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database(cls, value: str | None) -> str | None:
        """A SQLite or PostgreSQL URL (every query and migration is tested on those two)."""
        scheme = (value or "").partition("://")[0].partition("+")[0].lower()
        if value and scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return value

    def url(self) -> str:
        """The SQLAlchemy URL: the configured one, else SQLite in the data directory."""
        if self.database_url:
            scheme, sep, rest = self.database_url.partition("://")
            if sep and scheme in ("postgresql", "postgres"):
                return f"postgresql+psycopg://{rest}"  # the driver we ship, not psycopg2
            return self.database_url
        return f"sqlite:///{self.data_dir / 'crawler.db'}"


class HistorySettings(_Section):
    """How verdicts across runs become flags."""

    dead_after_runs: int = Field(DEFAULT_DEAD_AFTER_RUNS, ge=1)


class WatchConfig(_Section):
    """A watch declared in the config file."""

    source: str
    every: str | None = None
    cron: str | None = None
    depth: int | None = Field(None, ge=0, le=10)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        """A file or an http(s) URL (`watching.watch_source`; a file is resolved when synced)."""
        from crawler.watching import watch_source  # only when a watch is declared

        watch_source(value, Path.cwd())
        return value

    @field_validator("every")
    @classmethod
    def _check_every(cls, value: str | None) -> str | None:
        """An interval `timing.parse_every` reads (within its bound)."""
        from crawler.timing import parse_every  # APScheduler only when a watch is declared

        if value is not None:
            parse_every(value)
        return value

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        """A crontab expression that fires."""
        from crawler.timing import parse_cron

        if value is not None:
            parse_cron(value)
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> WatchConfig:
        """Exactly one of `every` and `cron`."""
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' and 'cron'")
        return self


class DaemonSettings(_Section):
    """The scheduler's behaviour."""

    grace_seconds: float = Field(DEFAULT_GRACE_SECONDS, ge=0)
    jitter_seconds: float = Field(DEFAULT_JITTER_SECONDS, ge=0)
    log_format: Literal["kv", "json"] = "kv"


class AlertSettings(_Section):
    """Where newly-dead / recovered alerts go."""

    webhooks: list[str] = Field(default_factory=list)
    apprise: list[str] = Field(default_factory=list)


class DashboardSettings(_Section):
    """`crawler serve`: where it listens and the token that unlocks actions."""

    host: str = DEFAULT_DASHBOARD_HOST
    port: int = Field(DEFAULT_DASHBOARD_PORT, ge=0, le=65535)
    token: str | None = None


class Settings(_Section):
    """All settings, one typed object."""

    fetch: FetchSettings = FetchSettings()
    crawl: CrawlSettings = CrawlSettings()
    store: StoreSettings = StoreSettings()
    history: HistorySettings = HistorySettings()
    daemon: DaemonSettings = DaemonSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()
    watch: list[WatchConfig] = Field(default_factory=list)


_SHORT_ENV = {
    "CRAWLER_DATABASE_URL": ("store", "database_url"),
    "CRAWLER_DATA_DIR": ("store", "data_dir"),
}


def _is_list_key(section: str, key: str) -> bool:
    """Whether `[section] key` holds a list (alerts.webhooks, alerts.apprise)."""
    model = Settings.model_fields[section].annotation
    fields = model.model_fields if isinstance(model, type) and issubclass(model, _Section) else {}
    return key in fields and get_origin(fields[key].annotation) is list


def _env_list(name: str, value: str) -> Any:
    """A list key's value: a JSON array, or whitespace-separated items ("" is the empty list)."""
    if not value.lstrip().startswith("["):
        return value.split()
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"environment (CRAWLER_*): {name}: invalid JSON array: {exc}") from exc


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Collect `CRAWLER_<SECTION>_<KEY>` variables into nested raw values (lists decoded)."""
    sections = {name for name, f in Settings.model_fields.items() if name != "watch"}
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if name in _SHORT_ENV:
            section, key = _SHORT_ENV[name]
            out.setdefault(section, {})[key] = value
            continue
        if not name.startswith(ENV_PREFIX) or name == "CRAWLER_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section in sections and key:
            listed = _is_list_key(section, key)
            out.setdefault(section, {})[key] = _env_list(name, value) if listed else value
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, origin: str, raw: Mapping[str, Any]) -> str:
    """The first validation error as one line: where, which key, what was wrong."""
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    got = first.get("input")
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}'"
    where = f"key '{key}'{_watch_source(raw, first['loc'])}"
    if first["type"] == "value_error":  # our own checks: the message names the value
        return f"{origin}: {where}: {first['ctx']['error']}"
    return f"{origin}: {where}: {first['msg'].lower()} (got {got!r})"


def _watch_source(raw: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    """` (SOURCE)` when the error is in a `[[watch]]` entry that has a source, else ""."""
    if len(loc) < 2 or loc[0] != "watch" or not isinstance(loc[1], int):
        return ""
    entries = raw.get("watch")
    entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
    source = entry.get("source") if isinstance(entry, dict) else None
    return f" ({source})" if isinstance(source, str) else ""


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a ConfigError that names the file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc


def config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """Which config file to read: the flag, CRAWLER_CONFIG, else config/crawler.toml if present."""
    if explicit is not None:
        return explicit
    if environ.get("CRAWLER_CONFIG"):
        return Path(environ["CRAWLER_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Load settings once: TOML file, then environment, then explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    file = config_path(path, env)
    raw: dict[str, Any] = read_toml(file) if file is not None else {}
    origin = str(file) if file is not None else "defaults"
    try:
        Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, raw)) from exc
    raw = _merge(raw, _env_overrides(env))
    try:
        Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "environment (CRAWLER_*)", raw)) from exc
    raw = _merge(raw, overrides or {})
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "command-line option", raw)) from exc
