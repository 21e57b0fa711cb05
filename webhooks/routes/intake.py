"""Lead intake routes: TikTok, relays (Zapier, LeadsBridge, Make, APIs) and Google Ads."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from bot.intake import AcceptedLead
from bot.records import Submission
from webhooks.deeplinks import links_for
from webhooks.http import json_error, read_json_body
from webhooks.intake.common import IntakeError
from webhooks.intake.google import parse_google
from webhooks.intake.relay import parse_relay, verify_relay
from webhooks.intake.tiktok import parse_tiktok, verify_tiktok
from webhooks.keys import CATALOG, INTAKE, SETTINGS
from webhooks.metrics import count_intake


def setup(app: web.Application) -> None:
    app.router.add_post("/leads/tiktok", tiktok_leads)
    app.router.add_post("/leads/google", google_leads)
    app.router.add_post("/leads", relay_leads)


def _not_configured(what: str, setting: str) -> web.Response:
    return json_error(404, "not_configured", f"{what} is not enabled here: set {setting}")


async def tiktok_leads(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.tiktok.app_secret is None:
        return _not_configured(
            "TikTok lead intake", "tiktok.app_secret (LEADBOT_TIKTOK__APP_SECRET)"
        )
    try:
        body = await read_json_body(request, max_bytes=settings.max_body_bytes)
        verify_tiktok(
            body, request.headers, settings.tiktok.app_secret.get_secret_value(), datetime.now(UTC)
        )
        submissions = parse_tiktok(body)
    except IntakeError as error:
        count_intake(request.app, "tiktok", error.code)
        return json_error(error.status, error.code, error.message)
    accepted = await request.app[INTAKE].submit(submissions)
    return _accepted(request, "tiktok", accepted, created_status=200)


async def google_leads(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.google.key is None:
        return _not_configured("Google Ads lead intake", "google.key (LEADBOT_GOOGLE__KEY)")
    try:
        body = await read_json_body(request, max_bytes=settings.max_body_bytes)
        submission = parse_google(body, settings.google.key.get_secret_value())
    except IntakeError as error:
        count_intake(request.app, "google", error.code)
        return json_error(error.status, error.code, error.message)
    accepted = await request.app[INTAKE].submit([submission])
    return _accepted(request, "google", accepted, created_status=200)


async def relay_leads(request: web.Request) -> web.Response:
    """One flat JSON lead. `?source=NAME` picks the relay (optional when only one is set);
    `?script=ID` picks the script (else the routes and the default decide)."""
    settings = request.app[SETTINGS]
    if not settings.relays:
        return _not_configured(
            "The JSON lead API", "relays.<name> (LEADBOT_RELAYS__<NAME>__API_KEYS)"
        )
    name = request.query.get("source") or (
        next(iter(settings.relays)) if len(settings.relays) == 1 else ""
    )
    relay = settings.relays.get(name)
    if relay is None:  # names are not listed: a caller without a key learns nothing
        return json_error(400, "unknown_source", "say which relay sends this with ?source=NAME")
    script_id = request.query.get("script")
    if script_id is not None and script_id not in request.app[CATALOG].ids():
        return json_error(404, "unknown_script", f"no script with id {script_id!r}")
    try:
        body = await read_json_body(request, max_bytes=settings.max_body_bytes)
        verify_relay(
            body,
            request.headers,
            api_keys=[key.get_secret_value() for key in relay.api_keys],
            hmac_secret=relay.hmac_secret.get_secret_value() if relay.hmac_secret else None,
        )
        submission: Submission = parse_relay(
            body, source=f"api:{name}", mapping=relay.mapping, id_field=relay.id_field
        )
    except IntakeError as error:
        count_intake(request.app, f"api:{name}", error.code)
        return json_error(error.status, error.code, error.message)
    accepted = await request.app[INTAKE].submit([submission], script_id)
    return _accepted(request, f"api:{name}", accepted)


def _accepted(
    request: web.Request, source: str, accepted: list[AcceptedLead], created_status: int = 201
) -> web.Response:
    """Providers (TikTok, Google) get 200 whatever happened, as they expect; the API says 201
    when it stored something new."""
    for lead in accepted:
        count_intake(request.app, source, "created" if lead.created else "duplicate")
    base = request.app[SETTINGS].base_url
    leads = [
        {
            "id": lead.lead_id,
            "reference": lead.reference,
            "created": lead.created,
            "script": lead.script_id,
            "chooser_url": f"{base}/r/{lead.token}",
            "links": links_for(request.app[SETTINGS], lead.token, lead.reference),
        }
        for lead in accepted
    ]
    status = created_status if any(lead.created for lead in accepted) else 200
    return web.json_response({"accepted": len(leads), "leads": leads}, status=status)
