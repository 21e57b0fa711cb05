"""A worker process for the crash test: it plays turns (or dispatches) until it is killed.

Run as `python -m tests.crash_worker turns DATABASE_URL SCHEMA` or `... dispatch ... SENT_LOG`.
It prints "ACK <id>" after each turn returns, that is after its commit: what the parent saw
acknowledged must survive the SIGKILL that follows.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

from bot.catalog import LoadedScript, ScriptCatalog
from bot.dispatcher import Dispatcher
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.records import OutboxItem, Receipt
from bot.service import ConversationService
from storage.db import connect
from storage.transactions import SqlStorage

SCRIPT = """\
id: crash
name: Crash
questions:
  - {id: a, type: text, prompt: First?}
  - {id: b, type: text, prompt: Second?}
  - {id: c, type: text, prompt: Third?}
outcomes: [{id: done, message: Thanks!}]
"""
CONVERSATIONS = 8


def now() -> datetime:
    return datetime.now(UTC)


async def play_turns(url: str, schema: str | None) -> None:
    database = connect(url, schema=schema or None)
    catalog = ScriptCatalog([LoadedScript(load_script(SCRIPT), SCRIPT)])
    service = ConversationService(SqlStorage(database), catalog, now)

    async def one_conversation(conversation_id: int) -> None:
        for turn in range(100_000):
            key = f"{conversation_id}-{turn}"
            await service.handle(conversation_id, TextReceived(f"msg {key}"), Receipt("web", key))
            print(f"ACK {key}", flush=True)

    await asyncio.gather(*(one_conversation(n) for n in range(1, CONVERSATIONS + 1)))


class LoggingSender:
    """Appends each idempotency key to a file before returning, as a provider would receive."""

    def __init__(self, path: str) -> None:
        self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115  (open for the process)

    async def send(self, item: OutboxItem) -> str | None:
        self._log.write(item.idempotency_key + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())
        print(f"SENT {item.idempotency_key}", flush=True)
        await asyncio.sleep(0.002)  # the provider's round trip: the kill can land in it
        return f"p-{item.idempotency_key}"


async def dispatch(url: str, schema: str | None, sent_log: str) -> None:
    database = connect(url, schema=schema or None)
    dispatcher = Dispatcher(
        SqlStorage(database), {"send_text": LoggingSender(sent_log)}, now, batch=5
    )
    while True:
        await dispatcher.run_once()


if __name__ == "__main__":
    mode, url, schema = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "turns":
        asyncio.run(play_turns(url, schema))
    else:
        asyncio.run(dispatch(url, schema, sys.argv[4]))
