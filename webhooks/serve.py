"""`leadbot serve`: run the application until interrupted, then stop gracefully."""

from __future__ import annotations

import gc
from pathlib import Path

import click
from aiohttp import web
from sqlalchemy.engine import make_url

from webhooks.app import create_app
from webhooks.keys import CATALOG
from webhooks.logs import configure_logging
from webhooks.settings import Settings, SettingsError, load_settings
from webhooks.workers import SHUTDOWN_TIMEOUT, listen, supervise


def banner(settings: Settings, scripts: list[str], host: str, port: int) -> str:
    base = settings.base_url
    lines = [
        f"leadbot is serving on http://{host}:{port} (public URL {base})",
        f"  database: {_safe_url(settings.database_url)}",
        "  try the whole flow: open a hosted form, submit it, pick the web chat:",
        *(f"    {base}/f/{script}" for script in scripts),
        f"  health: {base}/healthz   metrics: {base}/metrics   API: {base}/openapi.json",
    ]
    return "\n".join(lines)


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def settle_heap() -> None:
    """Take what start-up built (modules, scripts, templates: about 190,000 objects) out of the
    garbage collector's sight. Each full collection would walk them all again: a pause of about
    100 ms every few thousand requests (bench.intake), for objects that live as long as the
    process anyway."""
    gc.collect()
    gc.freeze()


@click.command("serve")
@click.option("--config", type=click.Path(path_type=Path), envvar="LEADBOT_CONFIG", default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes serving the one port (more than one needs PostgreSQL).",
)
def serve(config: Path | None, host: str, port: int, workers: int) -> None:
    """Run the server (SQLite and the example scripts when nothing is configured)."""
    try:
        settings = load_settings(config)
        if workers > 1 and settings.embedded:
            raise click.ClickException(
                f"--workers {workers} needs PostgreSQL: the embedded SQLite database is written "
                "by one process. Set LEADBOT_DATABASE_URL=postgresql+asyncpg://USER@HOST/DB "
                "(then `leadbot db upgrade`), or serve with one worker."
            )
        configure_logging(settings.log_level, settings.log_format)
        if "public_url" not in settings.model_fields_set:
            # Nobody said where the server is reached: then it is where it listens.
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            settings = settings.model_copy(update={"public_url": f"http://{shown}:{port}"})
        # Built once, before any fork: every worker starts from this checked copy.
        app = create_app(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if workers == 1:
        click.echo(banner(settings, app[CATALOG].ids(), host, port))
        settle_heap()
        # run_app stops accepting on SIGINT/SIGTERM, lets in-flight requests finish (up to the
        # timeout), then runs the cleanup contexts: dispatcher stopped, database closed.
        try:
            web.run_app(
                app,
                host=host,
                port=port,
                print=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
                access_log=None,
            )
        except OSError as error:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {error.strerror}"
            ) from None
        return
    try:
        listening = listen(host, port)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    click.echo(banner(settings, app[CATALOG].ids(), host, port))
    click.echo(f"  workers: {workers} processes on one socket")
    settle_heap()  # before the fork: the frozen start-up objects stay shared, copy-on-write
    code = supervise(app, listening, workers)
    if code != 0:
        raise SystemExit(code)
