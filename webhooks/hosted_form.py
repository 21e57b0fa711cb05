"""The hosted lead form: `/f/{script}` renders a script's lead fields, takes the post, stores
the lead and sends the prospect on to the chooser."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
from aiohttp import web
from email_validator import EmailNotValidError, validate_email

from bot.answers.contact import parse_url
from bot.answers.result import Parsed
from bot.compiled import CompiledScript, pick_language
from bot.errors import UnknownScriptError
from bot.records import Submission
from bot.spec import STANDARD_LEAD_FIELDS
from webhooks.keys import CATALOG, INTAKE, SETTINGS
from webhooks.pagekit import PAGE_TEXTS, html_page, message_page, wanted_language
from webhooks.ratelimit import RateLimiter

ATTRIBUTION_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "campaign_id",
    "adgroup_id",
    "ad_id",
    "form_id",
)
MAX_VALUE = 500  # characters per form value: enough for any name or address, bounds the work
_NONCE = re.compile(r"form-[A-Za-z0-9_-]{16,43}")
_INPUTS = {  # lead field type -> (input type, inputmode)
    "text": ("text", None),
    "email": ("email", "email"),
    "phone": ("tel", "tel"),
    "number": ("text", "decimal"),  # type=number refuses "25,000" and spins on scroll
    "url": ("url", "url"),
    "date": ("date", None),
}
_AUTOCOMPLETE = {
    "name": "name",
    "first_name": "given-name",
    "last_name": "family-name",
    "email": "email",
    "phone": "tel",
    "city": "address-level2",
    "state": "address-level1",
    "zip_code": "postal-code",
    "country": "country-name",
    "company": "organization",
    "job_title": "organization-title",
    "gender": "sex",
    "date_of_birth": "bday",
}
_SYSTEM_INPUTS = frozenset(["_nonce", "_lang", "_consent", *(f"_{k}" for k in ATTRIBUTION_KEYS)])

FORM_LIMITER = web.AppKey("form_limiter", RateLimiter)


def setup_form(app: web.Application) -> None:
    app[FORM_LIMITER] = RateLimiter(app[SETTINGS].form.per_minute, 60.0)
    app.router.add_get("/f/{script}", show_form)
    app.router.add_post("/f/{script}", submit_form)


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    type: str
    label: str
    required: bool

    @property
    def input_type(self) -> str:
        return _INPUTS.get(self.type, ("text", None))[0]

    @property
    def inputmode(self) -> str | None:
        return _INPUTS.get(self.type, ("text", None))[1]

    @property
    def autocomplete(self) -> str | None:
        return _AUTOCOMPLETE.get(self.name)


def form_fields(script: CompiledScript, language: str, texts: Mapping[str, str]) -> list[FormField]:
    """The script's lead fields. Standard ones named bare are required (the script counts on
    them); a field written out in full says itself. No fields at all: ask a first name."""
    spec = script.spec
    fields: list[FormField] = []
    for entry in spec.lead_fields or ["first_name"]:
        if isinstance(entry, str):
            kind = STANDARD_LEAD_FIELDS.get(entry, "text")
            name, label, required = entry, None, bool(spec.lead_fields)
        else:
            name, kind, label, required = entry.name, entry.type, entry.label, entry.required
        shown = (
            pick_language(label, language, spec.default_language)
            if label is not None
            else texts.get(f"label_{name}") or name.replace("_", " ").capitalize()
        )
        fields.append(FormField(name, kind, shown, required))
    return fields


def client_address(request: web.Request) -> str:
    """Who is posting: behind trusted load balancers, the right-most X-Forwarded-For address
    that is not one of them (the left-most ones are whatever the client chose to send)."""
    trusted = request.app[SETTINGS].form.trusted_proxies
    remote = request.remote or "unknown"
    if remote not in trusted:
        return remote
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted:
            return hop
    return remote


def consent_for(
    script: CompiledScript, language: str, texts: Mapping[str, str], lead: Mapping[str, str]
) -> tuple[str, bool]:
    """The consent sentence and whether ticking it is required: the script's `form_consent`
    (consent to be contacted about this request), else a plain default. A consent *question*
    in the chat (marketing e-mails, say) is a separate choice the prospect makes there: making
    it a condition of submitting the form would not be free consent."""
    if script.spec.form_consent is not None:
        context = {"lead": dict(lead), "answers": {}}
        return script.render(script.spec.form_consent, language, context), True
    return texts["consent_default"], True


def clean(field: FormField, raw: str, region: str | None) -> tuple[str, str | None]:
    """The value to store, and the key of the error text when it is not acceptable."""
    value = raw.strip()
    if not value:
        return "", "error_required" if field.required else None
    if len(value) > MAX_VALUE:
        return value, "error_too_long"
    if field.type == "email":
        try:
            return validate_email(value, check_deliverability=False).normalized, None
        except EmailNotValidError:
            return value, "error_email"
    if field.type == "phone":
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return value, "error_phone"
        if not phonenumbers.is_valid_number(number):
            return value, "error_phone"
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None
    if field.type == "number":
        try:
            if not math.isfinite(float(value.replace(" ", "").replace(",", "."))):
                return value, "error_number"
        except ValueError:
            return value, "error_number"
    if field.type == "url":
        parsed = parse_url(value)
        return (str(parsed.value), None) if isinstance(parsed, Parsed) else (value, "error_url")
    if field.type == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return value, "error_date"
    return value, None


def _script(request: web.Request) -> CompiledScript | None:
    if not request.app[SETTINGS].form.enabled:
        return None
    try:
        return request.app[CATALOG].current(request.match_info["script"]).script
    except UnknownScriptError:
        return None


def _new_nonce() -> str:
    # One per rendering, sent back as the lead's external id: a second submit of the same
    # rendering (double tap, reload of the POST) finds the lead already stored.
    return f"form-{secrets.token_urlsafe(16)}"


def _render_form(
    request: web.Request,
    script: CompiledScript,
    language: str,
    *,
    values: Mapping[str, str],
    attribution: Mapping[str, str],
    nonce: str,
    errors: Mapping[str, str] | None = None,
    consent_checked: bool = False,
) -> web.Response:
    texts = request.app[PAGE_TEXTS](language)
    errors = errors or {}
    consent_text, consent_required = consent_for(script, language, texts, values)
    return html_page(
        request,
        "form.html",
        status=400 if errors else 200,
        lang=language,
        t=texts,
        title=script.spec.name,
        action=request.rel_url.path_qs,
        nonce=nonce,
        attribution=attribution,
        fields=form_fields(script, language, texts),
        values=values,
        messages={name: texts[key] for name, key in errors.items()},
        consent={"text": consent_text, "required": consent_required, "checked": consent_checked},
        max_length=MAX_VALUE,
    )


async def show_form(request: web.Request) -> web.Response:
    script = _script(request)
    if script is None:
        return message_page(request, 404, "not_found_title", "form_missing")
    language = script.language_for(wanted_language(request))
    fields = form_fields(script, language, request.app[PAGE_TEXTS](language))
    query = request.query
    return _render_form(
        request,
        script,
        language,
        values={f.name: query[f.name][:MAX_VALUE] for f in fields if query.get(f.name)},
        attribution={k: query[k][:MAX_VALUE] for k in ATTRIBUTION_KEYS if query.get(k)},
        nonce=_new_nonce(),
    )


async def submit_form(request: web.Request) -> web.Response:
    script = _script(request)
    if script is None:
        return message_page(request, 404, "not_found_title", "form_missing")
    wait = request.app[FORM_LIMITER].hit(client_address(request))
    if wait:
        response = message_page(request, 429, "too_many_title", "too_many")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    posted: dict[str, str] = {}
    for key, value in (await request.post()).items():
        if isinstance(value, str):  # uploaded files have no place in a lead
            posted.setdefault(key, value)
    language = script.language_for(posted.get("_lang") or wanted_language(request))
    texts = request.app[PAGE_TEXTS](language)
    nonce = posted.get("_nonce", "")
    if not _NONCE.fullmatch(nonce):  # a site's own form posting here has none: one lead a post
        nonce = _new_nonce()
    attribution = {
        key: value[:MAX_VALUE]
        for key in ATTRIBUTION_KEYS
        if (value := posted.get(f"_{key}") or request.query.get(key, ""))
    }
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in form_fields(script, language, texts):
        value, error = clean(field, posted.get(field.name, ""), script.spec.region)
        if error is not None:
            errors[field.name] = error
        elif value:
            fields[field.name] = value
    consent_text, consent_required = consent_for(script, language, texts, fields)
    consented = posted.get("_consent") == "yes"
    if consent_required and not consented:
        errors["_consent"] = "error_consent"
    if errors:
        return _render_form(
            request,
            script,
            language,
            values={key: value[:MAX_VALUE] for key, value in posted.items()},
            attribution=attribution,
            nonce=nonce,
            errors=errors,
            consent_checked=consented,
        )
    fields.setdefault("language", language)  # the intake stores it as the lead's language
    # What the form sent, as typed: only its own inputs, so a bot's padding is not kept.
    known = {f.name for f in form_fields(script, language, texts)} | _SYSTEM_INPUTS
    raw: dict[str, Any] = {key: value[:MAX_VALUE] for key, value in posted.items() if key in known}
    submission = Submission(
        source="form",
        external_id=nonce,
        fields=fields,
        raw=raw,
        attribution=attribution,
        consent_text=consent_text if consented else None,
    )
    accepted = await request.app[INTAKE].submit([submission], script.id)
    raise web.HTTPSeeOther(f"/r/{accepted[0].token}")
