"""A prospect in the built-in web chat, as a browser would drive it over HTTP: the hosted form,
then the chat page, then messages. No messaging provider is involved, so console tests (API and
browser) can hold real conversations against the real app."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from sqlalchemy import select

from storage.db import Database
from storage.tables import ConversationRow, LeadRow

SCRIPT = "car-test-drive"
Send = Callable[..., Awaitable[ClientResponse]]  # (method, path, **options) -> response
C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]


@dataclass
class Prospect:
    send: Send
    token: str = ""
    conversation_id: int = 0
    reference: str = ""

    async def arrive(self, database: Database, script: str = SCRIPT, **fields: str) -> Prospect:
        """Submit the script's hosted form (with consent) and open the web chat."""
        email = await self.submit(script, **fields)
        chat = await self.send("GET", f"/chat/{self.token}")
        assert chat.status == 200, await chat.text()
        self.conversation_id, self.reference = await _conversation_of(database, email)
        return self

    async def submit(self, script: str = SCRIPT, **fields: str) -> str:
        """Submit the script's hosted form (with consent); the lead's email."""
        page = await self.send("GET", f"/f/{script}")
        assert page.status == 200, await page.text()
        nonce = re.search(r'name="_nonce" value="([^"]+)"', await page.text())
        assert nonce is not None
        form = {
            "_nonce": nonce.group(1),
            "_consent": "yes",
            "first_name": "Ana",
            "phone": "612345678",
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            **fields,
        }
        response = await self.send("POST", f"/f/{script}", data=form)
        assert response.status == 303, await response.text()
        self.token = response.headers["Location"].removeprefix("/r/")
        return form["email"]

    async def say(self, text: str) -> None:
        body = {"text": text, "client_id": uuid.uuid4().hex}
        response = await self.send("POST", f"/chat/{self.token}/messages", json=body)
        assert response.status == 202, await response.text()

    async def tap(self, question: str, option: str) -> None:
        body = {"option": option, "question_id": question, "client_id": uuid.uuid4().hex}
        response = await self.send("POST", f"/chat/{self.token}/messages", json=body)
        assert response.status == 202, await response.text()

    async def lines(self) -> list[dict[str, Any]]:
        response = await self.send("GET", f"/chat/{self.token}/messages")
        assert response.status == 200
        found: list[dict[str, Any]] = await response.json()
        return found


async def _conversation_of(database: Database, email: str) -> tuple[int, str]:
    query = (
        select(C.c.id, L.c.reference)
        .join(L, L.c.id == C.c.lead_id)
        .where(L.c.email == email)
        .order_by(C.c.id.desc())
    )
    async with database.reading() as connection:
        row = (await connection.execute(query)).first()
    assert row is not None, "the chat page opened no conversation"
    return int(row.id), str(row.reference)
