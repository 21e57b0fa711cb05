"""Deep links that carry a lead's token or reference code into each chat app.

Formats from shared/reference/links.md: the token rides where the app hands it back to us
(Telegram's /start payload, TikTok's and Messenger's ref); apps that only prefill text get a
short message with the reference code, which the bot finds anywhere in the first message.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from webhooks.settings import Settings


def prefilled_text(reference: str) -> str:
    return f"Hi! My reference is {reference}"


def links_for(settings: Settings, token: str, reference: str) -> dict[str, str]:
    """Every channel this server has enabled, app name -> the link to open it."""
    links: dict[str, str] = {}
    text = prefilled_text(reference)
    if settings.telegram.bot_username:
        links["telegram"] = f"https://t.me/{settings.telegram.bot_username}?start={token}"
    if settings.twilio.whatsapp_number:
        digits = settings.twilio.whatsapp_number.lstrip("+")
        links["whatsapp"] = f"https://wa.me/{digits}?text={quote(text, safe='')}"
    if settings.twilio.sms_number:
        links["sms"] = f"sms:{settings.twilio.sms_number}?&body={quote(text, safe='')}"
    if settings.tiktok.username:
        query = urlencode({"ref": token, "message": text}, quote_via=quote)
        links["tiktok"] = f"https://tiktok.me/{settings.tiktok.username}?{query}"
    if settings.messenger.page:
        links["messenger"] = f"https://m.me/{settings.messenger.page}?ref={token}"
    if settings.web_chat.enabled:
        links["web"] = f"{settings.base_url}/chat/{token}"
    return links
