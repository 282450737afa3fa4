"""The HTML report and the dashboard in a real headless browser: Debian's chromium, driven over
the DevTools protocol (aiohttp's WebSocket client; nothing is downloaded). Skips cleanly when
/usr/bin/chromium is absent. Screenshots of each main page go to tests/artifacts/."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crawler.crawl import run_crawl
from crawler.report import render_html
from tests.fakesite import ARTICLE, FakeSite
from tests.test_crawl import fast_settings
from tests.test_dashboard import Filled, dashboard
from tests.test_dashboard import filled as filled
from tests.test_report_formats import HOSTILE_TITLE, hostile_snapshot

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STEP_TIMEOUT = 15.0
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)  # fmt: skip

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")

# The tree nodes a visitor can see: not hidden, not inside a closed <details> (whose content
# Chromium hides with content-visibility, which checkVisibility() reports and layout does not).
VISIBLE_NODES = """(() => [...document.querySelectorAll('li.node')].filter(li =>
  li.checkVisibility()).map(li => li.id))()"""


class Page:
    """One browser tab over the DevTools protocol: navigate, evaluate, click, screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait (bounded) for its answer; events in between are dropped."""
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                message = json.loads(await self.ws.receive_str())
                if message.get("id") == ident:
                    if "error" in message:
                        raise AssertionError(f"{method}: {message['error']}")
                    return dict(message.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            state = await self.evaluate("document.readyState + ' ' + location.href")
            if state == f"complete {url}":
                return
        raise AssertionError(f"{url} did not load")

    async def click(self, selector: str) -> None:
        """Click the first element matching `selector` (as a user would, events included)."""
        clicked = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        assert clicked, f"nothing matches {selector}"

    async def screenshot(self, name: str) -> Path:
        """Save a PNG of the whole page (up to 5000 px tall) into tests/artifacts/."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 5000)}
        shot = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={**clip, "scale": 1},
        )
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def browser(profile: Path) -> AsyncIterator[Page]:
    """Start chromium with a fresh profile, yield its first tab, stop it."""
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _devtools_port(profile, proc)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                yield page
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 5)


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process) -> int:
    """The DevTools port chromium picked, from its DevToolsActivePort file (bounded wait)."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


# -- the report file -------------------------------------------------------------------------
async def test_report_tree_expands_and_filters(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=2)
    snap = await run_crawl(fake_site.url(ARTICLE), settings)
    report = tmp_path / "report.html"
    report.write_text(render_html(snap))
    summary = snap.summary()
    assert max(n.depth for n in snap.root.walk()) >= 3, "the test needs a deep tree"
    async with browser(tmp_path / "profile") as page:
        await page.goto(report.as_uri())
        assert (
            await page.evaluate("document.querySelectorAll('li.node').length") == summary["nodes"]
        )
        initially = set(await page.evaluate(VISIBLE_NODES))
        await page.screenshot("report")
        await page.click('button[data-level="99"]')  # expand all
        everything = set(await page.evaluate(VISIBLE_NODES))
        assert len(everything) == summary["nodes"] > len(initially)
        depth = {f"n{i}": n.depth for i, n in enumerate(snap.root.walk())}
        for level in (0, 1, 2):
            await page.click(f'button[data-level="{level}"]')
            shown = set(await page.evaluate(VISIBLE_NODES))
            assert shown == {ident for ident, d in depth.items() if d <= level}
        assert initially == {ident for ident, d in depth.items() if d <= 2}
        await page.click('input[value="dead"]')
        dead = await page.evaluate(VISIBLE_NODES.replace("li.node", 'li.node[data-verdict="dead"]'))
        assert len(dead) == summary["dead"] > 0
        shown_dead = await page.evaluate(VISIBLE_NODES)
        assert [i for i in shown_dead if not await _is_or_holds(page, i, "dead")] == []
        await page.screenshot("report-dead-only")
        await page.click('input[value="duplicate"]')
        dups = await page.evaluate(VISIBLE_NODES.replace("li.node", "li.node[data-dup]"))
        assert len(dups) == summary["duplicates"] > 0
        await page.click('input[value="all"]')  # nothing hidden any more
        assert set(await page.evaluate(VISIBLE_NODES)) >= {i for i, d in depth.items() if d <= 2}


async def _is_or_holds(page: Page, ident: str, verdict: str) -> bool:
    """True when node `ident` has `verdict` or has a descendant with it."""
    sel = json.dumps(f'li.node[data-verdict="{verdict}"]')
    return bool(
        await page.evaluate(
            f"(() => {{ const li = document.getElementById({json.dumps(ident)});"
            f" return li.matches({sel}) || !!li.querySelector({sel}); }})()"
        )
    )


async def test_hostile_report_runs_no_injected_script(tmp_path: Path) -> None:
    report = tmp_path / "hostile.html"
    report.write_text(render_html(hostile_snapshot()))
    async with browser(tmp_path / "profile") as page:
        await page.goto(report.as_uri())
        await asyncio.sleep(0.3)  # an onerror handler would have fired by now
        assert await page.evaluate("typeof window.__xss") == "undefined"
        assert await page.evaluate("document.images.length") == 0
        text = await page.evaluate("document.body.innerText")
        assert HOSTILE_TITLE in text
        # Our own script did run (the filters work under the CSP).
        await page.click('input[value="dead"]')
        assert await page.evaluate(VISIBLE_NODES) == ["n0", "n1"]
        await page.screenshot("report-hostile")


# -- the dashboard ---------------------------------------------------------------------------
async def test_dashboard_pages_render(tmp_path: Path, filled: Filled) -> None:
    first, last = filled.watched[0], filled.watched[-1]
    with dashboard(filled.data_dir) as base:
        async with browser(tmp_path / "profile") as page:
            await page.goto(base + "/")
            assert await page.evaluate("document.querySelector('h1').textContent") == (
                "Watched articles"
            )
            rows = await page.evaluate("document.querySelectorAll('#watches tbody tr').length")
            assert rows == 3
            assert await page.evaluate("document.images.length") == 0
            await page.screenshot("dashboard-watches")
            await page.goto(base + "/snapshots")
            assert (
                await page.evaluate("document.querySelectorAll('#snapshots tbody tr').length") == 4
            )
            await page.screenshot("dashboard-snapshots")
            await page.goto(f"{base}/snapshots/{last}")
            await page.click('input[value="dead"]')
            dead = await page.evaluate(
                VISIBLE_NODES.replace("li.node", 'li.node[data-verdict="dead"]')
            )
            assert len(dead) == 2
            assert await page.evaluate("document.querySelectorAll('.timeline i').length") >= 15
            await page.screenshot("dashboard-snapshot")
            await page.goto(base + "/dead")
            assert await page.evaluate("document.querySelectorAll('#dead tbody tr').length") == 2
            await page.screenshot("dashboard-dead")
            await page.goto(f"{base}/diff?a={first}&b={last}")
            changes = await page.evaluate("document.querySelectorAll('#verdict-changes li').length")
            assert changes >= 1
            await page.screenshot("dashboard-diff")
