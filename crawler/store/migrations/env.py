"""Alembic environment: runs migrations on the connection `crawler.store` hands in.

At run time `crawler.store.engine.upgrade_schema` builds the Alembic `Config` in code and
passes an open connection as `config.attributes["connection"]`; no alembic.ini is needed.
A developer may still run the alembic CLI with `sqlalchemy.url` set in an ini file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from crawler.store.tables import metadata


def run_on(connection: Connection) -> None:
    """Configure Alembic for this connection and run the pending migrations in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the SQL for a URL without connecting (`alembic upgrade --sql`)."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Use the connection handed in, else connect to `sqlalchemy.url`."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
