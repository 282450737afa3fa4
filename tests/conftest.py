"""Shared test fixtures: paths to the shared corpus and the snapshot schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakesite"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
SCHEMA_PATH = SHARED / "schema" / "snapshot.schema.json"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared real-world corpus; tests using it skip cleanly when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


@pytest.fixture(scope="session")
def snapshot_schema() -> dict[str, object]:
    """The JSON contract of a snapshot (../shared/schema/snapshot.schema.json)."""
    import json

    if not SCHEMA_PATH.is_file():
        pytest.skip("../shared/schema/snapshot.schema.json is not present")
    return dict(json.loads(SCHEMA_PATH.read_text()))


PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this session (SQLAlchemy URL), dropped at the end.

    Skips when the server on 127.0.0.1:5432 is not reachable (`.ci/run` starts it).
    """
    pytest.importorskip("psycopg")
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError:
        admin.dispose()
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"crawler_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def empty_postgres(url: str) -> None:
    """Drop every table (alembic_version too), so a test migrates from nothing."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for one test."""
    empty_postgres(pg_database)
    return pg_database


_LOCAL_NAMES = ("localhost", "127.", "::1", "0.0.0.0")


@pytest.fixture(autouse=True)
def _no_public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never look up a public name: traffic stays on loopback (`.invalid` never leaves)."""
    import ipaddress
    import socket

    real = socket.getaddrinfo

    def is_literal(name: str) -> bool:  # an address literal needs no lookup at all
        try:
            ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
        except ValueError:
            try:
                socket.inet_aton(name)  # the legacy forms too: 0x7f.1, 2130706433
            except OSError:
                return False
        return True

    def guarded(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        local = (
            name.startswith(_LOCAL_NAMES)
            or name.rstrip(".").endswith(".invalid")
            or is_literal(name)
        )
        if name and not local:
            raise AssertionError(f"test tried to resolve a public name: {name!r}")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    """A network test asking for `transport` runs once per transport the crawler has."""
    return str(request.param)
