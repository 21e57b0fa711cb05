"""A chat's messages find their conversation; a chat's first message finds its lead.

Every messaging channel (Telegram, SMS, WhatsApp, TikTok DMs) hands its parsed inbound events
here. A deep link's payload (Telegram's /start token, TikTok's ref) or a reference code typed in
the first message binds the chat to the lead behind it; a chat that names no lead starts a lead
of its own (source = the channel), and the script then asks what a form would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from bot.inbound import Inbound, TextReceived
from bot.intake import IntakeService
from bot.keywords import is_opt_out
from bot.locks import KeyedLocks
from bot.ports import Transaction
from bot.records import Receipt, Submission
from bot.service import ConversationService, FirstMessage, TurnResult, lead_named
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
        *,
        phone_match: timedelta = timedelta(days=30),
    ) -> None:
        self._conversations = conversations
        self._intake = intake
        self._signer = signer
        self._phone_match = phone_match  # how recent a lead a number's first message joins
        self._chats = KeyedLocks()

    async def receive(self, message: ChatMessage) -> TurnResult:
        # One chat at a time in this process: the second of two first messages must find the
        # conversation the first one opened, or its text would be lost to a second opening.
        async with self._chats.hold((message.channel, message.chat)):
            if message.start:  # a deep link was followed: bind this chat to the lead it names
                return await self._open(message, message.start)
            text = message.inbound.text if isinstance(message.inbound, TextReceived) else ""
            if is_opt_out(text):  # STOP before any conversation (e.g. to first contact)
                done = await self._conversations.handle_in_chat(
                    message.channel, message.chat, message.inbound, message.receipt
                )
                if done is not None:
                    return done
                await self._conversations.suppress(
                    message.channel, message.chat, f"said {text.strip()[:60]!r}", message.receipt
                )
                return TurnResult(0, True, None, channel=message.channel)
            # The chat's conversation, if it has one, takes the message (a plain /start lands
            # there too: "welcome back"); otherwise the message opens one, in the same trip to
            # the database, for the lead it names or a lead of the chat's own.
            first = FirstMessage(partial(self._lead_of, message, text), message.language, text)
            return await self._conversations.answer_in_chat(
                message.channel, message.chat, message.inbound, message.receipt, first
            )

    def _lead_of(self, message: ChatMessage, text: str, tx: Transaction, now: datetime) -> int:
        """The lead of a chat's first message, in the transaction that opens its conversation.
        A reference code binds only as the first message of a chat that has none yet, so one
        chat cannot try code after code until it lands on someone else's lead. A number's
        first message with no code joins the newest recent lead with that number: the reply to
        the bot's first contact. Otherwise the chat starts a lead of its own."""
        lead_id = lead_named(tx, text, self._signer, now) if text else None
        if lead_id is None and message.phone:
            recent = tx.leads.latest_with_phone(message.phone, now - self._phone_match)
            lead_id = recent.id if recent is not None else None
        if lead_id is None:
            lead_id = self._intake.store_in(tx, _submission(message, campaign=""), now).id
        return lead_id

    async def _open(self, message: ChatMessage, token: str) -> TurnResult:
        """A deep link's payload binds only by a signed token; any other payload is a campaign
        tag, and the chat starts a lead of its own for it."""
        lead_id = await self._conversations.find_lead(token, self._signer, codes=False)
        if lead_id is None:
            [accepted] = await self._intake.submit([_submission(message, campaign=token)])
            lead_id = accepted.lead_id
        return await self._conversations.open(
            lead_id,
            channel=message.channel,
            channel_user_id=message.chat,
            language=message.language,
            receipt=message.receipt,
        )


def _submission(message: ChatMessage, campaign: str) -> Submission:
    """A lead for a chat that came without a form: one per chat (and campaign tag)."""
    attribution = {"campaign_id": campaign} if campaign else {}
    fields = dict(message.profile or {})
    if message.phone:
        fields.setdefault("phone", message.phone)  # the script need not ask for it
    return Submission(
        source=message.channel,
        external_id=f"{message.chat}:{campaign}" if campaign else message.chat,
        fields=fields,
        raw={"chat": message.chat, "start": message.start or ""},
        attribution=attribution,
    )
