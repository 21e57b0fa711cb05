"""One transaction over every repository: `async with uow: ...; await uow.commit()`."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from storage.bookkeeping import SqlReceipts, SqlScriptVersions, SqlTimers
from storage.conversations import SqlConversationRepository, SqlTranscript
from storage.db import Database
from storage.leads import SqlLeadRepository
from storage.outbox import SqlOutbox


class SqlUnitOfWork:
    """Implements bot.ports.UnitOfWork. Leaving without `commit` rolls everything back."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        connection = await self._stack.enter_async_context(self._database.writing())
        self._transaction = await connection.begin()
        self._connection = connection
        self.leads = SqlLeadRepository(connection)
        self.conversations = SqlConversationRepository(connection)
        self.transcript = SqlTranscript(connection)
        self.outbox = SqlOutbox(connection)
        self.receipts = SqlReceipts(connection)
        self.timers = SqlTimers(connection)
        self.scripts = SqlScriptVersions(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            await self._stack.aclose()

    async def commit(self) -> None:
        await self._transaction.commit()
