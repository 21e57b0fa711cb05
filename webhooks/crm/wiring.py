"""Wiring: the routes and watcher made with the app, the worker started with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web

from bot.crm_delivery import CrmDeliverer, CrmRetryPolicy
from bot.crm_records import ConfiguredHook
from bot.crm_routes import CrmRoutes
from bot.crm_watcher import CrmWatcher
from webhooks.crm.poster import HttpPoster
from webhooks.keys import CLOCK, SETTINGS, STORAGE

CRM_ROUTES = web.AppKey("crm_routes", CrmRoutes)
CRM_WATCHER = web.AppKey("crm_watcher", CrmWatcher)
CRM_DELIVERER = web.AppKey("crm_deliverer", CrmDeliverer)


def setup(app: web.Application) -> CrmWatcher:
    """Before the storage opens: the conversation service and the intake need the watcher."""
    routes = CrmRoutes()
    app[CRM_ROUTES] = routes
    app[CRM_WATCHER] = CrmWatcher(routes)
    app.cleanup_ctx.append(_delivery_context)
    return app[CRM_WATCHER]


def configured_hooks(app: web.Application) -> list[ConfiguredHook]:
    return [
        ConfiguredHook(hook.name, str(hook.url), frozenset(hook.events))
        for hook in app[SETTINGS].crm.webhooks
    ]


async def _delivery_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].crm
    storage = app[STORAGE]
    clock = app[CLOCK]
    hooks = configured_hooks(app)
    await storage.run(lambda tx: tx.crm.sync_configured(hooks, clock()))
    async with aiohttp.ClientSession() as session:
        deliverer = CrmDeliverer(
            storage,
            HttpPoster(session, settings.timeout),
            app[CRM_ROUTES],
            clock,
            secrets={h.name: h.secret.get_secret_value() for h in settings.webhooks},
            policy=CrmRetryPolicy(
                first_delay=timedelta(seconds=settings.first_retry_seconds),
                give_up_after=settings.give_up_after,
            ),
            # Longer than any post can take: a delivery is never sent twice at once.
            lease=timedelta(seconds=max(120.0, settings.timeout * 3)),
        )
        app[CRM_DELIVERER] = deliverer
        await deliverer.reload()  # before the first request: no event is missed at start
        task = asyncio.create_task(deliverer.run(), name="leadbot-crm-delivery")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def wake(app: web.Application) -> None:
    """Events were committed: the worker stops waiting (once it runs)."""
    deliverer = app.get(CRM_DELIVERER)
    if deliverer is not None and app[CRM_WATCHER].take_news():
        deliverer.wake()
