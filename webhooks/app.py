"""The composition root: `create_app(settings)` wires storage, services and routes together."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.engine import make_url

from bot.appointments_links import appointment_link
from bot.binding import ChatRouter
from bot.catalog import LoadedScript, ScriptCatalog
from bot.dispatcher import Dispatcher, RetryPolicy, Sender
from bot.first_contact import FIRST_CONTACT, FirstContactPolicy, QuietHours
from bot.intake import IntakeService
from bot.pacing import PaceRule
from bot.routing import RouteRule
from bot.scheduler import TimerRunner
from bot.service import SEND_TEXT, ConversationService
from bot.tokens import TokenSigner
from storage.db import connect
from storage.migrate import ensure_current
from storage.transactions import SqlStorage
from webhooks import appointments_ics, pages, retention, webchat
from webhooks.channels import telegram, telegram_reps, tiktok_dm, twilio
from webhooks.channels.telegram_reps_watch import CHANNEL as CHANNEL_REPS
from webhooks.channels.telegram_reps_watch import RepsWatcher
from webhooks.channels.telegram_sender import TelegramSender
from webhooks.channels.tiktok_dm_sender import senders as tiktok_senders
from webhooks.channels.twilio_sender import senders as twilio_senders
from webhooks.console import routes as console
from webhooks.console.live import CONSOLE_HUB
from webhooks.crm import wiring as crm
from webhooks.http import errors_as_json
from webhooks.keys import (
    CATALOG,
    CLOCK,
    CONVERSATIONS,
    DATABASE,
    DISPATCHER,
    INTAKE,
    REPS_NOTIFIER,
    ROUTER,
    SETTINGS,
    SIGNER,
    STORAGE,
    TELEGRAM_BOT,
    TEMPLATES,
)
from webhooks.metrics import count_turn
from webhooks.routes import intake, ops
from webhooks.scriptfiles import read_script, script_files
from webhooks.senders import ChannelSender
from webhooks.settings import (
    Settings,
    SettingsError,
    TelegramSettings,
    TikTokSettings,
    TwilioSettings,
)


def now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> web.Application:
    """Everything that can be checked before serving is checked here, once: scripts, routes,
    secrets. Resources (database, dispatcher) open in cleanup contexts when the app starts."""
    catalog = load_catalog(settings)
    app = web.Application(middlewares=[errors_as_json], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = now  # tests set their own before the app starts
    app[CATALOG] = catalog
    app[SIGNER] = TokenSigner(_secret_key(settings), settings.token_lifetime)
    app[TEMPLATES] = Environment(
        loader=PackageLoader("webhooks", "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=False,
    )
    if settings.telegram.token is not None:
        app.cleanup_ctx.append(telegram.bot_context)  # before storage: its sender needs the Bot
    if settings.twilio.enabled:
        app.cleanup_ctx.append(twilio.client_context)  # before storage, likewise
    if settings.tiktok.sends_messages:
        app.cleanup_ctx.append(tiktok_dm.client_context)  # before storage, likewise
    app.cleanup_ctx.append(_storage_context)
    app.cleanup_ctx.append(_dispatcher_context)
    crm.setup(app)  # its worker starts after the dispatcher; its watcher is used below
    app.cleanup_ctx.append(retention.retention_context)  # erases leads past their keeping
    intake.setup(app)
    pages.setup(app)
    appointments_ics.setup(app)  # GET /a/{token}.ics: a booking's calendar file
    webchat.setup(app)
    telegram.setup(app)
    twilio.setup(app)
    tiktok_dm.setup(app)
    ops.setup(app)
    console.setup(app)
    return app


def load_catalog(settings: Settings) -> ScriptCatalog:
    """The scripts from settings (or the examples shipped inside the package), all checked."""
    sources = settings.scripts or [Path(str(importlib.resources.files("webhooks") / "examples"))]
    loaded: list[LoadedScript] = []
    problems: list[str] = []
    for path in script_files(sources):
        if not path.exists():
            problems.append(f"{path}: no such file")
            continue
        result = read_script(path)
        if result.script is None:
            problems.extend(problem.render() for problem in result.errors)
        else:
            loaded.append(LoadedScript(result.script, path.read_text(encoding="utf-8")))
    if problems:
        raise SettingsError("scripts do not load:\n  " + "\n  ".join(problems))
    if not loaded:
        raise SettingsError("no scripts found: set scripts (LEADBOT_SCRIPTS) to files or folders")
    catalog = ScriptCatalog(loaded, handoff_timeout=settings.handoff_timeout)
    known = set(catalog.ids())
    wanted = {settings.default_script} | {r.script for r in settings.routes}
    wanted |= {relay.script for relay in settings.relays.values()}
    unknown = sorted(s for s in wanted if s is not None and s not in known)
    if unknown:
        raise SettingsError(
            f"unknown script(s) {', '.join(unknown)} in default_script, routes or relays "
            f"(loaded: {', '.join(sorted(known))})"
        )
    return catalog


def default_script(settings: Settings, catalog: ScriptCatalog) -> str:
    return settings.default_script or catalog.ids()[0]


def route_rules(settings: Settings) -> list[RouteRule]:
    rules = [RouteRule(**route.model_dump()) for route in settings.routes]
    rules += [
        RouteRule(script=relay.script, source=f"api:{name}")
        for name, relay in settings.relays.items()
        if relay.script is not None
    ]
    return rules


def _secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if not settings.embedded:
        raise SettingsError(
            "secret_key (LEADBOT_SECRET_KEY): required with PostgreSQL, the same on every "
            "worker; it signs the links that bring prospects into chat"
        )
    # Embedded mode: one key, kept beside the database, so links survive restarts.
    database = make_url(settings.database_url).database or "leadbot.db"
    path = Path(database).with_suffix(".secret") if database != ":memory:" else None
    if path is None:
        return secrets.token_bytes(32)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


async def _storage_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    clock = app[CLOCK]
    database = connect(settings.database_url)
    await ensure_current(database, auto_upgrade=settings.embedded)
    storage = SqlStorage(database)
    app[DATABASE] = database
    app[STORAGE] = storage
    bot = app.get(TELEGRAM_BOT)
    senders: dict[str, Sender] = {}
    if bot is not None:
        senders["telegram"] = TelegramSender(bot)
    senders.update(twilio_senders(app))
    senders.update(tiktok_senders(app))
    sender = ChannelSender(app, senders)
    # The reps' Telegram group (telegram.reps_chat_id): cards and notes are outbox rows too.
    group_senders = telegram_reps.open_group(app, clock)
    dispatcher = Dispatcher(
        storage,
        {SEND_TEXT: sender, FIRST_CONTACT: sender, **group_senders},
        clock,
        policy=RetryPolicy(first_delay=timedelta(seconds=settings.dispatcher_first_retry_seconds)),
        pacing=_pacing(settings),
        window_templates=_window_templates(settings),
    )
    app[DISPATCHER] = dispatcher

    def committed() -> None:  # wake whoever has new work: the outbox, the CRM deliveries
        dispatcher.wake()
        crm.wake(app)

    app[CONVERSATIONS] = ConversationService(
        storage,
        app[CATALOG],
        clock,
        on_commit=committed,
        on_turn=lambda channel: count_turn(app, channel),
        on_change=app[CONSOLE_HUB].changed,  # the reps' console shows it live
        # Booking confirmations carry <public_url>/a/<token>.ics (bot.appointments_links).
        appointment_links=lambda appointment_id: appointment_link(
            settings.base_url, app[SIGNER], appointment_id, clock()
        ),
        # Written with each turn: what the reps' Telegram group must hear of it, and the
        # CRM's events.
        watchers=[
            *([RepsWatcher(app[REPS_NOTIFIER].chat_id)] if REPS_NOTIFIER in app else []),
            app[crm.CRM_WATCHER],
        ],
    )
    quiet = settings.first_contact.quiet_hours
    app[INTAKE] = IntakeService(
        storage,
        app[CATALOG],
        app[SIGNER],
        clock,
        rules=route_rules(settings),
        default_script=default_script(settings, app[CATALOG]),
        first_contact=FirstContactPolicy(
            QuietHours(quiet.start, quiet.end),
            settings.first_contact.timezone,
            frozenset(_sending_channels(settings)),
        ),
        on_commit=committed,
        watchers=[app[crm.CRM_WATCHER]],  # lead.created commits with the lead
    )
    app[ROUTER] = ChatRouter(
        app[CONVERSATIONS],
        app[INTAKE],
        app[SIGNER],
        phone_match=settings.token_lifetime,
    )
    yield
    await storage.close()
    await database.dispose()


def _pacing(settings: Settings) -> dict[str, PaceRule]:
    """Each channel's sending limits, from its settings."""

    def rule(channel: TelegramSettings | TwilioSettings | TikTokSettings) -> PaceRule:
        return PaceRule(per_chat=channel.per_chat_seconds, per_second=channel.per_second)

    twilio_rule = rule(settings.twilio)  # one number sends SMS and WhatsApp alike
    return {
        "telegram": rule(settings.telegram),
        CHANNEL_REPS: telegram_reps.pace_rule(settings.telegram),
        "sms": twilio_rule,
        "whatsapp": twilio_rule,
        "tiktok": rule(settings.tiktok),
    }


def _sending_channels(settings: Settings) -> list[str]:
    """The phone channels this server can write first on."""
    account = settings.twilio
    channels = []
    if account.enabled and account.sms_number:
        channels.append("sms")
    if account.enabled and account.whatsapp_number:
        channels.append("whatsapp")
    return channels


def _window_templates(settings: Settings) -> dict[str, str]:
    """Templates sent in place of messages that fall outside a channel's window."""
    template = settings.twilio.whatsapp_window_template
    return {"whatsapp": template} if template is not None else {}


async def _dispatcher_context(app: web.Application) -> AsyncIterator[None]:
    """The background work: the outbox dispatcher, and the timers (reminders and expiry after
    silence, the wait for a rep)."""
    settings = app[SETTINGS]
    quiet = settings.first_contact.quiet_hours
    timers = TimerRunner(
        app[STORAGE],
        app[CONVERSATIONS],
        app[CLOCK],
        # Reminders keep first contact's quiet hours: neither answers the prospect.
        quiet=FirstContactPolicy(
            QuietHours(quiet.start, quiet.end), settings.first_contact.timezone
        ),
    )
    tasks = [
        asyncio.create_task(app[DISPATCHER].run(), name="leadbot-dispatcher"),
        asyncio.create_task(timers.run(), name="leadbot-timers"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
