"""Which question a tapped button answers: the one of the message it sat on.

A prospect can tap a button a moment after it arrived, before the dispatcher has recorded the
provider's id for that message (the send returned, its record is a transaction away). Buttons
that carry a question are only ever ours, so while the chat has a question whose send is not
recorded yet, an id not found is looked up again for a short while; otherwise (or after the
wait) the tap is read as a tap on a message leadbot does not know, once a last lookup made
sure the record did not land between the two reads.
"""

from __future__ import annotations

import asyncio

from storage.db import Database
from storage.transcripts import awaits_provider_id, question_of_provider_message

RECORD_WAIT = 10.0  # seconds: recording a send takes milliseconds, but seconds on a busy box
_POLL = 0.05


async def question_of_tap(
    database: Database, channel: str, chat: str, provider_id: str
) -> str | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORD_WAIT
    while True:
        question = await question_of_provider_message(database, channel, chat, provider_id)
        if question is not None or loop.time() >= deadline:
            return question
        if not await awaits_provider_id(database, channel, chat):
            # Nothing in flight: a message leadbot does not know, or an old one; or the record
            # landed between these two reads, which only a read after the second one sees.
            return await question_of_provider_message(database, channel, chat, provider_id)
        await asyncio.sleep(_POLL)
