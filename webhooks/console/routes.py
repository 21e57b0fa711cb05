"""Wiring: the console's and the API's routes, their CSRF guard, clock and password hasher."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from webhooks.console import (
    api,
    appointments,
    appointments_actions,
    desk_routes,
    login,
    privacy_api,
    stats,
)
from webhooks.console.csrf import csrf_guard
from webhooks.console.passwords import Passwords
from webhooks.crm import hooks_api
from webhooks.keys import CONSOLE_CLOCK, PASSWORDS

# Reached without a login, on purpose; every other /console and /api/v1 route needs one.
PUBLIC_ROUTES = frozenset(
    {("GET", "/console/login"), ("POST", "/console/login"), ("POST", "/console/logout")}
)


def _now() -> datetime:
    return datetime.now(UTC)


def setup(app: web.Application) -> None:
    app[CONSOLE_CLOCK] = _now
    app[PASSWORDS] = Passwords()
    app.middlewares.append(csrf_guard)
    app.router.add_get("/console/login", login.login_page)
    app.router.add_post("/console/login", login.login)
    app.router.add_post("/console/logout", login.logout)
    desk_routes.setup(app)  # the inbox, conversations, rep actions and live streams
    app.router.add_get("/api/v1/me", api.me)
    app.router.add_get("/api/v1/keys", api.list_keys)
    app.router.add_post("/api/v1/keys", api.create_key)
    app.router.add_delete("/api/v1/keys/{id}", api.revoke_key)
    hooks_api.setup(app)  # Zapier REST Hooks and lead polling (CRM delivery)
    privacy_api.setup(app)  # a lead's export and erasure
    stats.setup(app)  # the dashboard: funnel, forecast, CSV
    # Bookings per day and place; a rep moves or cancels one (the prospect is told).
    app.router.add_get(appointments.PAGE, appointments.appointments_page)
    app.router.add_post(f"{appointments.PAGE}/{{id}}/move", appointments_actions.move)
    app.router.add_post(f"{appointments.PAGE}/{{id}}/cancel", appointments_actions.cancel)
