"""`leadbot serve --workers N`: several processes on one port and one PostgreSQL database, and the
drill of two real workers sharing conversations under concurrent load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from storage.db import connect
from storage.tables import ConversationRow, LeadRow, MessageRow, OutboxRow
from tests.fake_telegram import SECRET, TOKEN, USERNAME, FakeTelegram, message_update
from tests.fake_twilio import database_url
from tests.served import QUESTIONS, drill_script, expected_texts, start, telegram_env
from webhooks.cli import main
from webhooks.workers import WORKER_HEADER

pytestmark = [pytest.mark.slow, pytest.mark.drill]
CHATS = 12


def test_several_workers_on_sqlite_are_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "--workers 2 needs PostgreSQL" in result.output
    assert "LEADBOT_DATABASE_URL" in result.output
    assert not (tmp_path / "leadbot.db").exists()  # refused before anything was opened


async def _pids(url: str, path: str = "/healthz", seconds: float = 30) -> set[str]:
    """Worker pids seen answering, one new connection per request, until two have answered or
    `seconds` have passed: a worker still starting on a loaded machine may take seconds, and a
    fixed number of quick requests can all be over before it listens."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        while len(seen) < 2 and time.monotonic() < deadline:
            async with session.get(url + path) as response:
                assert response.status == 200, await response.text()
                seen.add(response.headers[WORKER_HEADER])
            await asyncio.sleep(0.01)
    return seen


async def test_two_workers_answer_on_one_port_and_stop_together(tmp_path: Path) -> None:
    async with database_url("postgresql", tmp_path) as url:
        env = {"LEADBOT_DATABASE_URL": url, "LEADBOT_SECRET_KEY": "workers-secret-0123456789"}
        served = await start(env, tmp_path, "--workers", "2")
        try:
            pids = await _pids(served.url, "/readyz")
            assert len(pids) == 2, served.output()
            assert str(served.process.pid) not in pids  # the parent supervises, never serves
        finally:
            code = await served.stop(signal.SIGTERM)
        assert code == 0, served.output()
        for pid in pids:  # the parent waited for both before it exited
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
        assert "Traceback" not in served.output()


async def test_a_worker_that_dies_stops_the_set(tmp_path: Path) -> None:
    async with database_url("postgresql", tmp_path) as url:
        env = {"LEADBOT_DATABASE_URL": url, "LEADBOT_SECRET_KEY": "workers-secret-0123456789"}
        served = await start(env, tmp_path, "--workers", "2")
        pids = await _pids(served.url)
        os.kill(int(next(iter(pids))), signal.SIGKILL)
        # The supervisor stops the other and exits non-zero: the service manager restarts all.
        assert await asyncio.wait_for(served.process.wait(), 40) == 1, served.output()
        assert "exited on its own" in served.output()


async def test_two_workers_share_conversations_without_losing_or_repeating_a_turn(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    """Every chat's answers are posted all at once, each on a new connection, so that the two
    workers take turns of the same conversation at the same moment; each turn must be applied
    once, and each reply sent once, in order."""
    fake = FakeTelegram()
    api = await aiohttp_server(fake.app())
    script = tmp_path / "drill.yaml"
    script.write_text(drill_script())
    async with database_url("postgresql", tmp_path) as url:
        env = {
            **telegram_env(str(api.make_url("")).rstrip("/"), TOKEN, SECRET, USERNAME),
            "LEADBOT_DATABASE_URL": url,
            "LEADBOT_SCRIPTS": json.dumps([str(script)]),
        }
        served = await start(env, tmp_path, "--workers", "2")
        answered_by: Counter[str] = Counter()
        try:
            # Both workers up before the load (start() waits for the first to answer only).
            assert len(await _pids(served.url)) == 2
            connector = aiohttp.TCPConnector(force_close=True, limit=0)
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

                async def post(chat: int, text: str) -> None:
                    update = message_update(fake.next_update_id(), chat, text=text)
                    async with session.post(
                        f"{served.url}/webhooks/telegram", json=update
                    ) as response:
                        assert response.status == 200, await response.text()
                        answered_by[response.headers[WORKER_HEADER]] += 1

                async def chat(number: int) -> None:
                    await post(number, "/start")
                    await asyncio.gather(
                        *(post(number, f"answer {n} of {number}") for n in range(1, 1 + QUESTIONS))
                    )

                chats = range(1_000_001, 1_000_001 + CHATS)
                await asyncio.gather(*(chat(number) for number in chats))
                for number in chats:
                    await fake.wait_for_messages(number, len(expected_texts()), timeout=30)
                await asyncio.sleep(0.3)  # a repeated send would arrive by now
        finally:
            assert await served.stop() == 0, served.output()

        assert len(answered_by) == 2, answered_by  # both workers took turns
        for number in chats:  # every reply once, in order: nothing lost, nothing repeated
            assert fake.texts(number) == expected_texts(), number
        database = connect(url)
        try:
            async with database.reading() as connection:
                lines = (await connection.execute(select(MessageRow.__table__))).all()  # type: ignore[attr-defined]
                outbox = (await connection.execute(select(OutboxRow.__table__))).all()  # type: ignore[attr-defined]
                conversations = (await connection.execute(select(ConversationRow.__table__))).all()  # type: ignore[attr-defined]
                leads = (await connection.execute(select(LeadRow.__table__))).all()  # type: ignore[attr-defined]
        finally:
            await database.dispose()
        assert len(conversations) == CHATS
        assert {row.status for row in outbox} == {"sent"}
        assert len(outbox) == CHATS * len(expected_texts())
        prospect = Counter(row.text for row in lines if row.author == "prospect")
        for number in chats:
            for n in range(1, 1 + QUESTIONS):
                assert prospect[f"answer {n} of {number}"] == 1
        for lead in leads:  # each answer stored once, against its own question
            assert len(lead.answers) == QUESTIONS, lead.answers
            assert len(set(lead.answers.values())) == QUESTIONS
