"""The daemon: a thin APScheduler 3.x shell that runs each watch when it is due.

    await run_daemon(settings, reload=..., config_file=...)   # until SIGTERM / SIGINT

Decisions live elsewhere: `timing.next_run` says when a watch runs next (missed runs
coalesce into one, jitter only delays) and `watching.run_watch` does one run. This module
only keeps the clockwork going:

- Every watch is one APScheduler job with a date trigger at the watch's `next_run_at` (read
  from the database, so schedules survive a restart). When a run ends, the next date is
  written to the watch row and the job is planned again from the task's done-callback,
  which runs after APScheduler has released the instance slot.
- Never two runs of one watch at once: `max_instances=1` on the job, and `running` in here.
- One `Fetcher` for every crawl: global and per-host limits hold across watches.
- Every `poll` seconds the watches table is read again (so `crawler watch add/remove` take
  effect while the daemon runs) and the config file's mtime is checked; a change, or SIGHUP,
  reloads the settings and syncs the config's `[[watch]]` entries (removed ones are disabled).
- SIGTERM / SIGINT: no new runs; runs in flight get `daemon.grace_seconds` to finish, then
  are cancelled, which stores their snapshots as `partial`.
- A failed run is logged and retried at its next tick; nothing a run does stops the daemon.
- One daemon per SQLite store: it holds an flock on `<database>.daemon.lock` (which the
  kernel releases when the process ends, crash included); a second daemon refuses to start.

Log lines are structured (`kv` or `json`): `daemon-start`, one `run` per run with counts and
duration, `reload`, `stopping`, `daemon-stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from crawler.config import Settings
from crawler.errors import CrawlerError
from crawler.store.watches import Watch, list_watches
from crawler.timing import next_run
from crawler.urls import redact_url
from crawler.watching import WatchRun, run_watch, sync_config_watches, utcnow

if TYPE_CHECKING:
    from crawler.fetch import Fetcher
    from crawler.store import Store

DEFAULT_POLL_SECONDS = 1.0  # how often the watches table and the config file are looked at
CANCEL_WAIT_SECONDS = 10.0  # after the grace period: time for cancelled crawls to store
LOG_FORMATS = ("kv", "json")

log = logging.getLogger("crawler.daemon")


# -- structured log lines ------------------------------------------------------------------------


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: `event` plus key=value fields (rendered by `StructuredFormatter`)."""
    log.log(level, event, extra={"fields": fields})


class StructuredFormatter(logging.Formatter):
    """Render records as `key=value` pairs or one JSON object per line."""

    def __init__(self, fmt: str = "kv") -> None:
        super().__init__()
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {LOG_FORMATS}, got {fmt!r}")
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line; records from other loggers become event=log."""
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": when, "level": record.levelname.lower()}
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out["event"] = record.getMessage()
            out.update(extra)
        else:
            out.update(event="log", logger=record.name, msg=record.getMessage())
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info).strip().splitlines()[-1]
        if self.fmt == "json":
            return json.dumps(out, default=_plain, ensure_ascii=False)
        return " ".join(f"{key}={_kv_value(value)}" for key, value in out.items())


def _plain(value: Any) -> Any:
    """JSON for values json does not know: datetimes as ISO 8601, the rest as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _kv_value(value: Any) -> str:
    """A logfmt value: bare when safe, else a JSON string (quotes and newlines escaped)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = _plain(value) if not isinstance(value, str | int) else str(value)
    if text and not any(c.isspace() or c in '"=\\' or not c.isprintable() for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def configure_logging(fmt: str, stream: IO[str] | None = None) -> None:
    """Send every log record to `stream` (stderr) as structured lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(StructuredFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # "Running job ..." is noise
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl SQLiteImpl."


def log_run(run: WatchRun) -> None:
    """The one line per run: what was found, how long it took, when the next run is."""
    fields: dict[str, Any] = {
        "watch": run.watch_id,
        "source": redact_url(run.source),
        "snapshot": run.snapshot_id,
        "outcome": run.outcome,
        **run.counts,
        "alerts_sent": run.alerts_sent,
        "alerts_failed": run.alerts_failed,
        "duration": run.duration,
        "next_run": run.next_run_at,
    }
    if run.error is not None:
        fields["error"] = run.error
    log_event("run", logging.WARNING if run.error else logging.INFO, **fields)


# -- the daemon ----------------------------------------------------------------------------------


def job_id(watch_id: int) -> str:
    """The APScheduler job id of a watch."""
    return f"watch-{watch_id}"


def _same_schedule(a: Watch, b: Watch) -> bool:
    """Whether two rows of one watch would be planned alike (what a sync compares)."""
    return (a.every, a.cron, a.depth, a.enabled) == (b.every, b.cron, b.depth, b.enabled)


class Daemon:
    """Keeps one job per enabled watch and runs them until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        *,
        reload: Callable[[], Settings] | None = None,
        config_file: Path | None = None,
        poll: float = DEFAULT_POLL_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.reload = reload
        self.config_file = config_file
        self.poll = poll
        self.clock = clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.watches: dict[int, Watch] = {}  # enabled watches as last read, by id
        self.running: dict[int, asyncio.Task[Any]] = {}
        self.next_at: dict[int, datetime] = {}  # set by a finished run, used by _after_run
        self.stopping = False
        self.runs = 0
        self._wake = asyncio.Event()
        self._reload_reason: str | None = None
        self._config_stamp = self._stamp()

    # -- signals -----------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Stop taking new runs and begin the shutdown (SIGTERM, SIGINT)."""
        if not self.stopping:
            log_event("stopping", reason=reason, in_flight=len(self.running))
        self.stopping = True
        self._wake.set()

    def request_reload(self, reason: str) -> None:
        """Reload settings and watches at the next tick (SIGHUP)."""
        self._reload_reason = reason
        self._wake.set()

    @contextlib.contextmanager
    def signal_handlers(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop, SIGHUP reloads, for as long as the daemon runs."""
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: functools.partial(self.request_stop, "SIGTERM"),
            signal.SIGINT: functools.partial(self.request_stop, "SIGINT"),
            signal.SIGHUP: functools.partial(self.request_reload, "SIGHUP"),
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        try:
            yield
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)

    # -- main loop ---------------------------------------------------------------------------

    async def serve(self) -> int:
        """Sync config watches, then run until stopped; returns the runs cut short."""
        await asyncio.to_thread(
            sync_config_watches, self.store, self.settings.watch, self.clock(), self._origin()
        )  # a bad [[watch]] at start is a ConfigError: exit 3
        self.scheduler.start(paused=True)  # no run before the start line is logged
        await self.sync_watches()
        log_event(
            "daemon-start",
            pid=os.getpid(),
            watches=len(self.watches),
            config=str(self.config_file) if self.config_file else None,
        )
        self.scheduler.resume()
        while not self.stopping:
            await self._tick()
        cut = await self.drain()
        log_event("daemon-stop", runs=self.runs, cut_short=cut)
        return cut

    async def _tick(self) -> None:
        """Sleep until a signal or the next poll, then reload if asked and sync the watches."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll)
        self._wake.clear()
        if self.stopping:
            return
        await self._maybe_reload()
        await self.sync_watches()

    async def drain(self) -> int:
        """Let runs in flight finish within the grace period, then cancel the rest."""
        self.stopping = True
        self.scheduler.pause()
        pending: set[asyncio.Task[Any]] = set()
        tasks = set(self.running.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.daemon.grace_seconds)
            for task in pending:
                task.cancel()
            if pending:  # cancelled crawls write their partial snapshot before they end
                await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)
        self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler.shutdown runs on the next loop turn
        return len(pending)

    # -- watches -----------------------------------------------------------------------------

    async def sync_watches(self) -> None:
        """Plan new or changed watches from the table and drop removed ones."""
        try:
            current = await asyncio.to_thread(list_watches, self.store, enabled_only=True)
        except CrawlerError as exc:
            log_event("sync-failed", logging.WARNING, error=str(exc))
            return
        now = self.clock()
        seen = {watch.watch_id for watch in current}
        for gone in set(self.watches) - seen:
            self._unplan(gone)
        for watch in current:
            known = self.watches.get(watch.watch_id)
            self.watches[watch.watch_id] = watch
            if known is not None and _same_schedule(known, watch):
                continue
            if watch.watch_id not in self.running:
                due = watch.next_run_at or watch.due_after(now)
                self.plan(watch.watch_id, max(due, now))

    def plan(self, watch_id: int, at: datetime) -> None:
        """(Re)place the watch's job at `at`."""
        self.scheduler.add_job(
            self._fire,
            DateTrigger(run_date=at, timezone=UTC),
            args=(watch_id,),
            id=job_id(watch_id),
            name=job_id(watch_id),
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _unplan(self, watch_id: int) -> None:
        """Forget a removed or disabled watch; a run in flight is left to finish."""
        self.watches.pop(watch_id, None)
        with contextlib.suppress(LookupError):
            self.scheduler.remove_job(job_id(watch_id))
        log_event("watch-removed", watch=watch_id)

    async def _fire(self, watch_id: int) -> None:
        """The job: one run of one watch, unless it is already running or we are stopping."""
        watch = self.watches.get(watch_id)
        if self.stopping or watch is None:
            return
        if watch_id in self.running:
            log_event("run-skipped", watch=watch_id, reason="still running")
            return
        task = asyncio.current_task()
        assert task is not None  # APScheduler runs coroutine jobs as tasks
        self.running[watch_id] = task
        task.add_done_callback(functools.partial(self._after_run, watch_id))
        started = self.clock()
        try:
            run = await run_watch(
                watch,
                self.settings,
                self.store,
                self.fetcher,
                clock=self.clock,
                due_again_if_cut_short=True,
            )
        except asyncio.CancelledError:
            # Only drain() cancels a run, and it waits for this task: end it quietly rather
            # than have APScheduler log a traceback. The crawl stored its snapshot as partial.
            source = redact_url(watch.source)
            log_event("run", watch=watch_id, source=source, outcome="partial", cut_short=True)
            return
        except Exception as exc:  # run_watch returns failures; this is a bug, still not fatal
            log.exception("run of watch %d failed unexpectedly", watch_id, exc_info=exc)
            self.next_at[watch_id] = next_run(watch.every, watch.cron, started, self.clock())
            return
        finally:
            self.running.pop(watch_id, None)
        self.runs += 1
        self.next_at[watch_id] = run.next_run_at
        if self.watches.get(watch_id) is watch:  # not replaced by a sync meanwhile
            self.watches[watch_id] = dataclasses.replace(
                watch, last_run_at=run.started_at, next_run_at=run.next_run_at
            )
        log_run(run)

    def _after_run(self, watch_id: int, _task: asyncio.Task[Any]) -> None:
        """Plan the next run once the task is done (APScheduler has freed its instance slot)."""
        at = self.next_at.pop(watch_id, None)
        if self.stopping or at is None or watch_id not in self.watches:
            return
        self.plan(watch_id, max(at, self.clock()))

    # -- reload ------------------------------------------------------------------------------

    def _origin(self) -> str:
        """How errors in the `[[watch]]` entries name where they came from."""
        return str(self.config_file) if self.config_file is not None else "config"

    def _stamp(self) -> tuple[int, int] | None:
        """The config file's mtime and size, or None when there is no file to watch."""
        if self.config_file is None:
            return None
        try:
            info = self.config_file.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    async def _maybe_reload(self) -> None:
        """Reload on SIGHUP or when the config file changed."""
        reason, self._reload_reason = self._reload_reason, None
        stamp = self._stamp()
        if stamp != self._config_stamp:
            self._config_stamp = stamp
            reason = reason or "config-changed"
        if reason is not None:
            await self.reload_settings(reason)

    async def reload_settings(self, reason: str) -> None:
        """Read the settings again and sync the config's watches; a bad file changes nothing."""
        if self.reload is None:
            return
        try:
            settings = await asyncio.to_thread(self.reload)
            await asyncio.to_thread(
                sync_config_watches, self.store, settings.watch, self.clock(), self._origin()
            )
        except CrawlerError as exc:
            log_event("reload-failed", logging.WARNING, reason=reason, error=str(exc))
            return
        if (settings.fetch, settings.store) != (self.settings.fetch, self.settings.store):
            log_event(
                "reload-note", logging.WARNING, note="fetch and store settings need a restart"
            )
        self.settings = settings
        log_event("reload", reason=reason, config_watches=len(settings.watch))


async def run_daemon(
    settings: Settings,
    *,
    reload: Callable[[], Settings] | None = None,
    config_file: Path | None = None,
    poll: float = DEFAULT_POLL_SECONDS,
) -> int:
    """Open the store, take its daemon lock, then run the daemon until a stop signal."""
    from crawler.store import Store

    store = await asyncio.to_thread(Store.open, settings.store.url())
    try:
        with daemon_lock(settings.store.url()):
            return await _serve(settings, store, reload=reload, config_file=config_file, poll=poll)
    finally:
        store.close()


async def _serve(
    settings: Settings,
    store: Store,
    *,
    reload: Callable[[], Settings] | None,
    config_file: Path | None,
    poll: float,
) -> int:
    """Run the daemon over an open store with one shared Fetcher, until a stop signal."""
    from crawler.fetch import Fetcher

    async with Fetcher(settings.fetch) as fetcher:
        daemon = Daemon(settings, store, fetcher, reload=reload, config_file=config_file, poll=poll)
        with daemon.signal_handlers():
            return await daemon.serve()


@contextlib.contextmanager
def daemon_lock(url: str) -> Iterator[None]:
    """Hold `<database>.daemon.lock` (flock) for a SQLite store; CrawlerError when it is taken.

    The kernel drops an flock when its process ends, however it ends, so a crashed daemon
    leaves no stale lock. The file keeps the holder's pid for the refusal message.
    """
    database = _sqlite_file(url)
    if database is None:  # PostgreSQL: several daemons are the cluster mode's business
        yield
        return
    path = database.with_name(database.name + ".daemon.lock")
    try:
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise CrawlerError(f"{path}: cannot open the daemon lock: {exc.strerror}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise CrawlerError(
                f"another crawler daemon (pid {pid}) already runs on {database}"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
