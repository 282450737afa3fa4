"""Peers: LinkChecker (PyPI) and linkinator (npm), installed by the bench under bench/.peers/.

Neither goes into the project's virtualenv: LinkChecker gets its own venv in
`bench/.peers/venv`, linkinator is installed with npm into `bench/.peers/node_modules`. A peer
that cannot be installed is skipped with a note. Each peer checks the flat article served as
an HTML page of links by the fake web; its output is parsed for the URLs it calls broken.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
LINKCHECKER = PEERS_DIR / "venv" / "bin" / "linkchecker"
LINKINATOR = PEERS_DIR / "node_modules" / "linkinator" / "build" / "src" / "cli.js"
INSTALL_TIMEOUT = 300.0


def _run_install(argv: list[str], cwd: Path) -> str | None:
    """Run one install step; None when it worked, else a one-line reason."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"{' '.join(argv[:3])} failed: {tail[0]}"
    return None


def ensure_linkchecker() -> str | None:
    """Install LinkChecker into its own venv when missing; None when ready, else why not."""
    if LINKCHECKER.exists():
        return None
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    venv = PEERS_DIR / "venv"
    return _run_install([sys.executable, "-m", "venv", str(venv)], PEERS_DIR) or _run_install(
        [str(venv / "bin" / "pip"), "install", "--quiet", "linkchecker"], PEERS_DIR
    )


def ensure_linkinator() -> str | None:
    """Install linkinator with npm when missing; None when ready, else why not."""
    if LINKINATOR.exists():
        return None
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "node/npm not found"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), "linkinator"]
    return _run_install(npm, PEERS_DIR)


def peer_version(name: str) -> str:
    """The installed version of a peer, for the results table."""
    if name.startswith("linkinator"):
        package = LINKINATOR.parents[2] / "package.json"
        return str(json.loads(package.read_text())["version"]) if package.exists() else "?"
    try:
        done = subprocess.run(
            [str(LINKCHECKER), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = done.stdout.split("\n", 1)[0].split()
    return first[1] if len(first) > 1 else "?"


def linkinator_argv(article_url: str, concurrency: int) -> list[str]:
    """linkinator with its defaults (no retries), at the bench's concurrency."""
    return [
        "node",
        str(LINKINATOR),
        article_url,
        "--format",
        "json",
        "--concurrency",
        str(concurrency),
    ]


def parse_linkinator(stdout: str) -> set[str]:
    """URLs linkinator reports BROKEN."""
    data = json.loads(stdout[stdout.index("{") :])
    return {link["url"] for link in data.get("links", []) if link.get("state") == "BROKEN"}


def write_linkchecker_config(path: Path, throttle: bool) -> Path:
    """A linkcheckerrc: default throttle (10 requests/s per host), or effectively none."""
    lines = ["[checking]"]
    if not throttle:
        # Above 10/s LinkChecker also needs the site's `LinkChecker` header (the fake web sends it).
        lines.append("maxrequestspersecond=1000")
    path.write_text("\n".join(lines) + "\n")
    return path


def linkchecker_argv(article_url: str, threads: int, config: Path) -> list[str]:
    """LinkChecker: the article page and the links on it (recursion level 1), external checked."""
    return [
        str(LINKCHECKER), "--config", str(config), "--check-extern", "--recursion-level", "1",
        "--threads", str(threads), "--no-status", "--output", "csv", article_url,
    ]  # fmt: skip


def parse_linkchecker(stdout: str) -> set[str]:
    """URLs LinkChecker reports invalid (its CSV logs errors and warnings only)."""
    rows = [line for line in stdout.splitlines(keepends=True) if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("".join(rows)), delimiter=";")
    return {row["urlname"] for row in reader if row.get("valid") == "False" and row.get("urlname")}
