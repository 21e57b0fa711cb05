"""A fake Twilio Messages API: a small aiohttp app on 127.0.0.1 that records every message it is
asked to send and answers like Twilio (201 with a SID), or with a planned failure carrying a real
error code (21610, 63016, 63014, 429, 500, slow).

twilio-python is pointed at it by `client.api.base_url`, so the real library does the talking.
Also: a `Texter` who posts signed SMS and WhatsApp webhooks to leadbot exactly as Twilio does
(signed with twilio's own RequestValidator) and reads what the bot sent, and the harness that
runs leadbot (`create_app`) on SQLite or on a PostgreSQL database of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from storage.db import connect
from storage.migrate import upgrade
from storage.tables import ConversationRow, LeadRow, MessageRow, OutboxRow, ReceiptRow
from tests.conftest import POSTGRES_URL_VARIABLE, postgres_url
from webhooks.app import create_app
from webhooks.keys import DATABASE
from webhooks.settings import Settings

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-0123456789"
SMS_NUMBER = "+15005550006"
WHATSAPP_NUMBER = "+14155238886"
PUBLIC_URL = "https://leads.example.com"
MESSAGES_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
LEADS = LeadRow.__table__  # type: ignore[attr-defined]
CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGES = MessageRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
RECEIPTS = ReceiptRow.__table__  # type: ignore[attr-defined]
_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_BAD_VARIABLE = re.compile(r"[\n\t]| {5}")  # Twilio refuses these in a variable (21656)

# Errors as Twilio words them (twilio.com/docs/api/errors): code -> (HTTP status, message).
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21619: (400, "A text message body or media urls must be specified."),
    21655: (400, "The ContentSid is Invalid"),
    21656: (400, "The ContentVariables Parameter is invalid"),
    63014: (400, "Message could not be delivered: the recipient blocked or opted out"),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
}


@dataclass(frozen=True)
class ContentTemplate:
    """An approved content template as the Content API holds it: a body with {{1}}-style
    variables, and for twilio/quick-reply its buttons (id, title)."""

    body: str
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass
class Call:
    """One POST to Messages.json, and how the fake answered it."""

    params: dict[str, str]
    at: float  # time.monotonic() when it arrived
    status: int = 201
    code: int | None = None  # Twilio's error code, when refused
    sid: str | None = None
    text: str = ""  # the body, or the template rendered with its variables
    buttons: tuple[tuple[str, str], ...] = ()  # (id, title) of a quick-reply template

    @property
    def to(self) -> str:
        return self.params.get("To", "")

    @property
    def channel(self) -> str:
        return "whatsapp" if self.to.startswith("whatsapp:") else "sms"

    @property
    def chat(self) -> str:
        return self.to.removeprefix("whatsapp:")

    @property
    def content_sid(self) -> str | None:
        return self.params.get("ContentSid")

    @property
    def variables(self) -> dict[str, str]:
        raw = self.params.get("ContentVariables")
        return dict(json.loads(raw)) if raw else {}


@dataclass(frozen=True)
class Answer:
    """A planned answer to the next send: a Twilio error code, or a delay ("slow")."""

    code: int | None = None
    delay: float = 0.0


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    numbers: set[str] = field(default_factory=lambda: {SMS_NUMBER, WHATSAPP_NUMBER})
    calls: list[Call] = field(default_factory=list)
    templates: dict[str, ContentTemplate] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)  # replied STOP: 21610 to each send
    _plans: deque[Answer] = field(default_factory=deque)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH.format(sid="{sid}"), self._create)
        return app

    # -- planning ---------------------------------------------------------------------------

    def fail_next(self, *codes: int) -> None:
        """The next sends are refused with these error codes, one each, in order."""
        self._plans.extend(Answer(code) for code in codes)

    def slow_next(self, seconds: float) -> None:
        self._plans.append(Answer(delay=seconds))

    def template(self, body: str, *buttons: tuple[str, str], sid: str | None = None) -> str:
        """Register a content template (approved, as the Content API holds it); its SID."""
        sid = sid or "HX" + uuid.uuid4().hex
        self.templates[sid] = ContentTemplate(body, tuple(buttons))
        return sid

    # -- reading what happened --------------------------------------------------------------

    def sent(self, chat: str | None = None) -> list[Call]:
        """Messages Twilio accepted (to one number, on either channel, or to all), in order."""
        return [c for c in self.calls if c.status == 201 and chat in (None, c.chat)]

    def texts(self, chat: str) -> list[str]:
        return [call.text for call in self.sent(chat)]

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                calls = [(c.to[-4:], c.status, c.code, c.text[:50]) for c in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls: {calls}")
            await asyncio.sleep(0.01)

    # -- the API ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid:
            return _error(20404)
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(20003)
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        call = Call(params, time.monotonic())
        self.calls.append(call)
        answer = self._plans.popleft() if self._plans else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        code = answer.code or self._refusal(call)
        if code is not None:
            call.status, call.code = ERRORS[code][0], code
            return _error(code)
        call.sid = f"SM{next(self._numbers):032x}"
        return web.json_response(
            {
                "sid": call.sid,
                "account_sid": self.account_sid,
                "to": call.to,
                "from": params.get("From"),
                "body": call.text,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"{MESSAGES_PATH.format(sid=self.account_sid)[:-5]}/{call.sid}.json",
            },
            status=201,
        )

    def _refusal(self, call: Call) -> int | None:
        """What Twilio would refuse in this request, if anything; fills in the text sent."""
        if not re.fullmatch(r"(whatsapp:)?\+[1-9][0-9]{6,14}", call.to):
            return 21211
        sender = call.params.get("From", "")
        if sender.removeprefix("whatsapp:") not in self.numbers:
            return 21606
        if sender.startswith("whatsapp:") != call.to.startswith("whatsapp:"):
            return 21606
        if call.chat in self.unsubscribed:
            return 21610
        if call.content_sid is not None:
            template = self.templates.get(call.content_sid)
            if template is None:
                return 21655
            try:
                variables = call.variables
            except ValueError:
                return 21656
            if any(not value or _BAD_VARIABLE.search(value) for value in variables.values()):
                return 21656
            call.text = _VARIABLE.sub(
                lambda m: variables.get(m.group(1), m.group(0)), template.body
            )
            call.buttons = template.buttons
            return None
        body = call.params.get("Body", "")
        if not body:
            return 21619
        call.text = body
        return None


def due(row: Any, now: datetime) -> bool:
    """Whether an outbox row is due (SQLite hands back naive UTC times)."""
    at = row.due_at if row.due_at.tzinfo is not None else row.due_at.replace(tzinfo=UTC)
    return bool(at <= now)


def _error(code: int) -> web.Response:
    status, message = ERRORS[code]
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


# -- webhooks, as Twilio posts them to leadbot ----------------------------------------------


def signature(url: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


async def post_signed(
    client: TestClient[Any, Any],
    path: str,
    params: Mapping[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    signature_header: str | None = None,
) -> ClientResponse:
    """POST a form-encoded webhook signed as Twilio signs it (the public URL + the path)."""
    url = signed_url or PUBLIC_URL + path
    header = signature(url, params, token) if signature_header is None else signature_header
    return await client.post(path, data=dict(params), headers={"X-Twilio-Signature": header})


async def post_signed_json(
    client: TestClient[Any, Any], path: str, body: bytes, *, token: str = AUTH_TOKEN
) -> ClientResponse:
    """POST a JSON webhook signed as Twilio signs one: the body's SHA-256 in the URL."""
    digest = hashlib.sha256(body).hexdigest()
    separator = "&" if "?" in path else "?"
    path = f"{path}{separator}bodySHA256={digest}"
    header = signature(PUBLIC_URL + path, {}, token)
    return await client.post(
        path,
        data=body,
        headers={"X-Twilio-Signature": header, "Content-Type": "application/json"},
    )


def message_sid() -> str:
    return "SM" + uuid.uuid4().hex


class Texter:
    """Someone writing to the business by SMS or on WhatsApp: posts signed webhooks as Twilio
    would, and reads the bot's messages from the fake API, one reply at a time."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        fake: FakeTwilio,
        number: str,
        channel: str = "sms",
        *,
        profile_name: str | None = None,
    ) -> None:
        self.client = client
        self.fake = fake
        self.number = number
        self.channel = channel
        self.profile_name = profile_name
        self.read = 0  # messages from the bot already looked at

    def address(self, number: str) -> str:
        return f"whatsapp:{number}" if self.channel == "whatsapp" else number

    def params(self, sid: str | None = None, **fields: str) -> dict[str, str]:
        """An inbound message's parameters as Twilio sends them."""
        ours = WHATSAPP_NUMBER if self.channel == "whatsapp" else SMS_NUMBER
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid or message_sid(),
            "NumMedia": "0",
            "FromCountry": "US",
            "SmsStatus": "received",
            "Body": "",
            "To": self.address(ours),
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "AccountSid": ACCOUNT_SID,
            "From": self.address(self.number),
            "ApiVersion": "2010-04-01",
        }
        params["MessageSid"] = params["SmsSid"] = params["SmsMessageSid"]
        if self.channel == "whatsapp":
            params["WaId"] = self.number.lstrip("+")
            params["MessageType"] = "text"
            if self.profile_name is not None:
                params["ProfileName"] = self.profile_name
        params.update(fields)
        return params

    async def post(self, params: Mapping[str, str], **options: Any) -> ClientResponse:
        return await post_signed(self.client, "/webhooks/twilio", params, **options)

    async def deliver(self, params: Mapping[str, str]) -> str:
        response = await self.post(params)
        body = await response.text()
        assert response.status == 200, body
        assert response.content_type == "text/xml"
        assert body == '<?xml version="1.0" encoding="UTF-8"?><Response />'
        return params["MessageSid"]

    async def say(self, text: str) -> str:
        return await self.deliver(self.params(Body=text))

    async def send_media(self, count: int = 1, caption: str = "") -> str:
        media = {f"MediaUrl{n}": f"https://api.twilio.com/media/ME{n:032x}" for n in range(count)}
        types = {f"MediaContentType{n}": "image/jpeg" for n in range(count)}
        return await self.deliver(
            self.params(Body=caption, NumMedia=str(count), MessageType="image", **media, **types)
        )

    async def tap(self, value: str, message: Call | None = None) -> str:
        """Tap the quick-reply button whose id is `value` on `message` (default: the last
        message with buttons): WhatsApp sends its title as the text."""
        if message is None:
            with_buttons = [call for call in self.fake.sent(self.number) if call.buttons]
            assert with_buttons, "the bot sent no buttons to tap"
            message = with_buttons[-1]
        titles = dict(message.buttons)
        assert value in titles, (value, message.buttons)
        assert message.sid is not None
        return await self.deliver(
            self.params(
                Body=titles[value],
                ButtonText=titles[value],
                ButtonPayload=value,
                MessageType="button",
                OriginalRepliedMessageSender=self.address(WHATSAPP_NUMBER),
                OriginalRepliedMessageSid=message.sid,
            )
        )

    async def expect(self, *fragments: str, timeout: float = 10.0) -> list[Call]:
        """Wait for the bot's next messages until one contains each fragment, in that order;
        returns the messages read."""
        read: list[Call] = []
        for fragment in fragments:

            def arrived(fragment: str = fragment) -> bool:
                return any(fragment in c.text for c in self.fake.sent(self.number)[self.read :])

            await self.fake.wait_until(arrived, f"{fragment!r} to {self.number[-4:]}", timeout)
            messages = self.fake.sent(self.number)
            index = next(i for i in range(self.read, len(messages)) if fragment in messages[i].text)
            read += messages[self.read : index + 1]
            self.read = index + 1
        return read

    def last(self) -> Call:
        return self.fake.sent(self.number)[self.read - 1]


# -- leadbot on the fake: settings, databases, the app under test, and what it stored --------


def twilio_settings(
    database_url: str, api_url: str, twilio: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings with Twilio on the fake: no pacing and quick retries unless a test says."""
    section: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_url": api_url,
        "sms_number": SMS_NUMBER,
        "whatsapp_number": WHATSAPP_NUMBER,
        "timeout": 0.5,
        "per_chat_seconds": 0.0,
        "per_second": 0.0,
        **(twilio or {}),
    }
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        public_url=PUBLIC_URL,
        dispatcher_first_retry_seconds=0.05,
        twilio={key: value for key, value in section.items() if value is not None},
        **overrides,
    )


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database for the app under test: a SQLite file, or a PostgreSQL
    database of its own (create_app connects by URL alone), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'twilio.db'}"
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (CI sets it)")
    admin_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"leadbot_twilio_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
        database = connect(fresh)
        try:
            await upgrade(database)
        finally:
            await database.dispose()
        yield fresh
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class Harness:
    client: TestClient[Any, Any]
    fake: FakeTwilio

    def texter(self, number: str, channel: str = "sms", **options: Any) -> Texter:
        return Texter(self.client, self.fake, number, channel, **options)

    async def rows(self, table: Any, **where: Any) -> list[Any]:
        query = select(table).order_by(table.c[next(iter(table.primary_key.columns)).name])
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

    async def chat_lead(self, number: str, channel: str = "sms") -> Any:
        [conversation] = await self.conversations(channel=channel, channel_user_id=number)
        [lead] = await self.leads(id=conversation.lead_id)
        return lead

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll the database (or anything async) until `check` is true, for 10 s at most."""
        deadline = time.monotonic() + 10
        while not await check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Wait until the outbox has nothing left to send now (a first contact waiting for
        the end of quiet hours is not due)."""

        async def drained() -> bool:
            now = datetime.now(UTC)
            return not [r for r in await self.outbox() if r.status == "pending" and due(r, now)]

        await self.until(drained, "the outbox to drain")

    async def form_lead(self, script: str, **fields: str) -> str:
        """Submit the hosted form as a prospect would; the text the chooser page's SMS link
        prefills (it carries the lead's reference code)."""
        page = await (await self.client.get(f"/f/{script}")).text()
        nonce = re.search(r'name="_nonce" value="([^"]+)"', page)
        assert nonce is not None
        form = {"_nonce": nonce.group(1), "_consent": "yes", **fields}
        response = await self.client.post(f"/f/{script}", data=form, allow_redirects=False)
        assert response.status == 303, await response.text()
        redirect = await self.client.get(
            response.headers["Location"] + "/sms", allow_redirects=False
        )
        location = redirect.headers["Location"]
        assert location.startswith(f"sms:{SMS_NUMBER}?"), location
        return unquote(urlsplit(location).query.removeprefix("&body="))

    async def status(self, sid: str, status: str, **fields: str) -> ClientResponse:
        """Twilio's status callback for the message `sid`."""
        [call] = [c for c in self.fake.calls if c.sid == sid]
        ours = WHATSAPP_NUMBER if call.channel == "whatsapp" else SMS_NUMBER
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": ACCOUNT_SID,
            "To": call.to,
            "From": call.params.get("From", ours),
            "ApiVersion": "2010-04-01",
            **fields,
        }
        return await post_signed(self.client, "/webhooks/twilio/status", params)


async def open_harness(
    aiohttp_client: Any,
    aiohttp_server: Any,
    database: str,
    twilio: dict[str, Any] | None = None,
    fake: FakeTwilio | None = None,
    **overrides: Any,
) -> Harness:
    """leadbot (`create_app`, dispatcher running) on a fresh fake Twilio. `twilio` changes the
    twilio section (None removes a key), `overrides` other settings."""
    fake = fake or FakeTwilio()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("")).rstrip("/")
    settings = twilio_settings(database, url, twilio, **overrides)
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
