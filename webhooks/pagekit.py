"""What every page for prospects shares: texts per language, the HTML response with its
security headers, friendly error pages, and reading a lead from a link's token."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from bot.records import Lead
from bot.tokens import TokenError
from webhooks.keys import SETTINGS, SIGNER, STORAGE, TEMPLATES

_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")


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


PAGE_TEXTS = web.AppKey("page_texts", PageTexts)


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
