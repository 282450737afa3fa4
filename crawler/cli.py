"""The command line: parse, load settings once, call the library, render, exit with a code.

Exit codes (as lychee): 0 nothing dead, 1 runtime error, 2 dead links found,
3 bad config or arguments.
Heavy modules are imported inside the commands so `crawler --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crawler.cliutil import (
    ROW_ID,
    Context,
    check_output,
    freeze_startup_heap,
    open_store,
    pass_context,
    render_snapshot,
    run_async,
)

if TYPE_CHECKING:
    from crawler.config import Settings
    from crawler.model import Snapshot, SourceKind
    from crawler.sources import Article
    from crawler.store import Store

EXIT_OK, EXIT_ERROR, EXIT_DEAD, EXIT_CONFIG = 0, 1, 2, 3
OUTPUT_FORMATS = ("tree", "json", "markdown", "html", "csv", "junit", "warc")
KINDS = ("text", "html", "markdown")
OUTPUT_HINT = "'-o' / '--output'"

allow_private_option = click.option(
    "--allow-private", is_flag=True, default=None, help="Fetch loopback/private addresses."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (TOML). Default: $CRAWLER_CONFIG, else config/crawler.toml if present.",
)
@click.version_option(package_name="crawler")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Check the links an article cites, follow its related stories, and keep every snapshot."""
    ctx.obj = Context(config)


def _flag_overrides(**flags: Any) -> dict[str, dict[str, Any]]:
    """Map command-line flags onto settings sections, leaving unset flags out."""
    where = {
        "depth": "crawl",
        "max_pages": "crawl",
        "concurrency": "fetch",
        "allow_private_networks": "fetch",
        "verify_tls": "fetch",
        "transport": "fetch",
    }
    out: dict[str, dict[str, Any]] = {}
    for key, value in flags.items():
        if value is not None:
            out.setdefault(where[key], {})[key] = value
    return out


def _exit_code(snapshot: Snapshot) -> int:
    return EXIT_DEAD if snapshot.summary()["dead"] > 0 else EXIT_OK


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr, only when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("crawling", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


@contextmanager
def _store_unless(no_store: bool, settings: Settings) -> Iterator[Store | None]:
    """The configured store for the length of a command, or None with --no-store."""
    if no_store:
        yield None
        return
    with open_store(settings) as store:
        yield store


def _check_source(source: str) -> None:
    """Refuse, as a bad argument, a SOURCE that is no file, no `-` and no URL with a host."""
    from urllib.parse import urlsplit

    from crawler.sources import is_url_source

    if source == "-" or Path(source).exists():
        return
    if is_url_source(source) and urlsplit(source.strip()).hostname:
        return
    if source.strip().lower().startswith(("http:", "https:")):
        raise click.BadParameter(f"{source}: the URL has no host", param_hint="'SOURCE'")
    raise click.BadParameter(f"{source}: no such file", param_hint="'SOURCE'")


def _check_bodies_kept(fmt: str, settings: Settings) -> None:
    """Refuse a format written from stored bodies when `[crawl] store_bodies` keeps none."""
    from crawler.report import BINARY_FORMATS

    if fmt in BINARY_FORMATS and not settings.crawl.store_bodies:
        raise click.UsageError(
            f"--format {fmt} is written from the stored bodies: crawl.store_bodies is false"
        )


def _check_writable(output: Path | None) -> None:
    """Refuse an -o path that cannot be written, before any work; nothing is created or cut."""
    if output is None:
        return
    folder = output.parent
    if output.exists():
        why = None if os.access(output, os.W_OK) else "the file is not writable"
    elif not folder.exists():
        why = f"no such directory {folder}"
    elif not folder.is_dir():
        why = f"{folder} is not a directory"
    else:
        why = None if os.access(folder, os.W_OK | os.X_OK) else f"cannot write in {folder}"
    if why is not None:
        raise click.BadParameter(f"{output}: {why}", param_hint=OUTPUT_HINT)


@cli.command()
@click.argument("source")
@click.option(
    "--depth", type=click.IntRange(0, 10), help="Related-story levels to follow (default 1)."
)
@click.option(
    "--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="tree", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@click.option("--kind", type=click.Choice(KINDS), help="Force how the article is read.")
@click.option("--max-pages", type=click.IntRange(1), help="Stop fetching after this many pages.")
@click.option("--concurrency", type=click.IntRange(1), help="Requests in flight at once.")
@allow_private_option
@click.option("--insecure", is_flag=True, default=False, help="Do not verify TLS certificates.")
@click.option("--no-store", is_flag=True, help="Do not keep the snapshot in the store.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@pass_context
def crawl(
    ctx: Context,
    source: str,
    depth: int | None,
    fmt: str,
    output: Path | None,
    kind: str | None,
    max_pages: int | None,
    concurrency: int | None,
    allow_private: bool | None,
    insecure: bool,
    no_store: bool,
    no_progress: bool,
) -> None:
    """Crawl SOURCE (a file, `-` for stdin, or an http(s) URL) and print its snapshot tree."""

    from crawler.crawl import run_crawl
    from crawler.model import SourceKind

    settings = ctx.settings(
        _flag_overrides(
            depth=depth,
            max_pages=max_pages,
            concurrency=concurrency,
            allow_private_networks=allow_private,
            verify_tls=False if insecure else None,
        )
    )
    _check_source(source)
    check_output(fmt, output, stored=not no_store)
    _check_bodies_kept(fmt, settings)
    _check_writable(output)
    source_kind = SourceKind(kind) if kind else None
    stdin = sys.stdin.buffer if source == "-" else None
    freeze_startup_heap()
    with _store_unless(no_store, settings) as store:
        with _progress(not no_progress) as progress:  # gone before the report prints
            snapshot = run_async(
                run_crawl(
                    source, settings, kind=source_kind, stdin=stdin, store=store, progress=progress
                )
            )
        render_snapshot(snapshot, fmt, output, store)
    sys.exit(_exit_code(snapshot))


@cli.command()
@click.argument("source")
@click.option("--kind", type=click.Choice(KINDS), help="Force how the article is read.")
@click.option("-v", "--verbose", is_flag=True, help="Also print line and anchor text.")
@allow_private_option
@pass_context
def links(
    ctx: Context, source: str, kind: str | None, verbose: bool, allow_private: bool | None
) -> None:
    """Print the references found in SOURCE, one per line (nothing is checked)."""
    from crawler.model import SourceKind

    _check_source(source)
    settings = ctx.settings(_flag_overrides(allow_private_networks=allow_private))
    article = _read_article(source, SourceKind(kind) if kind else None, settings)
    for link in article.links:
        if verbose:
            extra = f"\tline {link.line}" if link.line is not None else ""
            extra += f"\t{link.text}" if link.text else ""
            click.echo(f"{link.url}{extra}")
        else:
            click.echo(link.url)


def _read_article(source: str, kind: SourceKind | None, settings: Settings) -> Article:
    """The article at SOURCE: fetched when it is a URL, else read from a file or stdin."""
    import asyncio

    from crawler.answer import read_article
    from crawler.fetch import Fetcher
    from crawler.sources import is_url_source, read_source

    if not is_url_source(source):
        return read_source(source, kind, stdin=sys.stdin.buffer if source == "-" else None)

    async def fetch_article() -> Article:
        async with Fetcher(settings.fetch) as fetcher:
            return (await read_article(source, fetcher, kind=kind))[0]

    return asyncio.run(fetch_article())


@cli.command()
@click.argument("snapshot_id", type=ROW_ID)
@click.option(
    "--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="tree", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@pass_context
def show(ctx: Context, snapshot_id: int, fmt: str, output: Path | None) -> None:
    """Print a stored snapshot again."""
    check_output(fmt, output)
    _check_writable(output)
    with open_store(ctx.settings()) as store:
        snapshot = store.load_snapshot(snapshot_id)
        render_snapshot(snapshot, fmt, output, store)


@cli.command()
@click.argument("source", required=False)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@pass_context
def snapshots(ctx: Context, source: str | None, limit: int) -> None:
    """List stored snapshots, newest first (a crashed crawl's as partial, with what it saved)."""
    from crawler.resume import is_crawl_alive

    with open_store(ctx.settings()) as store:
        store.recover_interrupted(is_crawl_alive)  # as the next crawl would; the list tells so
        rows = store.list_snapshots(source, limit=limit)
    for row in rows:
        summary = row.summary or {}
        click.echo(
            f"{row.snapshot_id}\t{row.started_at:%Y-%m-%d %H:%M:%S}\t{row.outcome}\t"
            f"{summary.get('nodes', 0)} nodes\t{summary.get('dead', 0)} dead\t{row.source}"
        )


COMMAND_MODULES = ("crawler.cli_watch", "crawler.cli_cluster", "crawler.cli_serve")


def register_commands() -> None:
    """Add the commands kept in their own modules (each imports only click at the top)."""
    import importlib

    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            cli.add_command(command)


register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every expected failure into a message and an exit code."""
    from crawler.errors import CrawlerError

    try:
        cli.main(args=argv, prog_name="crawler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_CONFIG)
    except (click.Abort, KeyboardInterrupt):
        click.echo("crawler: interrupted", err=True)
        sys.exit(130)
    except CrawlerError as exc:
        click.echo(f"crawler: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a command's own "nothing to show" and the like
        click.echo(f"crawler: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_OK)
