"""Commands for running across machines: `db upgrade`, `worker`, `dispatcher`.

Registered by crawler/cli.py. Only `worker`, `dispatcher` and `db upgrade` on PostgreSQL import
`crawler.cluster` (and with it Procrastinate and psycopg); SQLite never needs them.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from crawler.cliutil import Context, pass_context


def _setup_logging() -> None:
    """One key=value line per event on stderr."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("procrastinate").setLevel(logging.WARNING)


def _is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


@click.group()
def db() -> None:
    """The database the store (and, on PostgreSQL, the job queue) lives in."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the schema (SQLite or PostgreSQL); on PostgreSQL also the job queue."""
    url = ctx.settings().store.url()
    if not _is_postgres(url):
        from crawler.store import Store

        Store.open(url).close()
        click.echo(f"schema up to date: {url}")
        return
    from crawler.cluster import build_app, ensure_queue_schema, sqlalchemy_url
    from crawler.store import Store

    Store.open(sqlalchemy_url(url)).close()

    async def queue_schema() -> bool:
        app = build_app(url)
        async with app.open_async():
            return await ensure_queue_schema(app)

    installed = asyncio.run(queue_schema())
    click.echo("schema up to date; job queue " + ("installed" if installed else "present"))


@click.command()
@click.option(
    "--concurrency", type=click.IntRange(1, 10_000), default=8, show_default=True,
    help="Watch runs in progress at once in this process.",
)  # fmt: skip
@click.option(
    "--heartbeat", type=click.FloatRange(0.1), default=None, help="Seconds between heartbeats."
)
@click.option(
    "--host-rate",
    type=click.FloatRange(0.01),
    default=None,
    help="Requests/s per host, cluster-wide.",
)
@pass_context
def worker(
    ctx: Context, concurrency: int, heartbeat: float | None, host_rate: float | None
) -> None:
    """Run queued watch runs until SIGTERM/SIGINT; start one per machine, or several."""
    from crawler.cluster import DEFAULT_HEARTBEAT_SECONDS, cluster_url, run_worker

    settings = ctx.settings()
    url = cluster_url(settings)
    _setup_logging()
    asyncio.run(
        run_worker(
            settings,
            url,
            concurrency=concurrency,
            heartbeat=heartbeat or DEFAULT_HEARTBEAT_SECONDS,
            rate=host_rate,
        )
    )


@click.command()
@click.option(
    "--interval", type=click.FloatRange(0.05), default=None, help="Seconds between ticks."
)
@click.option(
    "--stalled-after", type=click.FloatRange(0.5), default=None,
    help="Seconds without a heartbeat after which a worker's jobs are queued again.",
)  # fmt: skip
@click.option("--once", is_flag=True, help="One tick, then exit.")
@pass_context
def dispatcher(
    ctx: Context, interval: float | None, stalled_after: float | None, once: bool
) -> None:
    """Queue due watches for the workers until SIGTERM/SIGINT (two at once are harmless)."""
    from crawler.cluster import (
        DEFAULT_DISPATCH_INTERVAL,
        DEFAULT_STALLED_AFTER,
        build_app,
        cluster_url,
        run_dispatcher,
        sqlalchemy_url,
    )
    from crawler.store import Store

    url = cluster_url(ctx.settings())
    _setup_logging()

    async def main() -> None:
        app = build_app(url)
        stop = asyncio.Event()
        _stop_on_signals(stop)
        with Store.open(sqlalchemy_url(url)) as store:
            async with app.open_async():
                await run_dispatcher(
                    app,
                    store,
                    stop,
                    interval=interval or DEFAULT_DISPATCH_INTERVAL,
                    stalled_after=stalled_after or DEFAULT_STALLED_AFTER,
                    once=once,
                )

    asyncio.run(main())


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set the `stop` event of the running loop."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


COMMANDS: list[click.Command] = [db, worker, dispatcher]
