"""Follow-ups through the whole application (`create_app` on a fake Twilio, the app's clock in
the test's hands): a reminder due while the server was down goes out once when it starts again,
and an expired conversation is marked abandoned and picked up by a late reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from storage.tables import TimerRow
from tests.conftest import FakeClock
from tests.fake_twilio import FakeTwilio, Harness, database_url, twilio_settings
from tests.test_followups import DAYTIME, MADRID, script
from webhooks.app import create_app
from webhooks.keys import CLOCK

TIMERS = TimerRow.__table__  # type: ignore[attr-defined]


class Server:
    """leadbot on one database and one fake Twilio, started and stopped as often as asked."""

    def __init__(
        self,
        aiohttp_client: AiohttpClient,
        fake_url: str,
        fake: FakeTwilio,
        database: str,
        script_file: Path,
    ) -> None:
        self._client_factory = aiohttp_client
        self._fake_url = fake_url
        self.fake = fake
        self._database = database
        self._script = script_file
        self.clock = FakeClock(DAYTIME)

    async def start(self) -> Harness:
        settings = twilio_settings(
            self._database, self._fake_url, scripts=[self._script], default_script="nudge"
        )
        app = create_app(settings)
        app[CLOCK] = self.clock  # turns, outbox and timers all on the test's time
        return Harness(await self._client_factory(app), self.fake)


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> AsyncIterator[Server]:
    fake = FakeTwilio()
    fake_server = await aiohttp_server(fake.app())
    script_file = tmp_path / "nudge.yaml"
    script_file.write_text(script(after="[10m]"), encoding="utf-8")
    async with database_url(request.param, tmp_path) as url:
        yield Server(
            aiohttp_client, str(fake_server.make_url("")).rstrip("/"), fake, url, script_file
        )


async def timers_due(harness: Harness, now: datetime) -> int:
    return sum(1 for row in await harness.rows(TIMERS) if row.due_at <= now)


async def test_a_reminder_due_while_the_server_was_down_goes_out_once_at_start(
    server: Server,
) -> None:
    first = await server.start()
    ana = first.texter(MADRID)
    await ana.say("Hello")
    await ana.expect("Hi!", "Which product?")
    await first.settled()
    await first.client.close()  # down, with a reminder due in 10 minutes

    server.clock.advance(minutes=30)
    second = await server.start()
    await server.fake.wait_until(
        lambda: "Still there?" in server.fake.texts(MADRID), "the reminder"
    )

    async def quiet() -> bool:
        return await timers_due(second, server.clock()) == 0

    await second.until(quiet, "no timer left due")
    await second.settled()
    question = "Which product?\n\n1. Alpha\n2. Beta"
    assert server.fake.texts(MADRID) == ["Hi!", question, "Still there?", question]
    [conversation] = await second.conversations()
    assert conversation.status == "active"
    await second.client.close()


async def test_expiry_marks_the_question_and_a_late_reply_resumes_there(server: Server) -> None:
    harness = await server.start()
    ana = harness.texter(MADRID)
    await ana.say("Hello")
    await ana.expect("Hi!", "Which product?")
    server.clock.advance(minutes=10)
    await ana.expect("Still there?", "Which product?")
    server.clock.advance(days=3)

    async def expired() -> bool:
        [conversation] = await harness.conversations()
        return bool(conversation.status == "expired")

    await harness.until(expired, "the expiry")
    [conversation] = await harness.conversations()
    assert (conversation.abandoned_question, conversation.abandoned_at) == (
        "product",
        server.clock(),
    )
    sent = len(server.fake.texts(MADRID))
    assert sent == 4  # the expiry itself says nothing

    server.clock.advance(days=5)
    await ana.say("2")  # the second option, typed as its number
    await ana.expect("Your budget?")
    [conversation] = await harness.conversations()
    assert conversation.status == "active"
    [lead] = await harness.leads()
    assert lead.answers == {"product": "b"}
    await harness.client.close()
