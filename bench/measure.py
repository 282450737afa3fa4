"""Measuring one client run: a subprocess's wall time, CPU and peak RSS, and its accuracy.

`os.wait4()` gives the rusage of exactly that child (and the children it waited for), so
each run's peak RSS and CPU seconds are its own, not a running maximum over the session.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class ProcStats:
    """What one finished client process cost."""

    wall: float  # seconds from spawn to exit, interpreter start-up included
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set size, MiB
    returncode: int
    timed_out: bool


def run_process(
    argv: list[str],
    *,
    cwd: Path,
    stdout: Path,
    stderr: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> ProcStats:
    """Run a client to completion (killed after `timeout` seconds) and measure it."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        deadline = start + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline and not timed_out:
                timed_out = True
                proc.send_signal(signal.SIGKILL)
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
    return ProcStats(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        returncode=proc.returncode,
        timed_out=timed_out,
    )


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Dead-link precision and recall against the ground truth, and soft 404s caught."""

    reported: int
    true_positives: int
    truth: int
    soft404_caught: int | None
    soft404_truth: int

    @property
    def precision(self) -> float | None:
        """Share of reported dead links that are dead; None when nothing was reported."""
        return self.true_positives / self.reported if self.reported else None

    @property
    def recall(self) -> float | None:
        """Share of dead links that were reported."""
        return self.true_positives / self.truth if self.truth else None


def score(
    dead: set[str], truth: set[str], soft404: set[str] | None, soft_truth: set[str]
) -> Accuracy:
    """Compare the URLs a tool called dead (and soft 404) with the ground truth."""
    caught = None if soft404 is None else len(soft404 & soft_truth)
    return Accuracy(len(dead), len(dead & truth), len(truth), caught, len(soft_truth))


def median(values: list[float | None]) -> float | None:
    """The median of the values that exist, None when none do."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def directory_size(path: Path) -> int:
    """Total bytes of the files under a directory (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews wall-clock figures."""
    return os.getloadavg()[0]
