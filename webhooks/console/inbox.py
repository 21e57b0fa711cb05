"""The console's inbox (GET /console): conversations by state and channel, newest activity
first, searchable by name, phone, email or reference code; waiting ones stand out."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from storage import console_inbox as queries
from webhooks.console.auth import current_rep, login_required, refuse, wants_json
from webhooks.console.csrf import csrf_token
from webhooks.console.pages import console_page
from webhooks.console.present import (
    CHANNEL_LABELS,
    TABS,
    ago,
    channel_label,
    display_name,
    inbox_json,
    status_label,
    waited,
)
from webhooks.console.search import search_terms
from webhooks.keys import CATALOG, DATABASE

PAGE_SIZE = 25
MAX_PAGE = 10_000
_PAGE = re.compile(r"[0-9]{1,5}")


def _regions(request: web.Request) -> list[str | None]:
    """The regions the scripts are written for: a typed national number is read in each."""
    catalog = request.app[CATALOG]
    return [catalog.current(script_id).script.spec.region for script_id in catalog.ids()]


@login_required
async def inbox(request: web.Request) -> web.StreamResponse:
    query = request.query
    state = query.get("state", "")
    tabs = {value: statuses for value, _, statuses in TABS}
    if state and state not in tabs:
        known = ", ".join(tabs)
        return refuse(request, 400, "bad_request", f"unknown state {state[:40]!r}: use {known}")
    channel = query.get("channel", "")
    if channel and channel not in CHANNEL_LABELS:
        known = ", ".join(CHANNEL_LABELS)
        return refuse(request, 400, "bad_request", f"unknown channel {channel[:40]!r}: use {known}")
    raw_page = query.get("page", "1")
    page = int(raw_page) if _PAGE.fullmatch(raw_page) else 1
    page = min(max(page, 1), MAX_PAGE)
    text = query.get("q", "")
    terms = search_terms(text, _regions(request))
    database = request.app[DATABASE]
    found = await queries.inbox(
        database,
        statuses=tabs[state] if state else None,
        channel=channel or None,
        search=terms,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    waiting, oldest = await queries.waiting(database)
    now = datetime.now(UTC)
    if wants_json(request):
        body = {
            "conversations": [inbox_json(row, now) for row in found.rows],
            "page": page,
            "has_more": found.has_more,
            "counts": dict(found.counts),
            "waiting": waiting,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})
    rep = await current_rep(request)

    def link(**changes: str | int | None) -> str:
        wanted: dict[str, str | int | None] = {
            "state": state,
            "channel": channel,
            "q": terms.text if terms else "",
            "page": None,
            **changes,
        }
        kept = {key: value for key, value in wanted.items() if value not in (None, "", 1)}
        return "/console" + ("?" + urlencode(kept) if kept else "")

    counts = found.counts
    tab_links = [
        {
            "value": "",
            "label": "All",
            "count": sum(counts.values()),
            "href": link(state=None),
            "current": not state,
        },
        *(
            {
                "value": value,
                "label": label,
                "count": sum(counts.get(status, 0) for status in statuses),
                "href": link(state=value),
                "current": state == value,
            }
            for value, label, statuses in TABS
        ),
    ]
    rows = [
        {
            "id": row.id,
            "name": display_name(row.fields, row.reference),
            "reference": row.reference,
            "channel": channel_label(row.channel),
            "status": row.status,
            "status_label": status_label(row.status),
            "held_by_name": row.held_by_name,
            "activity": ago(row.updated_at, now),
            "activity_at": row.updated_at.isoformat(),
            "waiting_seconds": int((now - row.waiting_since).total_seconds())
            if row.waiting_since is not None
            else None,
            "waited": waited((now - row.waiting_since).total_seconds())
            if row.waiting_since is not None
            else None,
            "last_author": row.last_author,
            "last_text": (row.last_text or "")[:140],
            "score": row.score,
            "is_test": row.is_test,
        }
        for row in found.rows
    ]
    return console_page(
        request,
        "console_inbox.html",
        script_nonce=secrets.token_urlsafe(16),
        title=f"({waiting}) Inbox" if waiting else "Inbox",
        heading="Inbox",
        rep=rep,
        csrf_token=csrf_token(request),
        rows=rows,
        tabs=tab_links,
        state=state,
        channel=channel,
        channels=CHANNEL_LABELS,
        q=terms.text if terms else "",
        page=page,
        newer=link(page=page - 1) if page > 1 else None,
        older=link(page=page + 1) if found.has_more else None,
        waiting=waiting,
        oldest_waited=waited((now - oldest).total_seconds()) if oldest is not None else None,
        waiting_link=link(state="waiting"),
    )
