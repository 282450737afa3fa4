"""Commands for watching articles over time: watch add/list/remove, daemon, history, diff.

Registered by crawler/cli.py; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crawler.cliutil import ROW_ID, Context, freeze_startup_heap, open_store, pass_context

if TYPE_CHECKING:
    from crawler.config import Settings
    from crawler.store.watches import Watch

LOG_FORMATS = ("kv", "json")


@click.group()
def watch() -> None:
    """Articles re-checked on a schedule by `crawler daemon`."""


@watch.command("add")
@click.argument("source")
@click.option("--every", help="Interval: 30s, 15m, 6h, 1d, 1h30m.")
@click.option("--cron", help="Five-field crontab expression in UTC, e.g. '0 7 * * *'.")
@click.option("--depth", type=click.IntRange(0, 10), help="Related-story levels to follow.")
@pass_context
def watch_add(
    ctx: Context, source: str, every: str | None, cron: str | None, depth: int | None
) -> None:
    """Watch SOURCE (a file or an http(s) URL); a watch for the same source is updated.

    A file is stored as its absolute path, so `a/art.txt` and `b/art.txt` are two watches.
    """
    from crawler.store.watches import upsert_watch
    from crawler.timing import parse_cron, parse_every
    from crawler.watching import utcnow, watch_source

    if (every is None) == (cron is None):
        raise click.UsageError("give exactly one of --every and --cron")
    if source == "-":
        raise click.UsageError("a watch cannot read stdin: give a file or a URL")
    try:
        interval = parse_every(every) if every is not None else None
        if cron is not None:
            parse_cron(cron)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--every" if every else "--cron") from exc
    try:
        source = watch_source(source, Path.cwd(), must_exist=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'SOURCE'") from exc
    now = utcnow()
    with open_store(ctx.settings()) as store:
        row, changed = upsert_watch(store, source, now=now, every=interval, cron=cron, depth=depth)
    verb = "added" if row.created_at == now else "updated" if changed else "unchanged"
    click.echo(f"{verb} watch {row.watch_id}: {row.schedule}, next run {_when(row.next_run_at)}")


@watch.command("list")
@pass_context
def watch_list(ctx: Context) -> None:
    """List watches: id, schedule, depth, last run and outcome, next run, source.

    `[[watch]]` entries of the config that the daemon has not stored yet are listed too, with
    no id (listing changes nothing: the daemon's config is the one that counts).
    """
    from crawler.store.watches import list_watches

    settings = ctx.settings()
    with open_store(settings) as store:
        rows = list_watches(store)
    pending = _unsynced_lines(settings, {row.source for row in rows})
    if not rows and not pending:
        click.echo("No watches. Add one with: crawler watch add SOURCE --every 6h", err=True)
        return
    click.echo("id\tschedule\tdepth\tlast run\tlast outcome\tnext run\tsource")
    for row in rows:
        click.echo(_watch_line(row))
    for line in pending:
        click.echo(line)


def _unsynced_lines(settings: Settings, stored: set[str]) -> list[str]:
    """`watch list` lines for the config's `[[watch]]` entries whose source is not stored."""
    from crawler.timing import format_every, parse_every
    from crawler.watching import watch_source

    lines: list[str] = []
    for entry in settings.watch:
        try:
            source = watch_source(entry.source, Path.cwd())
        except ValueError:
            source = entry.source
        if source in stored:
            continue
        every = format_every(parse_every(entry.every)) if entry.every is not None else None
        schedule = f"every {every}" if every is not None else f"cron {entry.cron}"
        depth = "-" if entry.depth is None else str(entry.depth)
        lines.append(f"-\t{schedule}\t{depth}\t-\tin config, not stored yet\t-\t{source}")
    return lines


def _watch_line(row: Watch) -> str:
    """One tab-separated line of `watch list`."""
    depth = "-" if row.depth is None else str(row.depth)
    state = row.last_outcome or "never run"
    if not row.enabled:
        state += " (disabled)"
    return (
        f"{row.watch_id}\t{row.schedule}\t{depth}\t{_when(row.last_run_at)}\t{state}\t"
        f"{_when(row.next_run_at) if row.enabled else '-'}\t{row.source}"
    )


def _when(moment: datetime | None) -> str:
    """A stored time for humans, in UTC."""
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}Z"


@watch.command("remove")
@click.argument("watch_id", type=ROW_ID)
@pass_context
def watch_remove(ctx: Context, watch_id: int) -> None:
    """Stop watching; the watch's snapshots are kept."""
    from crawler.store.watches import remove_watch

    with open_store(ctx.settings()) as store:
        removed = remove_watch(store, watch_id)
    if not removed:
        raise click.ClickException(f"no watch {watch_id}")
    click.echo(f"removed watch {watch_id}")


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="Log lines as key=value pairs or JSON (default: daemon.log_format, kv).",
)
@pass_context
def daemon(ctx: Context, log_format: str | None) -> None:
    """Run every watch on its schedule until SIGTERM/SIGINT; SIGHUP reloads the config."""
    import asyncio

    from crawler.config import config_path, load_settings
    from crawler.schedule import configure_logging, run_daemon

    settings = ctx.settings()
    configure_logging(log_format or settings.daemon.log_format)
    config_file = config_path(ctx.config, os.environ)

    def reload() -> Settings:
        return load_settings(ctx.config)

    freeze_startup_heap()
    asyncio.run(run_daemon(settings, reload=reload, config_file=config_file))
    sys.exit(0)


@click.command()
@click.argument("url")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@pass_context
def history(ctx: Context, url: str, limit: int) -> None:
    """Print one link's verdicts over time, newest first."""
    from crawler.history import one_line
    from crawler.urls import normalize_url

    with open_store(ctx.settings()) as store:
        entries = store.link_history(normalize_url(url), limit=limit)
    if not entries:
        raise click.ClickException(f"no history for {one_line(url)}")
    for entry in entries:
        status = "-" if entry.status_code is None else str(entry.status_code)
        reason = one_line(entry.reason) if entry.reason else ""
        click.echo(
            f"{entry.snapshot_id}\t{entry.started_at:%Y-%m-%d %H:%M:%S}\t{entry.outcome}\t"
            f"{entry.verdict}\t{status}\t{reason}".rstrip()
        )


@click.command()
@click.argument("snap_a", type=ROW_ID)
@click.argument("snap_b", type=ROW_ID)
@pass_context
def diff(ctx: Context, snap_a: int, snap_b: int) -> None:
    """Print what changed from snapshot SNAP_A to snapshot SNAP_B."""
    from crawler.history import diff_snapshots, one_line, render_diff

    with open_store(ctx.settings()) as store:
        before, after = store.load_snapshot(snap_a), store.load_snapshot(snap_b)
    if before.source != after.source:
        click.echo(
            f"note: different sources: {one_line(before.source)} and {one_line(after.source)}",
            err=True,
        )
    click.echo(render_diff(diff_snapshots(before, after)), nl=False)


COMMANDS: list[click.Command] = [watch, daemon, history, diff]
