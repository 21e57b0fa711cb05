"""Wiring: the inbox, the conversation pages, the reps' actions and their live streams."""

from __future__ import annotations

from aiohttp import web

from webhooks.console import actions, conversation, inbox, live

CONVERSATION = "/console/conversations/{id}"


def setup(app: web.Application) -> None:
    live.setup(app)
    app.router.add_get("/console", inbox.inbox)
    app.router.add_get("/console/events", live.inbox_events)
    app.router.add_get(CONVERSATION, conversation.conversation_page)
    app.router.add_get(f"{CONVERSATION}/events", live.conversation_events)
    app.router.add_post(f"{CONVERSATION}/take-over", actions.take_over)
    app.router.add_post(f"{CONVERSATION}/messages", actions.write)
    app.router.add_post(f"{CONVERSATION}/hand-back", actions.hand_back)
    app.router.add_post(f"{CONVERSATION}/close", actions.close)
    app.router.add_post(f"{CONVERSATION}/notes", actions.note)
