"""Drill: fuzz every webhook and intake endpoint over HTTP, signed and unsigned, with hypothesis.
No input gets a 5xx, and an input that is refused (4xx) changes nothing in the database.

The app runs in a thread of its own (one server for all the examples; hypothesis drives plain
synchronous requests), on SQLite, with every channel and source configured and the providers'
APIs pointed at a closed loopback port: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fake_telegram, fake_tiktok, fake_twilio
from tests.fake_twilio import signature as twilio_signature
from webhooks.app import create_app
from webhooks.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.drill]
CLOSED = "http://127.0.0.1:9"  # discard: refused, so a send fails and is retried, on loopback
RELAY_KEY = "fuzz-relay-key"
GOOGLE_KEY = "fuzz-google-key"
TIKTOK_LEADS_SECRET = fake_tiktok.APP_SECRET
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Server:
    def __init__(self, folder: Path) -> None:
        self.database = folder / "fuzz.db"
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _settings(self) -> Settings:
        return Settings(
            database_url=f"sqlite+aiosqlite:///{self.database}",
            secret_key="test-secret-key-0123456789",
            public_url=fake_twilio.PUBLIC_URL,
            default_script="b2b-services",
            relays={"fuzz": {"api_keys": [RELAY_KEY]}},
            google={"key": GOOGLE_KEY},
            telegram={
                "token": fake_telegram.TOKEN,
                "webhook_secret": fake_telegram.SECRET,
                "api_url": CLOSED,
                "bot_username": fake_telegram.USERNAME,
            },
            twilio={
                "account_sid": fake_twilio.ACCOUNT_SID,
                "auth_token": fake_twilio.AUTH_TOKEN,
                "api_url": CLOSED,
                "sms_number": fake_twilio.SMS_NUMBER,
                "whatsapp_number": fake_twilio.WHATSAPP_NUMBER,
            },
            tiktok={
                "app_secret": fake_tiktok.APP_SECRET,
                "api_url": CLOSED,
                "username": fake_tiktok.USERNAME,
                "app_id": fake_tiktok.APP_ID,
                "business_id": fake_tiktok.BUSINESS_ID,
                "access_token": fake_tiktok.ACCESS_TOKEN,
                "refresh_token": fake_tiktok.REFRESH_TOKEN,
            },
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(create_app(self._settings()), access_log=None)

        async def start() -> None:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(15), "the app did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)

    def counts(self) -> dict[str, int]:
        """Rows per table: what a refused input must leave as it was."""
        with sqlite3.connect(self.database) as connection:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            ]
            return {
                table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                for table in tables
            }

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            payload = error.read()
            if error.code < 500:  # a refusal names the problem, as JSON
                assert json.loads(payload).get("error"), payload[:300]
            return int(error.code)

    def check(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        before = self.counts()
        status = self.post(path, body, headers)
        assert status < 500, (path, status, body[:300])
        if 400 <= status < 500:
            assert self.counts() == before, (path, status, body[:300])
        return status


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=15,
)
TEXTISH = st.text(max_size=40) | st.sampled_from(["", "/start", "/start abc", "STOP", "hello"])


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


BODIES = st.binary(max_size=300) | JSON.map(_json)

# -- Telegram --------------------------------------------------------------------------------

UPDATES = st.fixed_dictionaries(
    {"update_id": st.integers(min_value=-5, max_value=2**40)},
    optional={
        "message": st.fixed_dictionaries(
            {},
            optional={
                "message_id": st.integers(),
                "date": st.integers(min_value=0, max_value=2**33),
                "chat": st.fixed_dictionaries(
                    {"id": st.integers(), "type": st.sampled_from(["private", "group", "x"])}
                ),
                "from": st.fixed_dictionaries(
                    {"id": st.integers(), "is_bot": st.booleans(), "first_name": st.text()}
                ),
                "text": TEXTISH,
                "contact": st.dictionaries(st.sampled_from(["phone_number", "user_id"]), SCALARS),
            },
        ),
        "callback_query": st.dictionaries(
            st.sampled_from(["id", "from", "data", "message", "chat_instance"]), JSON
        ),
    },
).map(_json)


@FUZZ
@given(body=UPDATES | BODIES, secret=st.sampled_from([fake_telegram.SECRET, "wrong", None]))
def test_telegram_webhook(server: Server, body: bytes, secret: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    status = server.check("/webhooks/telegram", body, headers)
    if secret != fake_telegram.SECRET:
        assert status in (401, 403)


# -- Twilio ----------------------------------------------------------------------------------

TWILIO_KEYS = st.sampled_from(
    [
        "From",
        "To",
        "Body",
        "MessageSid",
        "SmsSid",
        "AccountSid",
        "NumMedia",
        "MessageStatus",
        "ErrorCode",
        "ButtonPayload",
        "MediaUrl0",
        "ProfileName",
    ]
)
PHONES = st.sampled_from(
    ["+12025550143", "whatsapp:+12025550143", fake_twilio.SMS_NUMBER, "", "not a number"]
)
FORMS = st.fixed_dictionaries(
    {
        "From": PHONES,
        "To": st.sampled_from([fake_twilio.SMS_NUMBER, f"whatsapp:{fake_twilio.WHATSAPP_NUMBER}"])
        | PHONES,
        "MessageSid": st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True) | st.text(max_size=10),
        "AccountSid": st.sampled_from([fake_twilio.ACCOUNT_SID, "AC0"]),
    },
    optional={
        "Body": TEXTISH,
        "NumMedia": st.sampled_from(["0", "1", "x"]),
        "MessageStatus": st.sampled_from(["sent", "delivered", "failed", "read", "x"]),
        "ErrorCode": st.sampled_from(["63016", "30003", ""]),
    },
) | st.dictionaries(TWILIO_KEYS, PHONES | TEXTISH | st.integers().map(str), max_size=8)


@FUZZ
@given(
    path=st.sampled_from(["/webhooks/twilio", "/webhooks/twilio/status"]),
    params=FORMS,
    signed=st.booleans(),
)
def test_twilio_webhooks(server: Server, path: str, params: dict[str, str], signed: bool) -> None:
    header = twilio_signature(fake_twilio.PUBLIC_URL + path, params) if signed else "bm90IGl0"
    body = urllib.parse.urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": header}
    status = server.check(path, body, headers)
    if not signed:
        assert status in (401, 403)


# -- TikTok DMs and TikTok lead forms --------------------------------------------------------

EVENTS = st.fixed_dictionaries(
    {
        "client_key": st.sampled_from([fake_tiktok.APP_ID, "other"]),
        "event": st.sampled_from(["im_receive_msg", "im_send_msg", "im_mark_read_msg", "x"]),
        "create_time": st.integers(min_value=0, max_value=2**33),
        "user_openid": st.sampled_from([fake_tiktok.BUSINESS_ID, "someone"]),
    },
    optional={"content": JSON.map(json.dumps) | st.text()},
).map(_json)


@FUZZ
@given(body=EVENTS | BODIES, signed=st.booleans())
def test_tiktok_dm_webhook(server: Server, body: bytes, signed: bool) -> None:
    header = fake_tiktok.signature(body) if signed else "t=1,s=00"
    headers = {"Content-Type": "application/json", "TikTok-Signature": header}
    status = server.check("/webhooks/tiktok", body, headers)
    if not signed:
        assert status in (401, 403)


LEAD_KEYS = st.sampled_from(
    ["id", "lead_id", "first_name", "phone", "email", "consent", "campaign_id", "script"]
)
RELAY_LEADS = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20) | st.integers(min_value=0)},
    optional={
        "first_name": st.text(max_size=20),
        "phone": PHONES | st.text(max_size=16),
        "email": st.sampled_from(["ana@example.com", "nope", ""]) | st.text(max_size=20),
        "consent": st.text(max_size=40),
        "campaign_id": st.integers() | st.text(max_size=10),
    },
).map(_json)
LEADS = RELAY_LEADS | st.dictionaries(LEAD_KEYS | st.text(max_size=10), SCALARS, max_size=8).map(
    _json
)


@FUZZ
@given(body=LEADS | BODIES, key=st.sampled_from([RELAY_KEY, "wrong", None]))
def test_lead_relay(server: Server, body: bytes, key: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-Api-Key"] = key
    status = server.check("/leads", body, headers)
    if key != RELAY_KEY:
        assert status == 401


COLUMNS = st.lists(
    st.fixed_dictionaries(
        {
            "column_id": st.sampled_from(["FULL_NAME", "EMAIL", "PHONE_NUMBER", "CITY", "X"])
            | st.text(max_size=12),
            "string_value": st.text(max_size=30) | PHONES,
        },
        optional={"column_name": st.text(max_size=20)},
    ),
    max_size=5,
)
GOOGLE_LEADS = st.fixed_dictionaries(
    {
        "lead_id": st.text(min_size=1, max_size=30),
        "google_key": st.sampled_from([GOOGLE_KEY, "wrong"]),
        "user_column_data": COLUMNS,
    },
    optional={
        "form_id": st.integers() | st.text(max_size=10),
        "campaign_id": st.integers(),
        "is_test": st.booleans(),
        "lead_submit_time": st.sampled_from(["2026-01-05 11:00:00+01:00", "yesterday"]),
    },
).map(_json)


@FUZZ
@given(body=GOOGLE_LEADS | BODIES)
def test_google_lead_form(server: Server, body: bytes) -> None:
    server.check("/leads/google", body, {"Content-Type": "application/json"})


TIKTOK_LEADS = st.fixed_dictionaries(
    {
        "object": st.sampled_from([1, 2, "1"]),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.integers(min_value=0, max_value=2**63) | st.text(max_size=20),
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "field": st.sampled_from(["name", "email", "phone_number"])
                                | st.text(max_size=20),
                                "value": st.text(max_size=30) | PHONES,
                            }
                        ),
                        max_size=4,
                    ),
                },
                optional={"campaign_id": st.integers(), "create_time": st.integers()},
            ),
            max_size=3,
        ),
    },
    optional={"time": st.integers(), "request_id": st.integers()},
).map(_json)


@FUZZ
@given(body=TIKTOK_LEADS | BODIES, signed=st.booleans())
def test_tiktok_lead_webhook(server: Server, body: bytes, signed: bool) -> None:
    digest = hmac.new(TIKTOK_LEADS_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Open-Signature": digest if signed else "0"}
    server.check("/leads/tiktok", body, headers)
