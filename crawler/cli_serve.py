"""`crawler serve`: the dashboard (registered by crawler/cli.py through COMMANDS)."""

from __future__ import annotations

import os

import click

from crawler.cliutil import Context, pass_context

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
    help="Port to listen on (0: any free port).",
)  # fmt: skip
@pass_context
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the dashboard: watches, snapshots, dead links, diffs, /healthz and /metrics.

    Read-only unless $CRAWLER_DASHBOARD_TOKEN is set; adding a watch or running one now
    then needs that token.
    """
    from crawler.errors import CrawlerError
    from crawler.web import TOKEN_ENV, serve_dashboard

    token = os.environ.get(TOKEN_ENV) or None
    mode = "actions need the token" if token else "read-only"

    def ready(url: str) -> None:
        click.echo(f"crawler: dashboard on {url} ({mode}); Ctrl-C stops it", err=True)

    try:
        serve_dashboard(ctx.settings(), host=host, port=port, token=token, ready=ready)
    except OSError as exc:
        raise CrawlerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


COMMANDS: list[click.Command] = [serve]
