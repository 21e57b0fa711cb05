"""One conversation in the console: its transcript (live), the lead card, who holds it, the
audit trail, and the rep's actions as forms. The same data as JSON for scripts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from bot.records import Window
from bot.windows import Hold, verdict
from storage import console_queries as queries
from storage.reps import Rep
from webhooks.console.auth import current_rep, login_required, refuse, wants_json
from webhooks.console.csrf import csrf_token
from webhooks.console.live import conversation_id_of, cursor
from webhooks.console.pages import console_page
from webhooks.console.present import (
    ACTION_LABELS,
    AUTHOR_LABELS,
    DELIVERY_LABELS,
    answer_rows,
    channel_label,
    conversation_json,
    display_name,
    field_rows,
    humanised,
    outcome_choices,
    script_of,
    status_label,
    utc,
    value_text,
    waited,
)
from webhooks.keys import CATALOG, DATABASE, SETTINGS

NO_STORE = {"Cache-Control": "no-store"}
# The engine's state says what the rep may do; a closed or opted-out conversation is over.
OVER = frozenset({"closed", "opted_out"})


@dataclass(frozen=True, slots=True)
class Allowed:
    """The actions the page offers (the service decides: a stale page gets a clear refusal)."""

    take_over: bool
    write: bool
    hand_back: bool
    close: bool


def allowed(detail: queries.ConversationDetail, rep: Rep) -> Allowed:
    status = str(detail.state.get("status", detail.status))
    mine = detail.held_by == rep.id
    other = detail.held_by is not None and not mine
    return Allowed(
        take_over=not mine and not other and status not in OVER,
        write=mine,
        hand_back=mine,
        close=not other and status not in OVER,
    )


def window_notice(detail: queries.ConversationDetail, template: str | None) -> str | None:
    """What the channel's messaging window does to a rep's message now, when it matters."""
    window = Window(detail.last_inbound_at, detail.sent_since_inbound)
    now = datetime.now(UTC)
    held = verdict(detail.channel, {}, window, now, None)
    if not isinstance(held, Hold):
        return None
    if template is not None and detail.channel == "whatsapp":
        closed = held.reason.split(";")[0]
        return (
            f"{closed[0].upper()}{closed[1:]}: your message goes out as the approved template "
            f"{template}, and the prospect's reply reopens the window."
        )
    return f"Your message will be held: {held.reason}."


async def render(
    request: web.Request,
    conversation_id: int,
    *,
    status: int = 200,
    alert: str | None = None,
) -> web.StreamResponse:
    """The conversation's page, with `alert` on top when an action failed (or its JSON)."""
    database = request.app[DATABASE]
    detail = await queries.conversation(database, conversation_id)
    if detail is None:
        return refuse(request, 404, "not_found", f"no conversation {conversation_id}")
    lines, truncated = await queries.transcript(database, conversation_id)
    audit = await queries.audit_trail(database, conversation_id)
    if wants_json(request):
        return web.json_response(conversation_json(detail, lines, audit), headers=NO_STORE)
    rep = await current_rep(request)
    if rep is None:  # login_required let in a rep: the console takes no API keys
        return refuse(request, 403, "forbidden", "log in as a rep")
    lead = detail.lead
    script = script_of(request.app[CATALOG], detail.script_id)
    now = datetime.now(UTC)
    waiting_for = None
    if detail.status == "handed_off":
        waiting_for = waited((now - detail.updated_at).total_seconds())
        said = [line for line in lines if line.author in ("bot", "rep")]
        if said:
            waiting_for = waited((now - said[-1].created_at).total_seconds())
    template = request.app[SETTINGS].twilio.whatsapp_window_template
    nonce = secrets.token_urlsafe(16)
    return console_page(
        request,
        "console_conversation.html",
        status=status,
        script_nonce=nonce,
        title=f"{display_name(lead.fields, lead.reference)} · leadbot",
        rep=rep,
        csrf_token=csrf_token(request),
        alert=alert,
        c=detail,
        lead=lead,
        name=display_name(lead.fields, lead.reference),
        status_label=status_label(detail.status),
        channel=channel_label(detail.channel),
        waiting_for=waiting_for,
        lines=lines,
        truncated=truncated,
        audit=audit,
        fields=field_rows(lead.fields, script),
        answers=answer_rows(lead.answers, script, lead.language),
        attribution=[
            (humanised(k).replace("Utm ", "UTM "), value_text(v))
            for k, v in lead.attribution.items()
        ],
        can=allowed(detail, rep),
        window=window_notice(detail, template),
        outcomes=outcome_choices(script),
        authors=AUTHOR_LABELS,
        deliveries=DELIVERY_LABELS,
        actions=ACTION_LABELS,
        utc=utc,
        stream_from=cursor(
            lines[-1].id if lines else 0, audit[-1].id if audit else 0, detail.version
        ),
        base=f"/console/conversations/{detail.id}",
    )


@login_required
async def conversation_page(request: web.Request) -> web.StreamResponse:
    conversation_id = conversation_id_of(request)
    if conversation_id is None:
        return refuse(request, 404, "not_found", "no such conversation")
    return await render(request, conversation_id)
