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
def serve(config: Path | None, host: str, port: int) -> None:
    """Run the server (SQLite and the example scripts when nothing is configured)."""
    try:
        settings = load_settings(config)
        configure_logging(settings.log_level, settings.log_format)
        if "public_url" not in settings.model_fields_set:
            # Nobody said where the server is reached: then it is where it listens.
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            settings = settings.model_copy(update={"public_url": f"http://{shown}:{port}"})
        app = create_app(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(banner(settings, app[CATALOG].ids(), host, port))
    settle_heap()
    # run_app stops accepting on SIGINT/SIGTERM, lets in-flight requests finish (up to the
    # timeout), then runs the cleanup contexts: dispatcher stopped, database closed.
    try:
        web.run_app(app, host=host, port=port, print=None, shutdown_timeout=30, access_log=None)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
