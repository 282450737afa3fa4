"""`crawler serve`: the dashboard (registered by crawler/cli.py through COMMANDS)."""

from __future__ import annotations

import click

from crawler.cliutil import Context, pass_context


@click.command()
@click.option("--host", help="Address to listen on (default: [dashboard] host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535),
    help="Port to listen on (default: [dashboard] port, 8080; 0: any free port).",
)  # fmt: skip
@pass_context
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the dashboard: watches, snapshots, dead links, diffs, /healthz and /metrics.

    Read-only unless a token is set ([dashboard] token, or $CRAWLER_DASHBOARD_TOKEN);
    adding a watch or running one now then needs that token.
    """
    from crawler.errors import CrawlerError
    from crawler.web import serve_dashboard

    settings = ctx.settings()
    host = host or settings.dashboard.host
    port = settings.dashboard.port if port is None else port
    token = settings.dashboard.token or None
    mode = "actions need the token" if token else "read-only"

    def ready(url: str) -> None:
        click.echo(f"crawler: dashboard on {url} ({mode}); Ctrl-C stops it", err=True)

    try:
        serve_dashboard(settings, host=host, port=port, token=token, ready=ready)
    except OSError as exc:
        raise CrawlerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


COMMANDS: list[click.Command] = [serve]
