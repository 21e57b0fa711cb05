"""A fake TikTok Business Messaging API: a small aiohttp app on 127.0.0.1 that records every
message it is asked to send and every token refresh, checks the Access-Token header, keeps
TikTok's rules (the prospect writes first, 48 hours, about ten messages until they write again)
and answers like TikTok (`{code, message, request_id, data}`, HTTP 200 even for refusals), or
with a planned failure: a refused token, 40064, the window, 500, slow.

Also: a `TikTokUser` who posts signed webhook events to leadbot exactly as TikTok does
(`TikTok-Signature: t=...,s=HMAC-SHA256(app secret, "<t>.<body>")`, the event's `content` a JSON
string) and reads what the bot sent, and the harness that runs leadbot (`create_app`) against
the fake on SQLite or on a PostgreSQL database of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.records import Submission
from storage.tables import ConversationRow, LeadRow, MessageRow, OutboxRow, ReceiptRow
from tests.fake_twilio import database_url
from webhooks.app import create_app
from webhooks.keys import DATABASE, INTAKE
from webhooks.settings import Settings

APP_ID = "7350000000000000001"
APP_SECRET = "tiktok-app-secret-0123456789"
BUSINESS_ID = "-000bUsInEsS0pEnId"  # the account's open_id
USERNAME = "leadbot_motors"  # the business account, for tiktok.me links
ACCESS_TOKEN = "act.first-access-token"
REFRESH_TOKEN = "rft.first-refresh-token"
PUBLIC_URL = "https://leads.example.com"
SEND_PATH = "/open_api/v1.3/business/message/send/"
REFRESH_PATH = "/open_api/v1.3/tt_user/oauth2/refresh_token/"
LEADS = LeadRow.__table__  # type: ignore[attr-defined]
CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGES = MessageRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
RECEIPTS = ReceiptRow.__table__  # type: ignore[attr-defined]

# TikTok's words for its refusals, as public sources quote them.
TOO_FAST = "You are sending messages too fast. Take a rest."  # 40064 (Qiscus)
RESTRICTED = "Your message was blocked due to messaging restrictions."  # 40064 (SleekFlow)
ERRORS: dict[int, str] = {
    40001: "No permission to operate this business account.",
    40002: "Invalid parameters.",
    40064: TOO_FAST,
    40100: "You've hit the rate limit for this API.",
    40105: "Access token is incorrect or has been revoked.",
    51065: "System error, please try again later.",
}
WINDOW_SECONDS = 48 * 3600
BUDGET = 10  # messages per window, counted again from zero whenever the prospect writes


@dataclass
class Call:
    """One request to the send endpoint, and how the fake answered it."""

    body: dict[str, Any]
    token: str | None  # the Access-Token header
    at: float  # time.monotonic() when it arrived
    code: int | None = None  # TikTok's code; None for an HTTP failure
    message_id: str | None = None

    @property
    def conversation(self) -> str:
        return str(self.body.get("recipient", ""))

    @property
    def message_type(self) -> str:
        return str(self.body.get("message_type", ""))

    @property
    def template(self) -> dict[str, Any]:
        template = self.body.get("template")
        return template if isinstance(template, dict) else {}

    @property
    def text(self) -> str:
        """What the prospect reads: the text, or a card's question."""
        if self.message_type == "TEMPLATE":
            return str(self.template.get("title", ""))
        text = self.body.get("text")
        return str(text.get("body", "")) if isinstance(text, dict) else ""

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(id, title) of a card's buttons, in order."""
        return [(str(b.get("id")), str(b.get("title"))) for b in self.template.get("buttons", [])]


@dataclass(frozen=True)
class Plan:
    """A planned answer to the next call: TikTok's code (with its words), an HTTP status, or a
    delay ("slow", beyond the client's timeout)."""

    code: int | None = None
    message: str | None = None
    status: int = 200
    delay: float = 0.0


@dataclass
class Window:
    opened: float  # time.time() of the prospect's last message
    sent: int = 0


@dataclass
class FakeTikTok:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    business_id: str = BUSINESS_ID
    access_token: str = ACCESS_TOKEN  # the one TikTok accepts now
    refresh_token: str = REFRESH_TOKEN
    calls: list[Call] = field(default_factory=list)
    refreshes: list[dict[str, Any]] = field(default_factory=list)  # bodies received
    windows: dict[str, Window] = field(default_factory=dict)
    enforce_rules: bool = True  # the prospect writes first, 48 hours, a budget
    referral_opens_window: bool = True  # see `arrived`
    _plans: deque[Plan] = field(default_factory=deque)
    _refresh_plans: deque[Plan] = field(default_factory=deque)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(SEND_PATH, self._send)
        app.router.add_post(REFRESH_PATH, self._refresh)
        return app

    # -- TikTok's side of the prospect ------------------------------------------------------

    def wrote(self, conversation: str) -> None:
        """The prospect wrote: the window opens for 48 hours, the budget starts again."""
        self.windows[conversation] = Window(time.time())

    def arrived(self, conversation: str) -> None:
        """The prospect opened the chat from a link or an ad. Whether that alone lets the
        business write is not documented; leadbot assumes it does (as the core's window rule
        does), and so does this fake unless `referral_opens_window` is turned off."""
        if self.referral_opens_window and conversation not in self.windows:
            self.wrote(conversation)

    # -- planning ---------------------------------------------------------------------------

    def fail_next(self, *codes: int, message: str | None = None) -> None:
        """The next sends are refused with these codes, one each, in order (HTTP 200)."""
        self._plans.extend(Plan(code, message) for code in codes)

    def restrict_next(self) -> None:
        """The next send is blocked by TikTok's messaging rules (window or budget)."""
        self._plans.append(Plan(40064, RESTRICTED))

    def fail_next_http(self, status: int = 500) -> None:
        self._plans.append(Plan(status=status))

    def slow_next(self, seconds: float) -> None:
        self._plans.append(Plan(delay=seconds))

    def fail_next_refresh(self, code: int | None = None, *, status: int = 200) -> None:
        self._refresh_plans.append(Plan(code, status=status))

    def expire_token(self) -> None:
        """The access token in use stops working (they last a day)."""
        self.access_token = f"act.expired-{uuid.uuid4().hex[:8]}-never-issued"

    # -- reading what happened --------------------------------------------------------------

    def sent(self, conversation: str | None = None) -> list[Call]:
        """Messages TikTok accepted (in one conversation, or in all), in order."""
        return [c for c in self.calls if c.code == 0 and conversation in (None, c.conversation)]

    def texts(self, conversation: str) -> list[str]:
        return [call.text for call in self.sent(conversation)]

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                calls = [(c.message_type, c.code, c.text[:50]) for c in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls: {calls}")
            await asyncio.sleep(0.01)

    # -- the API ----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        token = request.headers.get("Access-Token")
        call = Call(body if isinstance(body, dict) else {}, token, time.monotonic())
        self.calls.append(call)
        if call.token != self.access_token:
            return self._refuse(call, 40105)
        plan = self._plans.popleft() if self._plans else Plan()
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if plan.status != 200:
            return web.Response(status=plan.status, text="upstream connect error")
        if plan.code is not None:
            return self._refuse(call, plan.code, plan.message)
        refusal = self._refusal(call)
        if refusal is not None:
            return self._refuse(call, *refusal)
        call.code = 0
        call.message_id = f"v2.{next(self._numbers):020d}.msg"
        if call.conversation in self.windows:
            self.windows[call.conversation].sent += 1
        return _answer(0, "OK", {"message": {"message_id": call.message_id}})

    def _refuse(self, call: Call, code: int, message: str | None = None) -> web.Response:
        call.code = code
        return _answer(code, message or ERRORS[code], {})

    def _refusal(self, call: Call) -> tuple[int, str] | None:
        """What TikTok would refuse in this request, if anything: (code, its words)."""
        body = call.body
        if body.get("business_id") != self.business_id:
            return 40001, ERRORS[40001]
        if body.get("recipient_type") != "CONVERSATION" or not call.conversation:
            return 40002, "recipient_type must be CONVERSATION, with a recipient"
        if call.message_type == "TEXT":
            text = body.get("text")
            if not isinstance(text, dict) or not _fits(text.get("body"), 6000):
                return 40002, "text.body must hold 1 to 6000 characters"
        elif call.message_type == "TEMPLATE":
            if not _valid_card(call.template):
                return 40002, "template is not a valid QA_BUTTON_CARD"
        else:
            return 40002, f"unsupported message_type {call.message_type!r}"
        if self.enforce_rules:
            window = self.windows.get(call.conversation)
            if window is None or time.time() - window.opened > WINDOW_SECONDS:
                return 40064, RESTRICTED
            if window.sent >= BUDGET:
                return 40064, RESTRICTED
        return None

    async def _refresh(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.refreshes.append(body)
        plan = self._refresh_plans.popleft() if self._refresh_plans else Plan()
        if plan.status != 200:
            return web.Response(status=plan.status, text="upstream connect error")
        if plan.code is not None:
            return _answer(plan.code, ERRORS.get(plan.code, "refused"), {})
        expected = {
            "client_id": self.app_id,
            "client_secret": self.app_secret,
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
        }
        if body != expected:
            return _answer(40002, "The refresh token is invalid or has expired.", {})
        serial = next(self._numbers)
        self.access_token = f"act.renewed-{serial}"
        self.refresh_token = f"rft.rotated-{serial}"  # it rotates: the old one stops working
        return _answer(
            0,
            "OK",
            {
                "access_token": self.access_token,
                "token_type": "Bearer",
                "scope": "message.list.read,message.list.send,message.list.manage",
                "expires_in": 86400,
                "refresh_token": self.refresh_token,
                "refresh_token_expires_in": 31536000,
                "open_id": self.business_id,
            },
        )


def _answer(code: int, message: str, data: dict[str, Any]) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data}
    )


def _fits(text: object, limit: int) -> bool:
    # TikTok counts as JavaScript does: UTF-16 code units.
    return isinstance(text, str) and 0 < len(text.encode("utf-16-le")) // 2 <= limit


def _valid_card(template: dict[str, Any]) -> bool:
    buttons = template.get("buttons")
    if template.get("type") != "QA_BUTTON_CARD" or not _fits(template.get("title"), 40):
        return False
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return False
    return all(
        isinstance(b, dict)
        and b.get("type") == "REPLY"
        and _fits(b.get("title"), 20)
        and _fits(b.get("id"), 40)
        for b in buttons
    )


# -- webhook events, as TikTok posts them to leadbot ------------------------------------------


def signature(body: bytes, secret: str = APP_SECRET, timestamp: int | None = None) -> str:
    """TikTok-Signature for `body`: t=<unix seconds>,s=<hex HMAC-SHA256 of "<t>.<body>">."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},s={digest}"


def envelope(
    event: str, content: dict[str, Any] | None, *, business_id: str = BUSINESS_ID
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_key": APP_ID,
        "event": event,
        "create_time": int(time.time()),
        "user_openid": business_id,
    }
    if content is not None:
        document["content"] = json.dumps(content)
    return document


async def post_event(
    client: TestClient[Any, Any],
    event: dict[str, Any] | bytes,
    *,
    secret: str = APP_SECRET,
    timestamp: int | None = None,
    header: str | None = None,
) -> ClientResponse:
    """POST an event signed as TikTok signs it (or with `header` as TikTok-Signature)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    value = signature(body, secret, timestamp) if header is None else header
    headers = {"Content-Type": "application/json"}
    if value:
        headers["TikTok-Signature"] = value
    return await client.post("/webhooks/tiktok", data=body, headers=headers)


class TikTokUser:
    """Someone in a TikTok chat with the business: posts the events TikTok would, and reads the
    bot's messages from the fake API, one reply at a time."""

    _ids = itertools.count(1)

    def __init__(
        self,
        client: TestClient[Any, Any],
        fake: FakeTikTok,
        conversation: str | None = None,
        *,
        username: str = "ana.garcia_92",
    ) -> None:
        serial = next(self._ids)
        self.client = client
        self.fake = fake
        # TikTok's conversation ids are base64-like and may hold "+", "/" and "=".
        self.conversation = conversation or f"Mi4w+Y29udi{serial:04d}/Lj0=="
        self.username = username
        self.user_id = f"-000uSeR{serial:04d}"
        self.read = 0  # messages from the bot already looked at

    def content(self, **fields: Any) -> dict[str, Any]:
        """The fields every conversation event carries, and `fields`."""
        return {
            "conversation_id": self.conversation,
            "from": self.username,
            "from_user": {"id": self.user_id, "role": "personal_account"},
            "to": USERNAME,
            "to_user": {"id": self.fake.business_id, "role": "business_account"},
            "unique_identifier": f"uid-{self.user_id}",
            "timestamp": int(time.time() * 1000),
            **fields,
        }

    def message(self, message_id: str | None = None, **fields: Any) -> dict[str, Any]:
        return envelope(
            "im_receive_msg",
            self.content(
                message_id=message_id or f"v2.{uuid.uuid4().hex}",
                scene_type=0,
                is_follower=False,
                message_tag={"source": "APP"},
                **fields,
            ),
        )

    async def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        response = await post_event(self.client, event)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        assert body == {"ok": True}
        return body

    async def refer(self, ref: str | None, *, prefilled: str = "") -> dict[str, Any]:
        """Arrive from a tiktok.me link with `ref` (None: from an ad, which names no ref)."""
        if ref is None:
            referral: dict[str, Any] = {
                "source": "ad",
                "ad": {
                    "advertiser_id": "7100000000000000001",
                    "ad_id": "1800000000000000001",
                    "timestamp": int(time.time() * 1000),
                    "ad_name": "Spring test drives",
                    "embed_url": "https://www.tiktok.com/embed/v2/1",
                    "message_material_id": "m-1",
                },
            }
        else:
            referral = {
                "source": "short_link",
                "short_link": {
                    "ref": ref,
                    "prefilled_message": prefilled,
                    "prefilled_message_audit_status": "PASS",
                },
            }
        event = envelope("im_referral_msg", self.content(referral=referral))
        self.fake.arrived(self.conversation)
        return await self.deliver(event)

    async def say(self, text: str, message_id: str | None = None) -> str:
        event = self.message(message_id, type="text", text={"body": text})
        self.fake.wrote(self.conversation)
        await self.deliver(event)
        return str(json.loads(event["content"])["message_id"])

    async def send_media(self, kind: str = "image") -> str:
        media: dict[str, Any] = {
            "image": {"image": {"media_id": "m-image-1"}},
            "sticker": {"sticker": {"url": "https://p16.tiktokcdn.com/sticker.png"}},
            "share_post": {"share_post": {"embed_url": "https://www.tiktok.com/embed/1"}},
        }[kind]
        event = self.message(type=kind, **media)
        self.fake.wrote(self.conversation)
        await self.deliver(event)
        return str(json.loads(event["content"])["message_id"])

    async def tap(self, value: str, card: Call | None = None) -> str:
        """Tap the button with id `value` on `card` (default: the last card sent): TikTok sends
        the button's title as the prospect's text, and names the card and the button."""
        if card is None:
            cards = [call for call in self.fake.sent(self.conversation) if call.buttons]
            assert cards, "the bot sent no button card to tap"
            card = cards[-1]
        titles = dict(card.buttons)
        assert value in titles, (value, card.buttons)
        assert card.message_id is not None
        event = self.message(
            type="text",
            text={"body": titles[value]},
            reply_source_payload={
                "reply_source_msg_id": card.message_id,
                "reply_source_unique_id": value,
            },
        )
        self.fake.wrote(self.conversation)
        await self.deliver(event)
        return str(json.loads(event["content"])["message_id"])

    async def expect(self, *fragments: str, timeout: float = 10.0) -> list[Call]:
        """Wait for the bot's next messages until one contains each fragment, in that order;
        returns the messages read."""
        read: list[Call] = []
        for fragment in fragments:

            def arrived(fragment: str = fragment) -> bool:
                sent = self.fake.sent(self.conversation)[self.read :]
                return any(fragment in call.text for call in sent)

            await self.fake.wait_until(arrived, f"{fragment!r} in {self.conversation}", timeout)
            messages = self.fake.sent(self.conversation)
            index = next(i for i in range(self.read, len(messages)) if fragment in messages[i].text)
            read += messages[self.read : index + 1]
            self.read = index + 1
        return read

    def last(self) -> Call:
        return self.fake.sent(self.conversation)[self.read - 1]


def echo(call: Call) -> dict[str, Any]:
    """The im_send_msg event TikTok posts for a message the business sent through the API."""
    content = {
        "conversation_id": call.conversation,
        "message_id": call.message_id,
        "type": "text",
        "text": {"body": call.text},
        "from": USERNAME,
        "from_user": {"id": BUSINESS_ID, "role": "business_account"},
        "to": "ana.garcia_92",
        "to_user": {"id": "-000uSeR", "role": "personal_account"},
        "timestamp": int(time.time() * 1000),
        "message_tag": {"source": "API"},
    }
    return envelope("im_send_msg", content)


# -- leadbot on the fake: settings, the app under test, and what it stored -------------------


def tiktok_settings(
    database: str, api_url: str, tiktok: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings with TikTok on the fake: no pacing and quick retries unless a test says."""
    section: dict[str, Any] = {
        "app_secret": APP_SECRET,
        "api_url": api_url,
        "username": USERNAME,
        "app_id": APP_ID,
        "business_id": BUSINESS_ID,
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "timeout": 0.5,
        "per_chat_seconds": 0.0,
        "per_second": 0.0,
        **(tiktok or {}),
    }
    return Settings(
        database_url=database,
        secret_key="test-secret-key-0123456789",
        public_url=PUBLIC_URL,
        dispatcher_first_retry_seconds=0.05,
        tiktok={key: value for key, value in section.items() if value is not None},
        **overrides,
    )


@dataclass
class Harness:
    client: TestClient[Any, Any]
    fake: FakeTikTok

    def user(self, conversation: str | None = None, **options: Any) -> TikTokUser:
        return TikTokUser(self.client, self.fake, conversation, **options)

    async def rows(self, table: Any, **where: Any) -> list[Any]:
        query = select(table).order_by(*table.primary_key.columns)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        async with self.client.app[DATABASE].reading() as connection:
            return list((await connection.execute(query)).all())

    async def leads(self, **where: Any) -> list[Any]:
        return await self.rows(LEADS, **where)

    async def conversations(self, **where: Any) -> list[Any]:
        return await self.rows(CONVERSATIONS, **where)

    async def messages(self, **where: Any) -> list[Any]:
        return await self.rows(MESSAGES, **where)

    async def outbox(self, **where: Any) -> list[Any]:
        return await self.rows(OUTBOX, **where)

    async def receipts(self) -> list[Any]:
        return await self.rows(RECEIPTS)

    async def chat_lead(self, conversation: str) -> Any:
        [row] = await self.conversations(channel="tiktok", channel_user_id=conversation)
        [lead] = await self.leads(id=row.lead_id)
        return lead

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll the database (or anything async) until `check` is true, for 10 s at most."""
        deadline = time.monotonic() + 10
        while not await check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Wait until the outbox has nothing left to send."""

        async def drained() -> bool:
            return all(row.status != "pending" for row in await self.outbox())

        await self.until(drained, "the outbox to drain")

    async def lead_token(self, script: str, **fields: str) -> tuple[int, str, str]:
        """A lead as a relay (or TikTok's lead webhook) would deliver it: (id, reference,
        signed token), the token being what its tiktok.me link carries as `ref`."""
        submission = Submission(
            source="api:test", external_id=f"{script}-{uuid.uuid4().hex[:6]}", fields=fields, raw={}
        )
        [accepted] = await self.client.app[INTAKE].submit([submission], script)
        return accepted.lead_id, accepted.reference, accepted.token


async def open_harness(
    aiohttp_client: Any,
    aiohttp_server: Any,
    database: str,
    tiktok: dict[str, Any] | None = None,
    fake: FakeTikTok | None = None,
    **overrides: Any,
) -> Harness:
    """leadbot (`create_app`, dispatcher running) on a fresh fake TikTok. `tiktok` changes the
    tiktok section (None removes a key), `overrides` other settings."""
    fake = fake or FakeTikTok()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("")).rstrip("/")
    settings = tiktok_settings(database, url, tiktok, **overrides)
    client = await aiohttp_client(create_app(settings))
    return Harness(client, fake)


@asynccontextmanager
async def running(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path, kind: str = "sqlite", **options: Any
) -> AsyncIterator[Harness]:
    """`open_harness` on a fresh database of `kind` ("sqlite" or "postgresql"); the app is shut
    down before its database goes."""
    async with database_url(kind, tmp_path) as url:
        harness = await open_harness(aiohttp_client, aiohttp_server, url, **options)
        try:
            yield harness
        finally:
            await harness.client.close()
