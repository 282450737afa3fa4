"""Engines, connection settings, schema upgrades and the one place database errors are translated.

SQLite gets WAL, synchronous=NORMAL, foreign keys and a busy timeout on every connection, and
real transactions: pysqlite's own implicit BEGIN is switched off and SQLAlchemy's begin emits
`BEGIN` (or `BEGIN IMMEDIATE` for writers, so two writers queue on the busy timeout instead of
failing on a lock upgrade). See SQLAlchemy's "Serializable isolation / Savepoints /
Transactional DDL" notes for pysqlite.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from crawler.errors import ConfigError, StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 5.0  # override per URL: sqlite:///path?timeout=0.5
POSTGRES_LOCK_TIMEOUT_MS = 5000  # override per URL: ?options=-c%20lock_timeout%3D500
WRITE = {"crawler_write": True}  # execution option: this transaction will write
# Alembic's `context` is module-global, so one upgrade at a time per process; across processes,
# PostgreSQL upgrades queue on an advisory lock (any constant id, this one spells "crawl").
_UPGRADE_LOCK = threading.Lock()
_UPGRADE_LOCK_ID = 0x637261776C
SUPPORTED_BACKENDS = ("sqlite", "postgresql")  # every query and migration is tested on both

# (substring of the driver's message or SQLSTATE, one-line meaning)
_KNOWN_ERRORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("database is locked", "database table is locked", "55P03", "lock timeout"),
        "database is locked by another process",
    ),
    (("database or disk is full", "53100", "No space left on device"), "disk full"),
    (
        ("file is not a database", "database disk image is malformed", "XX001", "XX002"),
        "corrupt database",
    ),
    (
        (
            "unable to open database file",
            "3D000",
            "connection refused",
            "could not connect",
            "connection failed",
            "28000",
            "28P01",
        ),
        "cannot open database",
    ),
)


def describe_url(url: URL) -> str:
    """Where the database is, for messages: the SQLite path, else the URL without password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def describe_url_text(url_text: str) -> str:
    """Like `describe_url` for a URL that may not even parse (never echoes a password)."""
    try:
        return describe_url(make_url(url_text))
    except ArgumentError:
        return "a malformed database URL"


def translate_error(exc: BaseException, where: str) -> StoreError:
    """Map a SQLAlchemy/driver/OS error to a one-line StoreError (raise it `from exc`)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    text = f"{code} {orig}".strip()
    for needles, meaning in _KNOWN_ERRORS:
        if any(n.lower() in text.lower() for n in needles):
            if meaning == "cannot open database":
                return StoreError(f"cannot open database at {where}")
            return StoreError(f"{meaning}: {where}")
    if isinstance(exc, OSError):
        return StoreError(f"cannot open database at {where}: {exc.strerror or exc}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreError(f"lost the connection to the database at {where}")
    first_line = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return StoreError(f"database error at {where}: {first_line}")


def make_engine(url_text: str) -> Engine:
    """An engine for `url_text`, with SQLite's parent directory created and pragmas set."""
    url = make_url(url_text)
    check_backend(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and "options" not in url.query:
        connect_args["options"] = f"-c lock_timeout={POSTGRES_LOCK_TIMEOUT_MS}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def check_backend(url: URL) -> None:
    """ConfigError, before any driver is imported, for a database other than SQLite/PostgreSQL."""
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"store.database_url: unsupported database {describe_url(url)}: "
            "only sqlite and postgresql URLs are supported"
        )


def _sqlite_engine(url: URL) -> Engine:
    """SQLite with WAL, real transactions and a busy timeout; creates the file's directory."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise translate_error(exc, database) from exc
    connect_args: dict[str, Any] = {}
    if "timeout" not in url.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S
    engine = create_engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection pragmas; also stop pysqlite from issuing BEGIN on its own."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


# The newest migration in migrations/versions (tests/test_store.py checks it against Alembic).
HEAD_REVISION = "0003"


def _on_sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front; readers start a deferred (snapshot) transaction."""
    writes = conn.get_execution_options().get("crawler_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def alembic_config() -> Config:
    """An Alembic Config built in code, pointing at this package's migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when it has no schema yet), without Alembic."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if value is None else str(value)


def upgrade_schema(engine: Engine, revision: str = "head", *, fresh_shortcut: bool = True) -> None:
    """Apply pending migrations in one transaction; a no-op when already at `revision`.

    Alembic (a large import) is loaded only when there are migrations to run: a database at
    HEAD_REVISION is left alone, and an empty one gets the declared tables and the head stamp
    directly (Alembic's own advice for new databases: create_all, then stamp).
    """
    if revision == "head" and schema_revision(engine) == HEAD_REVISION:
        return
    with _UPGRADE_LOCK, engine.connect() as conn:
        conn.execution_options(**WRITE)
        with conn.begin():
            if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serializes
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK_ID})")
            if fresh_shortcut and revision == "head" and _is_empty(conn):
                _create_and_stamp(conn)
                return
            _run_alembic(conn, engine, revision)


def _is_empty(conn: Connection) -> bool:
    """No schema of ours and no Alembic stamp yet."""
    inspector = inspect(conn)
    return not inspector.has_table("alembic_version") and not inspector.has_table("snapshots")


def _create_and_stamp(conn: Connection) -> None:
    """Build the declared tables and record the head revision, as the migrations would."""
    from crawler.store.tables import metadata

    metadata.create_all(conn)
    conn.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    conn.exec_driver_sql(f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD_REVISION}')")


def _run_alembic(conn: Connection, engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        where = describe_url(engine.url)
        raise StoreError(f"cannot upgrade the database schema at {where}: {exc}") from exc
