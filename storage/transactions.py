"""Run a turn's work in one transaction: on PostgreSQL concurrently, on SQLite in one thread
with the commits of concurrent turns grouped."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.appointments import SqlAppointments
from storage.bookkeeping import (
    SqlAudit,
    SqlReceipts,
    SqlScriptVersions,
    SqlSuppressions,
    SqlTimers,
)
from storage.conversations import SqlConversationRepository, SqlTranscript
from storage.crm import SqlCrm
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database, configure_sqlite_connection
from storage.leads import SqlLeadRepository
from storage.outbox import SqlOutbox

T = TypeVar("T")
GROUP_LIMIT = 64  # turns per grouped commit at most: bounds the latency a group adds
# A turn of the event loop that comes back this fast found nothing else to run (an idle turn
# takes a few us; one that handles a request or sends a reply, 60 us and more).
QUIET_TURN = 50e-6
QUIET_WAIT = 0.005  # the longest a group waits for such a turn


class SqlTransaction:
    """Implements bot.ports.Transaction over one connection in a transaction."""

    def __init__(self, connection: Connection) -> None:
        self.leads = SqlLeadRepository(connection)
        self.conversations = SqlConversationRepository(connection)
        self.transcript = SqlTranscript(connection)
        self.outbox = SqlOutbox(connection)
        self.receipts = SqlReceipts(connection)
        self.suppressions = SqlSuppressions(connection)
        self.audit = SqlAudit(connection)
        self.timers = SqlTimers(connection)
        self.scripts = SqlScriptVersions(connection)
        self.crm = SqlCrm(connection)
        self.appointments = SqlAppointments(connection)


class SqlStorage:
    """Implements bot.ports.Storage for a `Database`."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sqlite: _SqliteWriter | None = None
        if database.dialect == "sqlite":
            self._sqlite = _SqliteWriter(database.url)

    async def run(self, work: Callable[[Any], T]) -> T:
        if self._sqlite is not None:
            return await self._sqlite.run(work)
        async with self._database.engine.begin() as connection:
            # run_sync lets synchronous repository code drive asyncpg: each statement still
            # awaits the network, so other turns run meanwhile.
            return await connection.run_sync(lambda sync: work(SqlTransaction(sync)))

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()


class _SqliteWriter:
    """SQLite has one writer at a time, and each statement through aiosqlite costs a trip to
    its thread. So the whole work of a turn runs in one trip to a thread of our own, and the
    turns waiting meanwhile run in the same transaction under one commit (one fsync). A turn's
    `run` returns only after that commit: nothing is acknowledged before it is durable.

    If one work in a group raises, the group's transaction is rolled back and each work runs
    again in a transaction of its own, so one turn's failure never takes the others with it.
    (Savepoints would give the same isolation, but cost more than the work of a lead itself;
    a work is a function of the database it reads, so running it again is safe.)

    The thread is ours rather than a ThreadPoolExecutor's: handing it a group is one put on a
    C queue, where the executor's submit takes Python locks the worker also takes, and the
    event loop then waited for the worker to let go of the GIL (a millisecond at times, under
    load, for each group)."""

    def __init__(self, url: str) -> None:
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        self._engine: Engine = create_engine(
            sync_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,  # no lead's data in an error's message
        )
        event.listen(self._engine, "connect", _on_connect)
        event.listen(self._engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self._queue: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._pump: asyncio.Task[None] | None = None
        self._groups: SimpleQueue[_Group | None] = SimpleQueue()
        self._thread: threading.Thread | None = None  # started with the first group
        self._closed = False

    async def run(self, work: Callable[[Any], T]) -> T:
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            # A daemon: at exit a group cut short was never committed, so never acknowledged.
            self._thread = threading.Thread(target=self._serve, name="leadbot-sqlite", daemon=True)
            self._thread.start()
        while self._queue:
            await _quiet_turn()
            group, self._queue = self._queue[:GROUP_LIMIT], self._queue[GROUP_LIMIT:]
            done: asyncio.Future[list[tuple[bool, Any]]] = loop.create_future()
            self._groups.put(_Group([work for work, _ in group], loop, done))
            try:
                outcomes = await done
            except BaseException as error:  # the commit itself failed: nobody is acknowledged
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _serve(self) -> None:
        """The writer thread: run each group handed over, until told to stop (None)."""
        while (group := self._groups.get()) is not None:
            try:
                outcomes = self._run_group(group.works)
            except BaseException as error:
                group.settle(None, error)
            else:
                group.settle(outcomes, None)

    def _run_group(self, works: list[Callable[[Any], Any]]) -> list[tuple[bool, Any]]:
        if len(works) > 1:
            try:
                with self._engine.begin() as connection:
                    transaction = SqlTransaction(connection)
                    return [(True, work(transaction)) for work in works]
            except Exception:  # noqa: S110  (rolled back: each work runs alone below)
                pass
        return [self._run_alone(work) for work in works]

    def _run_alone(self, work: Callable[[Any], Any]) -> tuple[bool, Any]:
        try:
            with self._engine.begin() as connection:
                return True, work(SqlTransaction(connection))
        except Exception as error:  # the caller gets it
            return False, error

    async def close(self) -> None:
        self._closed = True
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)  # let queued work finish
        if self._thread is not None:
            self._groups.put(None)
            self._thread.join()
        self._engine.dispose()


async def _quiet_turn() -> None:
    """Return when a turn of the event loop finds nothing else to run, or after QUIET_WAIT.

    The writer thread needs the GIL for the Python part of each work, and gives it up at every
    SQLite call; started while the loop is busy (sending the replies of the last group, reading
    new requests), each of those is a handover between the two threads. Started when the loop
    is idle, it runs its group alone, and the work that arrived meanwhile has joined the group.
    In bench.intake: groups of 30 leads instead of 16, and about 10% more leads/s than starting
    at once."""
    started = before = time.perf_counter()
    while True:
        await asyncio.sleep(0)
        now = time.perf_counter()
        if now - before < QUIET_TURN or now - started > QUIET_WAIT:
            return
        before = now


class _Group:
    """Works for one transaction, and the future their outcomes go to on the loop's thread."""

    def __init__(
        self,
        works: list[Callable[[Any], Any]],
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[list[tuple[bool, Any]]],
    ) -> None:
        self.works = works
        self._loop = loop
        self._done = done

    def settle(self, outcomes: list[tuple[bool, Any]] | None, error: BaseException | None) -> None:
        """Called on the writer thread: hand the outcomes (or the error) to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_settle, self._done, outcomes, error)


def _settle(
    done: asyncio.Future[list[tuple[bool, Any]]],
    outcomes: list[tuple[bool, Any]] | None,
    error: BaseException | None,
) -> None:
    if done.cancelled():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(outcomes or [])


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    configure_sqlite_connection(dbapi_connection)
