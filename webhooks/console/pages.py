"""Console pages: the prospects' page kit (no external assets, a strict CSP), never framed."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from webhooks.pagekit import html_page


def console_page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    script_nonce: str | None = None,
    **context: Any,
) -> web.Response:
    context.setdefault("lang", "en")
    response = html_page(request, template, status=status, script_nonce=script_nonce, **context)
    # form.frame_ancestors lets a business frame the prospects' form; reps' pages are never
    # framed (clickjacking), whatever it says.
    policy = response.headers["Content-Security-Policy"].split("frame-ancestors", 1)[0]
    response.headers["Content-Security-Policy"] = policy + "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def console_message(request: web.Request, status: int, text: str) -> web.Response:
    titles = {403: "Not allowed", 404: "Not found", 429: "Too many attempts"}
    return console_page(
        request, "message.html", status=status, title=titles.get(status, "Sorry"), text=text
    )
