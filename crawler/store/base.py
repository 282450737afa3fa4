"""What every part of the `Store` shares: its engine, its write transactions, its error guard.

`Store` (repository.py) is put together from parts that each keep one kind of row:
`BodyStore` (bodies.py) the compressed bodies, `FetchHistory` (fetches.py) what earlier
fetches of a URL learned; snapshots and nodes are in repository.py itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from crawler.errors import StoreError
from crawler.store.engine import WRITE, describe_url, translate_error

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StoreBase")


class StoreBase:
    """One engine and a readable name for it (no secrets) for error messages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.location = describe_url(engine.url)

    def _write(self) -> Connection:
        """A write transaction (SQLite takes its write lock at BEGIN)."""
        return self.engine.connect().execution_options(**WRITE)

    def _insert(self, table: Any) -> Any:
        """INSERT with ON CONFLICT support for this engine's dialect (SQLite and PostgreSQL)."""
        name = self.engine.dialect.name
        if name == "postgresql":
            return postgresql.insert(table)
        if name == "sqlite":
            return sqlite.insert(table)
        raise StoreError(f"unsupported database {name!r}: use SQLite or PostgreSQL")


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Let no SQLAlchemy error out of a Store method except as a StoreError."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise translate_error(exc, self.location) from exc

    return wrapper
