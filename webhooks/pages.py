"""Pages for prospects: the hosted lead form, the chooser of chat apps, and its redirects."""

from __future__ import annotations

import importlib.resources
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers
import yaml
from aiohttp import web
from email_validator import EmailNotValidError, validate_email
from yarl import URL

from bot.answers.contact import parse_url
from bot.answers.result import Parsed
from bot.compiled import CompiledScript, pick_language
from bot.errors import UnknownScriptError
from bot.records import Lead, Submission
from bot.spec import STANDARD_LEAD_FIELDS
from bot.tokens import TokenError
from webhooks.deeplinks import links_for
from webhooks.keys import CATALOG, INTAKE, SETTINGS, SIGNER, STORAGE, TEMPLATES
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
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
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
_APP_ORDER = ("telegram", "whatsapp", "messenger", "tiktok", "sms", "web")


class PageTexts:
    """What the pages say, per language (webhooks/templates/texts.yaml), English as fallback."""

    def __init__(self, table: Mapping[str, Mapping[str, str]]) -> None:
        english = dict(table["en"])
        # "lang" says which language the texts are in, for the page's <html lang>.
        self._table = {
            language: {**english, **texts, "lang": language} for language, texts in table.items()
        }

    @classmethod
    def load(cls) -> PageTexts:
        source = importlib.resources.files("webhooks") / "templates" / "texts.yaml"
        return cls(yaml.safe_load(source.read_text(encoding="utf-8")))

    def __call__(self, language: str | None) -> Mapping[str, str]:
        base = (language or "en").split("-", 1)[0]
        return self._table.get(base, self._table["en"])


FORM_LIMITER = web.AppKey("form_limiter", RateLimiter)
PAGE_TEXTS = web.AppKey("page_texts", PageTexts)


def setup(app: web.Application) -> None:
    app[FORM_LIMITER] = RateLimiter(app[SETTINGS].form.per_minute, 60.0)
    app[PAGE_TEXTS] = PageTexts.load()  # read once at start, not per request
    app.router.add_get("/f/{script}", show_form)
    app.router.add_post("/f/{script}", submit_form)
    app.router.add_get("/r/{token}", chooser)
    app.router.add_get("/r/{token}/{app}", open_app)


# -- shared by the pages and the web chat ------------------------------------------------------


def wanted_language(request: web.Request) -> str | None:
    """`?lang=` (a link made for one audience), else the browser's first choice."""
    header = request.headers.get("Accept-Language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    for candidate in (request.query.get("lang", ""), first):
        primary, _, region = candidate.partition("-")
        tag = primary.lower() + (f"-{region}" if region else "")
        if _LANGUAGE.fullmatch(tag):
            return tag
    return None


def html_page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    script_nonce: str | None = None,
    **context: Any,
) -> web.Response:
    body = (
        request.app[TEMPLATES].get_template(template).render(script_nonce=script_nonce, **context)
    )
    response = web.Response(text=body, status=status, content_type="text/html")
    scripts = f"script-src 'nonce-{script_nonce}'; connect-src 'self'; " if script_nonce else ""
    framers = " ".join(str(url).rstrip("/") for url in request.app[SETTINGS].form.frame_ancestors)
    framers = framers or "'none'"  # only the sites the business named may show us in a frame
    response.headers.update(
        {
            # Inline styles only, and scripts only with this response's nonce.
            "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; {scripts}"
            "img-src 'self' data:; form-action 'self'; base-uri 'none'; "
            f"frame-ancestors {framers}",
            # Tokens ride in these URLs: never hand them to the apps and sites linked from here.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            # Forms carry a per-render nonce and the other pages a lead's token: never cache.
            "Cache-Control": "no-store",
        }
    )
    return response


def message_page(
    request: web.Request, status: int, title_key: str, text_key: str, language: str | None = None
) -> web.Response:
    """A friendly page for a prospect who cannot go on: what happened and what to do."""
    texts = request.app[PAGE_TEXTS](language or wanted_language(request))
    return html_page(
        request,
        "message.html",
        status=status,
        lang=texts["lang"],
        t=texts,
        title=texts[title_key],
        text=texts[text_key],
    )


class LinkError(Exception):
    """A lead link (token) we cannot follow: expired (410) or not one of ours (404)."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired
        self.status = 410 if expired else 404
        self.code = "link_expired" if expired else "link_invalid"
        self.message = (
            "this link has expired: submit the form again for a new one"
            if expired
            else "this link is not valid"
        )


def lead_id_from(request: web.Request, token: str) -> int:
    try:
        return request.app[SIGNER].verify(token, datetime.now(UTC))
    except TokenError as error:
        raise LinkError(expired=error.reason == "expired") from None


def link_error_page(request: web.Request, error: LinkError) -> web.Response:
    if error.expired:
        return message_page(request, 410, "link_expired_title", "link_expired")
    return message_page(request, 404, "link_invalid_title", "link_invalid")


async def lead_from(request: web.Request, token: str) -> Lead:
    lead_id = lead_id_from(request, token)
    lead: Lead | None = await request.app[STORAGE].run(lambda tx: tx.leads.get(lead_id))
    if lead is None:  # signed by us, but erased since
        raise LinkError(expired=False)
    return lead


# -- the hosted form ---------------------------------------------------------------------------


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
    """Who is posting: behind a trusted load balancer, the first X-Forwarded-For address."""
    remote = request.remote or "unknown"
    if remote in request.app[SETTINGS].form.trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
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


# -- the chooser -------------------------------------------------------------------------------


async def chooser(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        lead = await lead_from(request, token)
    except LinkError as error:
        return link_error_page(request, error)
    language = wanted_language(request) or lead.language
    texts = request.app[PAGE_TEXTS](language)
    links = links_for(request.app[SETTINGS], token, lead.reference)
    # Chat apps first: the prospect already has them, and a chat there outlives this page. The
    # web chat is the fallback, so it comes last.
    names = sorted(links, key=_app_rank)
    apps = [
        {
            "name": name,
            "label": texts.get(f"app_{name}", name.title()),
            "href": f"/r/{token}/{name}",
        }
        for name in names
    ]
    return html_page(
        request,
        "chooser.html",
        lang=texts["lang"],
        t=texts,
        title=texts["chooser_title"],
        apps=apps,
        reference=lead.reference,
    )


def _app_rank(name: str) -> tuple[bool, int]:
    known = name in _APP_ORDER
    return name == "web", _APP_ORDER.index(name) if known else len(_APP_ORDER)


async def open_app(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        lead = await lead_from(request, token)
    except LinkError as error:
        return link_error_page(request, error)
    link = links_for(request.app[SETTINGS], token, lead.reference).get(request.match_info["app"])
    if link is None:
        return message_page(request, 404, "not_found_title", "app_missing", lead.language)
    # encoded=True: the link goes out exactly as deeplinks built it, not re-normalised.
    raise web.HTTPFound(URL(link, encoded=True))
