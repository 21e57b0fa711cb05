"""Pages for prospects: the hosted form (webhooks/hosted_form.py), and the chooser of chat
apps with its redirects."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from webhooks.deeplinks import links_for
from webhooks.hosted_form import setup_form
from webhooks.keys import SETTINGS
from webhooks.pagekit import (
    PAGE_TEXTS,
    LinkError,
    PageTexts,
    html_page,
    lead_from,
    link_error_page,
    message_page,
    wanted_language,
)

_APP_ORDER = ("telegram", "whatsapp", "messenger", "tiktok", "sms", "web")


def setup(app: web.Application) -> None:
    app[PAGE_TEXTS] = PageTexts.load()  # read once at start, not per request
    setup_form(app)
    app.router.add_get("/r/{token}", chooser)
    app.router.add_get("/r/{token}/{app}", open_app)


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
