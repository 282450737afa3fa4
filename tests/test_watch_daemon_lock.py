"""One `crawler daemon` per SQLite store: a second one refuses to start, the lock dies with its
holder (a SIGKILL too). Real daemon subprocesses, bounded waits, killed in `finally`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.test_daemon import REPO, Daemon, write_config

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


async def refused(config: Path) -> tuple[int, str]:
    """Run a second daemon on `config`; its exit code and stderr (it must end on its own)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--config", str(config), "daemon",
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CRAWLER_CONFIG": ""},
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_second_daemon_on_one_store_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path / "crawler.toml", tmp_path / "data", [])
    first = Daemon(config, tmp_path / "first.log")
    try:
        await first.start()
        assert first.proc is not None
        code, err = await refused(config)
        database = tmp_path / "data" / "crawler.db"
        assert code == 1 and "Traceback" not in err
        assert err.strip() == (
            f"crawler: error: another crawler daemon (pid {first.proc.pid}) already runs on "
            f"{database}"
        )
        first.proc.kill()  # a crash: the kernel drops the lock with the process
        await asyncio.wait_for(first.proc.wait(), 10)
        second = Daemon(config, tmp_path / "second.log")
        try:
            await second.start()
            assert await second.stop() == 0
        finally:
            await second.kill()
    finally:
        await first.kill()
