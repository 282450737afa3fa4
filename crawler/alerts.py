"""Deliver alert events: one JSON message per run to each webhook, and through Apprise if set up.

Delivery never raises: every webhook or Apprise URL yields a `DeliveryResult`, failures are
logged on the "crawler.alerts" logger, and a failed POST is retried (tenacity, exponential
backoff) on transport errors, 408, 429 and 5xx. Nothing is sent for a run without events or
for an inconclusive run: its verdicts say nothing about the links.

This module imports httpx and tenacity although `crawler.fetch` is meant to be their only home:
posting alerts is not fetching links (no politeness, no classification, one JSON body),
and routing it through the fetch stage would bend that stage out of shape.

Webhook and Apprise URLs often carry their secret in the path (Slack, Discord, Telegram),
so logs and results name a target only by scheme and host (`describe_target`).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt
from tenacity.wait import wait_exponential

from crawler.config import AlertSettings
from crawler.history import AlertEvent, is_conclusive, one_line
from crawler.model import Snapshot
from crawler.urls import redact_url

log = logging.getLogger("crawler.alerts")

DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 0.5
BACKOFF_MAX = 30.0
WEBHOOK_TIMEOUT = 10.0
RETRY_STATUSES = frozenset({408, 425, 429})
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How sending one run's alerts to one target went."""

    channel: str  # "webhook" or "apprise"
    target: str  # scheme and host only: safe to log
    ok: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """One attempt's outcome, kept as a value so tenacity can judge it."""

    ok: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None


def utcnow() -> datetime:
    """The current time in UTC (the default clock for `sent_at`)."""
    return datetime.now(UTC)


def alert_message(
    snapshot: Snapshot, events: Sequence[AlertEvent], sent_at: datetime
) -> dict[str, Any]:
    """The JSON body posted to webhooks for one run."""
    return {
        "snapshot_id": snapshot.snapshot_id,
        "source": redact_url(snapshot.source),
        "events": [
            {
                "kind": str(e.kind),
                "url": e.url,
                "verdict": str(e.verdict),
                "reason": e.reason,
                "title": e.title,
            }
            for e in events
        ],
        "sent_at": sent_at.isoformat(),
    }


def alert_text(snapshot: Snapshot, events: Sequence[AlertEvent]) -> tuple[str, str]:
    """A title and a plain-text body for chat-style notifications (Apprise)."""
    dead = sum(1 for e in events if e.kind == "newly-dead")
    title = f"crawler: {dead} newly dead, {len(events) - dead} recovered"
    lines = [f"Source: {one_line(redact_url(snapshot.source))}"]
    for event in events:
        line = f"{event.kind}: {one_line(event.url)}"
        if event.reason:
            line += f" ({one_line(event.reason)})"
        lines.append(line)
    return title, "\n".join(lines)


def describe_target(url: str) -> str:
    """Name a webhook or Apprise URL without its secret: an http(s) host, else just the scheme."""
    scheme, sep, _ = url.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        # Apprise URLs keep tokens even where a host would be (tgram://bottoken/chat): show none
        return f"{scheme.lower() if sep else '?'}://…"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
        authority = parts.netloc.rpartition("@")[2]  # drop user:password@
    except ValueError:
        return "(unparseable URL)"
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{authority}{rest}"


def should_resend(answer: _Answer) -> bool:
    """Retry only what may pass on a second try: transport errors, 408, 425, 429 and 5xx."""
    return not answer.ok and answer.retryable


def _should_send(snapshot: Snapshot, events: Sequence[AlertEvent], targets: Sequence[str]) -> bool:
    """Something to say, somewhere to say it, and a run whose verdicts count."""
    return bool(events) and bool(targets) and is_conclusive(snapshot.outcome)


async def send_webhooks(
    snapshot: Snapshot,
    events: Sequence[AlertEvent],
    urls: Sequence[str],
    *,
    client: httpx.AsyncClient | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    clock: Callable[[], datetime] = utcnow,
) -> list[DeliveryResult]:
    """POST one JSON message for this run to every webhook; failures are returned, never raised."""
    if not _should_send(snapshot, events, urls):
        return []
    body = json.dumps(alert_message(snapshot, events, clock())).encode()
    if client is not None:
        return await _post_all(client, urls, body, attempts, backoff)
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as own:
        return await _post_all(own, urls, body, attempts, backoff)


async def _post_all(
    client: httpx.AsyncClient, urls: Sequence[str], body: bytes, attempts: int, backoff: float
) -> list[DeliveryResult]:
    """Deliver to every webhook at once; one slow receiver does not hold up the others."""
    post = functools.partial(_post_once, client)
    jobs = [
        _deliver("webhook", url, functools.partial(post, url, body), attempts, backoff)
        for url in urls
    ]
    return list(await asyncio.gather(*jobs))


async def _post_once(client: httpx.AsyncClient, url: str, body: bytes) -> _Answer:
    """One POST; what went wrong comes back as a value."""
    try:
        response = await client.post(url, content=body, headers=JSON_HEADERS)
    except httpx.UnsupportedProtocol as exc:
        return _Answer(ok=False, retryable=False, error=f"unsupported URL: {exc}")
    except httpx.InvalidURL as exc:
        return _Answer(ok=False, retryable=False, error=f"invalid URL: {exc}")
    except httpx.HTTPError as exc:
        return _Answer(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
    code = response.status_code
    if response.is_success:
        return _Answer(ok=True, retryable=False, status_code=code)
    retry = code >= 500 or code in RETRY_STATUSES
    return _Answer(ok=False, retryable=retry, status_code=code, error=f"HTTP {code}")


async def _deliver(
    channel: str,
    url: str,
    send: Callable[[], Awaitable[_Answer]],
    attempts: int,
    backoff: float,
) -> DeliveryResult:
    """Run `send` until it works, cannot work, or the attempts run out; log a failure."""
    tries = 0

    async def attempt() -> _Answer:
        nonlocal tries
        tries += 1
        return await send()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=backoff, max=BACKOFF_MAX),
        retry=retry_if_result(should_resend),
        retry_error_callback=_last_answer,
    )
    answer: _Answer = await retrying(attempt)
    result = DeliveryResult(
        channel, describe_target(url), answer.ok, tries, answer.status_code, answer.error
    )
    _log_result(result)
    return result


def _last_answer(state: RetryCallState) -> _Answer:
    """When the attempts run out, keep the last answer instead of raising RetryError."""
    assert state.outcome is not None  # tenacity calls this only after an attempt
    answer: _Answer = state.outcome.result()
    return answer


def _log_result(result: DeliveryResult) -> None:
    """One line per delivery: info when it worked, warning when it did not."""
    if result.ok:
        log.info(
            "alert delivered channel=%s target=%s attempts=%d",
            result.channel,
            result.target,
            result.attempts,
        )
        return
    log.warning(
        "alert delivery failed channel=%s target=%s attempts=%d error=%s",
        result.channel,
        result.target,
        result.attempts,
        result.error,
    )


# -- Apprise ---------------------------------------------------------------------------------


@functools.cache
def load_apprise() -> ModuleType | None:
    """The apprise module, imported on first use; None (warned about once) if not installed."""
    try:
        return importlib.import_module("apprise")
    except ImportError:
        log.warning("apprise URLs are configured but the apprise package is not installed")
        return None


async def notify_apprise(
    snapshot: Snapshot,
    events: Sequence[AlertEvent],
    urls: Sequence[str],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
) -> list[DeliveryResult]:
    """Notify every Apprise URL; skipped (no results) when the apprise package is missing."""
    if not _should_send(snapshot, events, urls):
        return []
    apprise = load_apprise()
    if apprise is None:
        return []
    title, body = alert_text(snapshot, events)
    jobs = [
        _deliver(
            "apprise",
            url,
            functools.partial(_apprise_once, apprise, url, title, body),
            attempts,
            backoff,
        )
        for url in urls
    ]
    return list(await asyncio.gather(*jobs))


async def _apprise_once(apprise: ModuleType, url: str, title: str, body: str) -> _Answer:
    """One Apprise notification to one URL; anything it raises becomes a value."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return _Answer(ok=False, retryable=False, error="apprise does not accept this URL")
    try:
        sent = await notifier.async_notify(body=body, title=title)
    except Exception as exc:  # a plugin bug must not take the daemon down
        return _Answer(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
    if sent:
        return _Answer(ok=True, retryable=False)
    return _Answer(ok=False, retryable=True, error="apprise reported the notification failed")


async def deliver_alerts(
    snapshot: Snapshot,
    events: Sequence[AlertEvent],
    settings: AlertSettings,
    *,
    client: httpx.AsyncClient | None = None,
) -> list[DeliveryResult]:
    """Send one run's events to the configured webhooks and Apprise URLs."""
    webhooks = send_webhooks(snapshot, events, settings.webhooks, client=client)
    chats = notify_apprise(snapshot, events, settings.apprise)
    sent, notified = await asyncio.gather(webhooks, chats)
    return [*sent, *notified]
