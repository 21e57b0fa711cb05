"""Typed keys for what the application holds (aiohttp's "no singletons": state on the app)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from jinja2 import Environment
from telegram import Bot

from bot.binding import ChatRouter
from bot.catalog import ScriptCatalog
from bot.dispatcher import Dispatcher
from bot.intake import IntakeService
from bot.service import ConversationService
from bot.tokens import TokenSigner
from storage.db import Database
from storage.transactions import SqlStorage
from webhooks.channels.telegram_reps_notify import RepsNotifier
from webhooks.console.passwords import Passwords
from webhooks.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", ScriptCatalog)
SIGNER = web.AppKey("signer", TokenSigner)
TEMPLATES = web.AppKey("templates", Environment)
DATABASE = web.AppKey("database", Database)
STORAGE = web.AppKey("storage", SqlStorage)
CONVERSATIONS = web.AppKey("conversations", ConversationService)
INTAKE = web.AppKey("intake", IntakeService)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
ROUTER = web.AppKey("chat_router", ChatRouter)
TELEGRAM_BOT = web.AppKey("telegram_bot", Bot)  # only when telegram.token is set
# The reps' Telegram group: only with telegram.token and telegram.reps_chat_id.
REPS_NOTIFIER = web.AppKey("reps_notifier", RepsNotifier)
# The clock of turns, intake, the outbox and the timers (`now` unless a test sets its own).
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# The console's clock (sessions, login throttling) and password hasher: tests set their own.
CONSOLE_CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("console_clock")
PASSWORDS = web.AppKey("passwords", Passwords)
