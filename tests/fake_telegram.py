"""A fake Telegram Bot API: a small aiohttp app on 127.0.0.1 that records every call and
answers like Telegram, or with a planned failure (429 with retry_after, 5xx, 400, 403, slow).

python-telegram-bot is pointed at it by base URL, so the real library does the talking. Also:
builders of the updates Telegram would post to leadbot's webhook, and a `Prospect` who posts
them and reads what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from storage.tables import ConversationRow, LeadRow, MessageRow, OutboxRow, TimerRow
from storage.transcripts import question_of_provider_message
from webhooks.app import create_app
from webhooks.keys import DATABASE
from webhooks.settings import Settings

TOKEN = "123456:TEST"
BOT_ID = 123456
USERNAME = "leadbot_test_bot"
SECRET = "webhook-secret_0123"
JSON_PARAMETERS = {  # PTB sends these JSON-encoded
    "reply_markup",
    "allowed_updates",
    "reply_parameters",
    "link_preview_options",
}
LEADS = LeadRow.__table__  # type: ignore[attr-defined]
CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGES = MessageRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
TIMERS = TimerRow.__table__  # type: ignore[attr-defined]


@dataclass
class Call:
    """One request to the Bot API, and how the fake answered it."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    status: int = 200
    result: Any = None

    @property
    def chat(self) -> str:
        return str(self.params.get("chat_id", ""))

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def markup(self) -> dict[str, Any]:
        markup: dict[str, Any] = self.params.get("reply_markup") or {}
        return markup

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of the inline keyboard, in order."""
        rows = self.markup.get("inline_keyboard", [])
        return [(button["text"], button["callback_data"]) for row in rows for button in row]

    @property
    def message_id(self) -> int | None:
        return self.result.get("message_id") if isinstance(self.result, dict) else None


@dataclass(frozen=True)
class Answer:
    """A planned answer to the next call of a method."""

    status: int = 200
    description: str = ""
    retry_after: int | None = None
    delay: float = 0.0  # seconds before answering (beyond the client's timeout: "slow")
    result: Any = None  # a 200's result instead of the usual one (a malformed answer)


@dataclass
class FakeTelegram:
    token: str = TOKEN
    username: str = USERNAME
    calls: list[Call] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)  # chats whose user blocked the bot: 403
    webhook: dict[str, Any] = field(default_factory=dict)  # as setWebhook left it
    pending_update_count: int = 0
    last_error: tuple[int, str] | None = None  # (unix time, message) for getWebhookInfo
    _plans: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    _message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(500_000))
    _topic_ids: Iterator[int] = field(default_factory=lambda: itertools.count(7001))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    # -- planning ---------------------------------------------------------------------------

    def plan(self, method: str, *answers: Answer) -> None:
        self._plans[method].extend(answers)

    def fail_next(
        self, method: str, status: int, description: str, *, retry_after: int | None = None
    ) -> None:
        self.plan(method, Answer(status, description, retry_after))

    def slow_next(self, method: str, seconds: float) -> None:
        self.plan(method, Answer(delay=seconds))

    def next_update_id(self) -> int:
        return next(self._update_ids)

    # -- reading what happened --------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat: int | str | None = None) -> list[Call]:
        """Messages Telegram accepted (to one chat, or to all), in order."""
        return [
            call
            for call in self.calls_to("sendMessage")
            if call.status == 200 and (chat is None or call.chat == str(chat))
        ]

    def texts(self, chat: int | str) -> list[str]:
        return [call.text for call in self.sent(chat)]

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                sent = [(c.method, c.chat, c.status, c.text[:60]) for c in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls: {sent}")
            await asyncio.sleep(0.01)

    async def wait_for_messages(self, chat: int | str, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(
            lambda: len(self.sent(chat)) >= count, f"{count} message(s) to {chat}", timeout
        )

    # -- the API ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        plans = self._plans.get(method)
        answer = plans.popleft() if plans else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.status == 200 and method == "sendMessage" and call.chat in self.blocked:
            answer = Answer(403, "Forbidden: bot was blocked by the user")
        call.status = answer.status
        if answer.status != 200:
            return self._error(answer.status, answer.description, answer.retry_after)
        call.result = self._result(method, params) if answer.result is None else answer.result
        return web.json_response({"ok": True, "result": call.result})

    def _error(self, status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Leadbot Test",
                "username": self.username,
            }
        if method == "sendMessage":
            chat = int(params["chat_id"])
            sent: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
                "text": params.get("text", ""),
            }
            if params.get("message_thread_id"):  # a forum topic's message
                sent["message_thread_id"] = int(params["message_thread_id"])
                sent["is_topic_message"] = True
            return sent
        if method == "createForumTopic":
            return {
                "message_thread_id": next(self._topic_ids),
                "name": params.get("name", ""),
                "icon_color": 7322096,
            }
        if method == "setWebhook":
            self.webhook = dict(params)
        if method == "getWebhookInfo":
            info: dict[str, Any] = {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": self.pending_update_count,
            }
            if self.last_error is not None:
                info["last_error_date"], info["last_error_message"] = self.last_error
            return info
        return True

    # -- serving from a thread (for commands that run their own event loop) ---------------

    @contextlib.contextmanager
    def serving_in_thread(self) -> Iterator[str]:
        """Serve on 127.0.0.1 from another thread; yields the API root URL."""
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.app())
        started = threading.Event()
        url: list[str] = []

        async def start() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            url.append(f"http://127.0.0.1:{port}")
            started.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        started.wait(5)
        try:
            yield url[0]
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        text = value if isinstance(value, str) else ""
        params[key] = json.loads(text) if key in JSON_PARAMETERS else text
    return params


# -- updates, as Telegram posts them to the webhook -------------------------------------------


def user(chat: int, first_name: str = "Ana", language: str | None = "en") -> dict[str, Any]:
    sender: dict[str, Any] = {"id": chat, "is_bot": False, "first_name": first_name}
    if language is not None:
        sender["language_code"] = language
    return sender


def message_update(
    update_id: int, chat: int, *, sender: dict[str, Any] | None = None, **content: Any
) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Ana"},
            "from": sender or user(chat),
            **content,
        },
    }


def callback_update(
    update_id: int,
    chat: int,
    message_id: int,
    data: str,
    *,
    sender: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"query-{update_id}",
            "from": sender or user(chat),
            "chat_instance": f"instance-{chat}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Leadbot Test"},
                "text": "(the question)",
            },
        },
    }


class Prospect:
    """Someone in a private chat with the bot: posts updates to the app's webhook as Telegram
    would, and reads the bot's messages from the fake API, one reply at a time."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        fake: FakeTelegram,
        chat: int,
        *,
        first_name: str = "Ana",
        language: str | None = "en",
    ) -> None:
        self.client = client
        self.fake = fake
        self.chat = chat
        self.sender = user(chat, first_name, language)
        self.read = 0  # messages from the bot already looked at

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> ClientResponse:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self.client.post("/webhooks/telegram", json=update, headers=headers)

    async def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(update)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def say(self, text: str) -> int:
        update_id = self.fake.next_update_id()
        await self.deliver(message_update(update_id, self.chat, sender=self.sender, text=text))
        return update_id

    async def start(self, payload: str = "") -> int:
        return await self.say(f"/start {payload}".strip())

    async def tap(self, value: str, message: Call | None = None) -> int:
        """Tap the button with callback data `value` on `message` (default: the last message
        that has buttons)."""
        if message is None:
            with_buttons = [call for call in self.fake.sent(self.chat) if call.buttons]
            assert with_buttons, "the bot sent no buttons to tap"
            message = with_buttons[-1]
        assert value in [data for _, data in message.buttons], (value, message.buttons)
        assert message.message_id is not None
        await self._recorded(message.message_id)
        update_id = self.fake.next_update_id()
        update = callback_update(
            update_id, self.chat, message.message_id, value, sender=self.sender
        )
        await self.deliver(update)
        return update_id

    async def _recorded(self, message_id: int, timeout: float = 3.0) -> None:
        """Wait until the dispatcher has stored the id of the message about to be tapped, as
        it has by the time a person reads it: the tests then check what a tap does, not how
        a tap races the record (webhooks/channels/taps.py waits for that race on its own)."""
        database = self.client.app[DATABASE]
        chat, provider_id = str(self.chat), str(message_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while await question_of_provider_message(database, "telegram", chat, provider_id) is None:
            if asyncio.get_running_loop().time() > deadline:
                return  # a message that asks nothing: let the tap show what happens
            await asyncio.sleep(0.02)

    async def share_contact(self, phone: str, *, own: bool = True) -> int:
        update_id = self.fake.next_update_id()
        contact = {
            "phone_number": phone,
            "first_name": self.sender["first_name"],
            "user_id": self.chat if own else self.chat + 1,
        }
        await self.deliver(
            message_update(update_id, self.chat, sender=self.sender, contact=contact)
        )
        return update_id

    async def expect(self, *fragments: str, timeout: float = 10.0) -> list[Call]:
        """Wait for the bot's next messages until one contains each fragment, in that order;
        returns the messages read."""
        read: list[Call] = []
        for fragment in fragments:

            def arrived(fragment: str = fragment) -> bool:
                return any(fragment in call.text for call in self.fake.sent(self.chat)[self.read :])

            await self.fake.wait_until(arrived, f"{fragment!r} in chat {self.chat}", timeout)
            messages = self.fake.sent(self.chat)
            index = next(i for i in range(self.read, len(messages)) if fragment in messages[i].text)
            read += messages[self.read : index + 1]
            self.read = index + 1
        return read

    def last(self) -> Call:
        return self.fake.sent(self.chat)[self.read - 1]


# -- leadbot on the fake: settings, the app under test, and what it stored -------------------


def telegram_settings(
    tmp_path: Path, api_url: str, telegram: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings with Telegram on the fake: no pacing and quick retries unless a test says."""
    section: dict[str, Any] = {
        "token": TOKEN,
        "webhook_secret": SECRET,
        "api_url": api_url,
        "bot_username": USERNAME,
        "timeout": 0.5,
        "per_chat_seconds": 0.0,
        "per_second": 0.0,
        **(telegram or {}),
    }
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'telegram.db'}",
        secret_key="test-secret-key-0123456789",
        public_url="https://leads.example.com",
        dispatcher_first_retry_seconds=0.05,
        telegram={key: value for key, value in section.items() if value is not None},
        **overrides,
    )


@dataclass
class Harness:
    client: TestClient[Any, Any]
    fake: FakeTelegram

    def prospect(self, chat: int, **options: Any) -> Prospect:
        return Prospect(self.client, self.fake, chat, **options)

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

    async def timers(self, **where: Any) -> list[Any]:
        return await self.rows(TIMERS, **where)

    async def chat_lead(self, chat: int) -> Any:
        [conversation] = await self.conversations(channel="telegram", channel_user_id=str(chat))
        [lead] = await self.leads(id=conversation.lead_id)
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

    async def form_lead(self, script: str = "car-test-drive", **fields: str) -> str:
        """Submit the hosted form as a prospect would; the lead's /start payload, taken from
        the Telegram link on the chooser page."""
        page = await (await self.client.get(f"/f/{script}")).text()
        nonce = re.search(r'name="_nonce" value="([^"]+)"', page)
        assert nonce is not None
        form = {"_nonce": nonce.group(1), "_consent": "yes", **fields}
        response = await self.client.post(f"/f/{script}", data=form, allow_redirects=False)
        assert response.status == 303, await response.text()
        redirect = await self.client.get(
            response.headers["Location"] + "/telegram", allow_redirects=False
        )
        location = redirect.headers["Location"]
        prefix = f"https://t.me/{USERNAME}?start="
        assert location.startswith(prefix), location
        return location.removeprefix(prefix)


async def open_harness(
    aiohttp_client: Any,
    aiohttp_server: Any,
    tmp_path: Path,
    telegram: dict[str, Any] | None = None,
    **overrides: Any,
) -> Harness:
    """leadbot (`create_app`, dispatcher running) on a fresh fake Bot API. `telegram` changes
    the telegram section (None removes a key), `overrides` other settings."""
    fake = FakeTelegram()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("")).rstrip("/")
    settings = telegram_settings(tmp_path, url, telegram, **overrides)
    client = await aiohttp_client(create_app(settings))
    return Harness(client, fake)
