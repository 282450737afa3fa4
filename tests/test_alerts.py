"""Alert delivery against a real webhook receiver on 127.0.0.1 (aiohttp.web in the test)."""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from crawler.alerts import (
    DeliveryResult,
    deliver_alerts,
    describe_target,
    load_apprise,
    notify_apprise,
    send_webhooks,
)
from crawler.config import AlertSettings
from crawler.history import AlertEvent, alert_events
from crawler.model import Flag, Node, Outcome, Relation, Snapshot, Verdict

SENT_AT = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
BACKOFF = 0.01  # real retries, short waits


@dataclass
class Receiver:
    """A webhook endpoint that answers `statuses` in turn (then 200) and keeps what it got."""

    base: str
    statuses: list[int]
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, type, body
    accepted: list[Any] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path, request.content_type, body))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.accepted.append(json.loads(body))
        return web.Response(status=status, text="noted" if status == 200 else "broken")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver("", statuses=[])
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.base = f"http://{host}:{port}"
    try:
        yield recv
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flagged_snapshot(outcome: Outcome = Outcome.COMPLETE) -> Snapshot:
    gone = Node(
        url="https://n.example/gone?api_key=s3cret",
        normalized_url="https://n.example/gone?api_key=s3cret",
        relation=Relation.REFERENCE,
        depth=1,
        verdict=Verdict.DEAD,
        reason="HTTP 404",
        title="Gone",
        flags=["dead", "newly-dead"],
    )
    back = Node(
        url="https://n.example/back",
        normalized_url="https://n.example/back",
        relation=Relation.REFERENCE,
        depth=1,
        verdict=Verdict.OK,
        flags=["recovered"],
    )
    root = Node(
        url="https://n.example/article",
        normalized_url="https://n.example/article",
        relation=Relation.ROOT,
        depth=0,
        verdict=Verdict.OK,
        children=[gone, back],
    )
    return Snapshot(
        source="https://n.example/article",
        started_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        root=root,
        outcome=outcome,
        snapshot_id=42,
    )


EXPECTED_MESSAGE = {
    "snapshot_id": 42,
    "source": "https://n.example/article",
    "events": [
        {
            "kind": "newly-dead",
            "url": "https://n.example/gone?api_key=***",
            "verdict": "dead",
            "reason": "HTTP 404",
            "title": "Gone",
        },
        {
            "kind": "recovered",
            "url": "https://n.example/back",
            "verdict": "ok",
            "reason": None,
            "title": None,
        },
    ],
    "sent_at": "2024-05-01T12:00:05+00:00",
}


async def test_a_500_is_retried_and_exactly_one_message_lands(receiver: Receiver) -> None:
    receiver.statuses = [500]
    snapshot = flagged_snapshot()
    results = await send_webhooks(
        snapshot,
        alert_events(snapshot),
        [f"{receiver.base}/hook"],
        clock=lambda: SENT_AT,
        backoff=BACKOFF,
    )
    assert results == [
        DeliveryResult("webhook", describe_target(receiver.base + "/hook"), True, 2, 200, None)
    ]
    assert len(receiver.requests) == 2
    assert receiver.requests[0] == receiver.requests[1]  # the same message, sent again
    assert receiver.requests[1][1] == "application/json"
    assert receiver.accepted == [EXPECTED_MESSAGE]


async def test_attempts_run_out_on_a_receiver_that_keeps_failing(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [503, 503, 503, 503]
    snapshot = flagged_snapshot()
    with caplog.at_level(logging.WARNING, logger="crawler.alerts"):
        [result] = await send_webhooks(
            snapshot, alert_events(snapshot), [f"{receiver.base}/hook"], attempts=3, backoff=BACKOFF
        )
    assert (result.ok, result.attempts, result.status_code, result.error) == (
        False,
        3,
        503,
        "HTTP 503",
    )
    assert len(receiver.requests) == 3 and receiver.accepted == []
    assert any("alert delivery failed" in r.getMessage() for r in caplog.records)


async def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    snapshot = flagged_snapshot()
    async with httpx.AsyncClient(trust_env=False) as client:
        [result] = await send_webhooks(
            snapshot,
            alert_events(snapshot),
            [f"{receiver.base}/nowhere"],
            client=client,
            backoff=BACKOFF,
        )
    assert (result.ok, result.attempts, result.status_code) == (False, 1, 404)


async def test_an_unreachable_webhook_fails_without_raising(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = flagged_snapshot()
    dead_end = f"http://127.0.0.1:{closed_port()}/hook"
    with caplog.at_level(logging.WARNING, logger="crawler.alerts"):
        results = await send_webhooks(
            snapshot, alert_events(snapshot), [dead_end, f"{receiver.base}/hook"], backoff=BACKOFF
        )
    failed, delivered = results
    assert (failed.ok, failed.attempts, failed.status_code) == (False, 3, None)
    assert failed.error is not None and failed.error.startswith("ConnectError")
    assert delivered.ok and receiver.accepted[0]["events"] == EXPECTED_MESSAGE["events"]
    warnings = [r for r in caplog.records if r.name == "crawler.alerts"]
    assert len(warnings) == 1
    assert "/hook" not in warnings[0].getMessage()  # the path may hold the webhook's secret


async def test_nothing_is_sent_for_an_inconclusive_run(receiver: Receiver) -> None:
    snapshot = flagged_snapshot(Outcome.INCONCLUSIVE)
    events = [AlertEvent(Flag.NEWLY_DEAD, "https://n.example/gone", Verdict.DEAD, "HTTP 404", None)]
    assert await send_webhooks(snapshot, events, [f"{receiver.base}/hook"], backoff=BACKOFF) == []
    assert receiver.requests == []


async def test_nothing_is_sent_without_events(receiver: Receiver) -> None:
    assert (
        await send_webhooks(flagged_snapshot(), [], [f"{receiver.base}/hook"], backoff=BACKOFF)
        == []
    )
    assert receiver.requests == []


async def test_deliver_alerts_uses_the_configured_webhooks(receiver: Receiver) -> None:
    snapshot = flagged_snapshot()
    settings = AlertSettings(webhooks=[f"{receiver.base}/hook"])
    [result] = await deliver_alerts(snapshot, alert_events(snapshot), settings)
    assert result.ok and len(receiver.accepted) == 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/…"),
        ("http://user:pw@127.0.0.1:8080/hook?token=1", "http://127.0.0.1:8080/…"),
        ("https://example.org", "https://example.org"),
        ("tgram://123456:ABCDEF/987654", "tgram://…"),
        ("http://[::1]:9/x", "http://[::1]:9/…"),
        ("http://[::1", "(unparseable URL)"),
        ("http://host:99999/x", "(unparseable URL)"),
    ],
)
def test_targets_are_described_without_their_secrets(url: str, shown: str) -> None:
    assert describe_target(url) == shown


async def test_missing_apprise_is_warned_about_once_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # makes `import apprise` fail
    load_apprise.cache_clear()
    snapshot = flagged_snapshot()
    try:
        with caplog.at_level(logging.WARNING, logger="crawler.alerts"):
            first = await notify_apprise(snapshot, alert_events(snapshot), ["json://127.0.0.1/x"])
            second = await notify_apprise(snapshot, alert_events(snapshot), ["json://127.0.0.1/x"])
    finally:
        load_apprise.cache_clear()
    assert first == second == []
    assert [r.getMessage() for r in caplog.records] == [
        "apprise URLs are configured but the apprise package is not installed"
    ]


async def test_apprise_notifies_through_its_json_plugin(receiver: Receiver) -> None:
    pytest.importorskip("apprise")
    receiver.statuses = [500]
    snapshot = flagged_snapshot()
    target = receiver.base.replace("http://", "json://") + "/hook"
    [result] = await notify_apprise(snapshot, alert_events(snapshot), [target], backoff=BACKOFF)
    assert (result.channel, result.ok, result.attempts) == ("apprise", True, 2)
    [message] = receiver.accepted
    assert message["title"] == "crawler: 1 newly dead, 1 recovered"
    assert message["message"].splitlines() == [
        "Source: https://n.example/article",
        "newly-dead: https://n.example/gone?api_key=*** (HTTP 404)",
        "recovered: https://n.example/back",
    ]


async def test_apprise_refuses_an_unknown_scheme_without_raising() -> None:
    pytest.importorskip("apprise")
    snapshot = flagged_snapshot()
    [result] = await notify_apprise(
        snapshot, alert_events(snapshot), ["nosuch://x"], backoff=BACKOFF
    )
    assert (result.ok, result.attempts, result.error) == (
        False,
        1,
        "apprise does not accept this URL",
    )
