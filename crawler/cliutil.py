"""What every command module shares: the settings context, the store, output."""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from crawler.model import MAX_ROW_ID

if TYPE_CHECKING:
    import asyncio

    from crawler.config import Settings
    from crawler.model import Snapshot
    from crawler.store import Store


class Context:
    """What every command shares: the config path given and the settings, loaded once."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    def settings(self, overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
        """Load settings once (file, environment, then these flag overrides)."""
        from crawler.config import load_settings

        if self._settings is None or overrides:
            self._settings = load_settings(self.config, overrides=overrides)
        return self._settings


pass_context = click.make_pass_decorator(Context)

T = TypeVar("T")

# A snapshot or watch id as an argument: a larger one is a bad argument, not a database error.
ROW_ID = click.IntRange(1, MAX_ROW_ID)
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: what a shell reports for a process SIGTERM ended


class CancelOnSigterm:
    """A SIGTERM handler that cancels the main task once, as asyncio.Runner does for SIGINT.

    A crawl cancelled so keeps what finished and is stored `partial`; a second SIGTERM while it
    writes that down is ignored rather than cutting the last write short.
    """

    def __init__(self) -> None:
        self.received = False

    def install(self, task: asyncio.Task[Any]) -> None:
        """Cancel `task` on the running loop's first SIGTERM (until the loop closes)."""
        import asyncio

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._cancel, task)

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        if not self.received:
            self.received = True
            task.cancel()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, with main's result kept out of the event loop's main task.

    On its way out, Python 3.11's asyncio.Runner asks `signal.getsignal(SIGINT)` about its own
    handler, a partial holding the main task; the signal module tries `Handlers(handler)`,
    whose error message is the repr of that task, and so of its result: a whole snapshot tree
    turned into text to be thrown away, twice (some 10 ms per 2,000 nodes).

    SIGINT cancels main and ends in KeyboardInterrupt (asyncio.Runner's doing); SIGTERM cancels
    main too, then says so in one line and exits with EXIT_TERMINATED.
    """
    import asyncio

    box: list[T] = []
    sigterm = CancelOnSigterm()

    async def wrapper() -> None:
        task = asyncio.current_task()
        assert task is not None
        sigterm.install(task)
        box.append(await main)

    try:
        asyncio.run(wrapper())
    except asyncio.CancelledError:
        if not sigterm.received:
            raise
        click.echo("crawler: terminated", err=True)
        raise SystemExit(EXIT_TERMINATED) from None
    return box[0]


def freeze_startup_heap() -> None:
    """Load the modules a crawl uses, then exempt everything alive so far from garbage collection.

    Python's collector walks every tracked object on each full collection; the ~75,000 objects
    that importing httpx, aiohttp, lxml and SQLAlchemy leaves behind live as long as the process
    anyway. Frozen (`gc.freeze`), they cost nothing per collection: about 8% of the CPU of a
    2,000-link crawl (bench/RESULTS.md). Called once per process, before its event loop.
    """
    if gc.get_freeze_count():
        return  # once per process: a later call would pin whatever garbage exists by then
    for module in ("crawler.fetch", "crawler.related"):  # the fetch stack and the page readers
        importlib.import_module(module)
    gc.freeze()


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """Open the configured store for the length of a command."""
    from crawler.store import Store

    store = Store.open(settings.store.url())
    try:
        yield store
    finally:
        store.close()


def write_output(text: str | Iterable[str], output: Path | None) -> None:
    """Write a report to `output`, or to stdout; `text` may come in pieces (a large JSON)."""
    pieces = [text] if isinstance(text, str) else text
    if output is None:
        last = ""
        for last in pieces:
            click.echo(last, nl=False)
        if not last.endswith("\n"):
            click.echo("")
        return
    try:
        with output.open("w", encoding="utf-8") as out:
            out.writelines(pieces)
    except OSError as exc:
        from crawler.errors import CrawlerError

        raise CrawlerError(f"{output}: cannot write output: {exc.strerror}") from exc


def check_output(fmt: str, output: Path | None, *, stored: bool = True) -> None:
    """Fail early (a usage error) when a binary format has no file or no stored bodies to read."""
    from crawler.report import BINARY_FORMATS

    if fmt in BINARY_FORMATS and output is None:
        raise click.UsageError(f"--format {fmt} writes a binary file: give -o FILE")
    if fmt in BINARY_FORMATS and not stored:
        raise click.UsageError(f"--format {fmt} is written from the stored bodies: drop --no-store")


def render_snapshot(
    snapshot: Snapshot, fmt: str, output: Path | None, store: Store | None = None
) -> None:
    """Render and write; with a store, `warc` reads the bodies and `html` the link timelines."""
    from crawler.report import BINARY_FORMATS, render, render_bytes

    if fmt in BINARY_FORMATS:
        check_output(fmt, output, stored=store is not None)
        assert output is not None and store is not None
        gzip = not output.name.endswith(".warc")  # .warc.gz (the usual) unless asked otherwise
        write_bytes(render_bytes(snapshot, fmt, store.get_body, gzip=gzip), output)
        return
    timelines = None
    if fmt == "html" and store is not None:
        from crawler.web.queries import report_timelines

        timelines = report_timelines(store, snapshot)
    if fmt == "json":  # in pieces: a large crawl's JSON is never held whole
        from crawler.report.jsonfmt import iter_json

        write_output(iter_json(snapshot), output)
        return
    color = (
        output is None and fmt == "tree" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    write_output(render(snapshot, fmt, color=color, timelines=timelines), output)


def write_bytes(data: bytes, output: Path) -> None:
    """Write a binary report to `output`."""
    try:
        output.write_bytes(data)
    except OSError as exc:
        from crawler.errors import CrawlerError

        raise CrawlerError(f"{output}: cannot write output: {exc.strerror}") from exc
