"""Memory per 10,000 live conversations: what the conversation service keeps in the process.

Run: `python -m bench.memory [--conversations N]`. N conversations are started on SQLite and
each answers the first of three questions, so that all N are live (waiting for an answer)
when memory is read. Two figures, each beside the same figure for the baseline:
- objects: Python objects the garbage collector still tracks afterwards (after a full
  collection), the count that grows if anything is kept per conversation (tracemalloc would
  say the same in bytes, but makes the run five times slower);
- RSS: growth of the resident set (`/proc/self/statm`), which also counts SQLite's page cache.

Baseline, in the same process: the same N conversations held the way an in-memory bot holds
them (python-telegram-bot's ConversationHandler keeps a state per chat and a `user_data` dict
per user): one plain dict per conversation with its state and answers. leadbot keeps state in
the database, so its figure should not grow with N at all.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.turns import _database, _service, _start
from bot.inbound import TextReceived
from storage.transactions import SqlStorage

THREE_QUESTIONS = """\
id: three
name: Three
lead_fields: [first_name]
questions:
  - {id: name, type: text, prompt: Your name?}
  - {id: budget, type: number, prompt: Budget?}
  - {id: notes, type: text, prompt: Anything else?}
outcomes: [{id: done, message: Thanks!}]
"""
WAVE = 500


def _rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _settled() -> tuple[int, int]:
    gc.collect()
    return len(gc.get_objects()), _rss_bytes()


async def measure_leadbot(count: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as folder:
        database, close = await _database("sqlite", None, Path(folder))
        storage = SqlStorage(database)
        try:
            service = _service(storage, THREE_QUESTIONS)
            warm = await _start(storage, service, WAVE, "three")  # caches, pools, compiled SQL
            await asyncio.gather(*(service.handle(c, TextReceived("Ana")) for c in warm))
            objects, rss = _settled()
            for start in range(0, count, WAVE):
                wave = await _start(storage, service, min(WAVE, count - start), "three")
                await asyncio.gather(*(service.handle(c, TextReceived("Ana")) for c in wave))
            assert service.locks_held == 0
            after_objects, after_rss = _settled()
        finally:
            await storage.close()
            await close()  # type: ignore[misc]
    return after_objects - objects, after_rss - rss


def measure_baseline(count: int) -> tuple[int, tuple[dict[str, Any], ...], int]:
    objects, rss = _settled()
    held = tuple(
        {
            "chat_id": 10_000_000 + n,
            "state": "budget",
            "lead": {"first_name": "Ana", "source": "bench", "reference": f"R{n:08d}"},
            "answers": {"name": "Ana"},
        }
        for n in range(count)
    )
    after_objects, after_rss = _settled()
    return after_objects - objects, held, after_rss - rss


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


async def main(count: int) -> None:
    base_objects, held, base_rss = measure_baseline(count)
    del held
    objects, rss = await measure_leadbot(count)
    print(f"{count:,} live conversations (each waiting for its second answer), SQLite")
    print("| figure | leadbot | baseline: one dict per conversation | ratio |")
    print("| --- | --- | --- | --- |")
    kept = f"{objects:,}" if objects > 0 else f"none ({objects:+,}: noise of the collector)"
    # Not a ratio: dicts holding only strings and numbers are not tracked by the collector, so
    # the baseline's count is one object per conversation, not its size.
    print(f"| GC-tracked objects kept | {kept} | {base_objects:,} | |")
    print(f"| RSS growth | {_mb(rss)} | {_mb(base_rss)} | {rss / max(base_rss, 1):.2f}x |")
    print(f"| RSS growth per conversation | {rss / count:,.0f} B | {base_rss / count:,.0f} B | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.conversations))
