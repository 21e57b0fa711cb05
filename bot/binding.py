"""A chat's messages find their conversation; a chat's first message finds its lead.

Every messaging channel (Telegram, SMS, WhatsApp, TikTok DMs) hands its parsed inbound events
here. A deep link's payload (Telegram's /start token, TikTok's ref) or a reference code typed in
the first message binds the chat to the lead behind it; a chat that names no lead starts a lead
of its own (source = the channel), and the script then asks what a form would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.inbound import Inbound, TextReceived
from bot.intake import IntakeService
from bot.keywords import is_opt_out
from bot.locks import KeyedLocks
from bot.records import Receipt, Submission
from bot.service import ConversationService, TurnResult
from bot.tokens import TokenSigner


@dataclass(frozen=True, slots=True)
class ChatMessage:
    channel: str  # "telegram", "sms", "whatsapp", "tiktok"
    chat: str  # the channel's id for this chat (Telegram chat id, E.164 number...)
    inbound: Inbound
    receipt: Receipt  # the provider's id for this delivery: a repeat changes nothing
    language: str | None = None  # the prospect's app language, when the channel says
    start: str | None = None  # a deep link's payload (token, or a campaign tag); "" for none
    profile: dict[str, str] | None = None  # what the channel knows: first_name, phone...
    phone: str | None = None  # the sender's E.164 number, on SMS and WhatsApp


class ChatRouter:
    def __init__(
        self,
        conversations: ConversationService,
        intake: IntakeService,
        signer: TokenSigner,
        clock: Callable[[], datetime],
        *,
        phone_match: timedelta = timedelta(days=30),
    ) -> None:
        self._conversations = conversations
        self._intake = intake
        self._signer = signer
        self._clock = clock
        self._phone_match = phone_match  # how recent a lead a number's first message joins
        self._chats = KeyedLocks()

    async def receive(self, message: ChatMessage) -> TurnResult:
        # One chat at a time in this process: the second of two first messages must find the
        # conversation the first one opened, or its text would be lost to a second opening.
        async with self._chats.hold((message.channel, message.chat)):
            if message.start:  # a deep link was followed: bind this chat to the lead it names
                return await self._open(message, message.start, by_code=False)
            # The chat's conversation, if it has one, takes the message (a plain /start lands
            # there too: "welcome back").
            done = await self._conversations.handle_in_chat(
                message.channel, message.chat, message.inbound, message.receipt
            )
            if done is not None:
                return done
            text = message.inbound.text if isinstance(message.inbound, TextReceived) else ""
            if is_opt_out(text):  # STOP before any conversation (e.g. to first contact)
                await self._conversations.suppress(
                    message.channel, message.chat, f"said {text.strip()[:60]!r}", message.receipt
                )
                return TurnResult(0, True, None, channel=message.channel)
            return await self._open(message, text, by_code=True)

    async def _open(self, message: ChatMessage, pointer: str, *, by_code: bool) -> TurnResult:
        """A deep link's payload binds only by a signed token; a reference code binds only as
        the first message of a chat that has none yet, so one chat cannot try code after code
        until it lands on someone else's lead. A number's first message with no code joins
        the newest recent lead with that number: the reply to the bot's first contact."""
        lead_id = None
        if pointer:
            lead_id = await self._conversations.find_lead(pointer, self._signer, codes=by_code)
        if lead_id is None and by_code and message.phone:
            since = self._clock() - self._phone_match
            lead_id = await self._conversations.lead_with_phone(message.phone, since)
        if lead_id is None:
            lead_id = await self._lead_from_chat(message, campaign="" if by_code else pointer)
        return await self._conversations.open(
            lead_id,
            channel=message.channel,
            channel_user_id=message.chat,
            language=message.language,
            receipt=message.receipt,
            said=pointer if by_code else None,
        )

    async def _lead_from_chat(self, message: ChatMessage, campaign: str) -> int:
        """A lead for a chat that came without a form: one per chat (and campaign tag)."""
        attribution = {"campaign_id": campaign} if campaign else {}
        fields = dict(message.profile or {})
        if message.phone:
            fields.setdefault("phone", message.phone)  # the script need not ask for it
        submission = Submission(
            source=message.channel,
            external_id=f"{message.chat}:{campaign}" if campaign else message.chat,
            fields=fields,
            raw={"chat": message.chat, "start": message.start or ""},
            attribution=attribution,
        )
        [accepted] = await self._intake.submit([submission])
        return accepted.lead_id
