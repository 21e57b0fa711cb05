"""Who must not be written to: the one suppression list every channel's sends check.

An address is what a person is reached at, not a conversation: a phone number that said STOP on
SMS is not written to on WhatsApp either (the business cannot tell the two wishes apart, and the
stricter reading is the lawful one); a Telegram, TikTok or web chat is its own address.
"""

from __future__ import annotations

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})


def address_of(channel: str, chat: str) -> str:
    if channel in PHONE_CHANNELS:
        return f"phone:{chat}"
    return f"{channel}:{chat}"
