"""Run a turn's work in one transaction: on PostgreSQL concurrently, on SQLite in one thread
with the commits of concurrent turns grouped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
log = logging.getLogger(__name__)
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
    its thread. So the turns waiting at a moment run as one group, in one transaction under
    one commit (one fsync), and a turn's `run` returns only after that commit: nothing is
    acknowledged before it is durable.

    The works themselves run on the event loop's thread, one after another: each is a few
    hundred microseconds of Python with SQLite calls in between. They used to run on a thread
    of their own, and every SQLite call then handed the GIL to the loop and waited to get it
    back, so a group took about twice its CPU time under load. What may wait runs on the
    writer's thread instead: BEGIN IMMEDIATE (another connection, such as an aiosqlite write
    in this process or another process, may hold the lock, and the busy handler sleeps until
    it lets go) and COMMIT (the fsync). The loop serves requests meanwhile. The connection is
    only ever used by one thread at a time: the loop awaits each step it hands over.

    If one work in a group raises, the group's transaction is rolled back and each work runs
    again in a transaction of its own, so one turn's failure never takes the others with it.
    (Savepoints would give the same isolation, but cost more than the work of a lead itself;
    a work is a function of the database it reads, so running it again is safe.)"""

    def __init__(self, url: str) -> None:
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        self._engine: Engine = create_engine(
            sync_url,
            # The loop runs the statements, the writer's thread begins and commits.
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            hide_parameters=True,  # no lead's data in an error's message
        )
        event.listen(self._engine, "connect", _on_connect)
        event.listen(self._engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self._queue: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._pump: asyncio.Task[None] | None = None
        self._thread = _WriterThread()
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
        try:
            while self._queue:
                await _quiet_turn()
                group, self._queue = self._queue[:GROUP_LIMIT], self._queue[GROUP_LIMIT:]
                try:
                    outcomes = await self._run_group([work for work, _ in group])
                except BaseException as error:  # cancelled, or a work raised no Exception
                    for _, future in group:  # never leave a caller waiting for nothing
                        _fail(future, error)
                    raise
                for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        except asyncio.CancelledError as cancelled:  # the works still queued never run
            queued, self._queue = self._queue, []
            for _, future in queued:
                _fail(future, cancelled)
            raise

    async def _run_group(self, works: list[Callable[[Any], Any]]) -> list[tuple[bool, Any]]:
        if len(works) > 1:
            try:
                return [(True, value) for value in await self._in_transaction(works)]
            except Exception:  # noqa: S110  (rolled back: each work runs alone below)
                pass
        outcomes: list[tuple[bool, Any]] = []
        for work in works:
            try:
                outcomes.append((True, (await self._in_transaction([work]))[0]))
            except Exception as error:  # the caller gets it
                outcomes.append((False, error))
        return outcomes

    async def _in_transaction(self, works: list[Callable[[Any], Any]]) -> list[Any]:
        """Run `works` in one transaction and commit it; on any error it is rolled back."""
        session = _Session(self._engine)
        try:
            await self._thread.call(session.begin)
            transaction = SqlTransaction(session.connection)
            values = [work(transaction) for work in works]
            await self._thread.call(session.commit)
            return values
        finally:
            # Queued behind any step still running (a cancelled wait does not stop it), so the
            # connection is never in two threads at once; rolls back what was not committed.
            self._thread.post(session.close)

    async def close(self) -> None:
        self._closed = True
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)  # let queued work finish
        self._thread.stop()
        self._engine.dispose()


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)


class _Session:
    """One transaction's connection, begun and committed on the writer's thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "begin() first"
        return self._connection

    def begin(self) -> None:
        self._connection = self._engine.connect()
        self._connection.begin()

    def commit(self) -> None:
        self.connection.commit()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()  # rolls back a transaction still open


class _WriterThread:
    """A thread of our own for the steps that may wait. Handing it a step is one put on a C
    queue, where a ThreadPoolExecutor's submit takes Python locks its worker also takes.
    Steps run in the order they were handed over."""

    def __init__(self) -> None:
        self._steps: SimpleQueue[tuple[Callable[[], None], _Done | None] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None  # started with the first step

    async def call(self, step: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.post(step, _Done(loop, done))
        await done

    def post(self, step: Callable[[], None], done: _Done | None = None) -> None:
        if self._thread is None:
            # A daemon: at exit a transaction cut short was never committed, so never
            # acknowledged.
            self._thread = threading.Thread(target=self._serve, name="leadbot-sqlite", daemon=True)
            self._thread.start()
        self._steps.put((step, done))

    def stop(self) -> None:
        if self._thread is not None:
            self._steps.put(None)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while (item := self._steps.get()) is not None:
            step, done = item
            try:
                step()
            except BaseException as error:
                if done is not None:
                    done.settle(error)
                else:  # a close nobody waits for: say so, and serve the next step
                    log.warning("the SQLite writer's step failed: %s", type(error).__name__)
            else:
                if done is not None:
                    done.settle(None)


async def _quiet_turn() -> None:
    """Return when a turn of the event loop finds nothing else to run, or after QUIET_WAIT.

    Requests the loop has not read yet then join the group, where they would otherwise each
    wait for the next. In bench.intake, when the works still ran on the writer's thread: groups
    of 30 leads instead of 16, and about 10% more leads/s than starting at once; with the works
    on the loop, starting at once was no better in bench.telegram (bench/README.md)."""
    started = before = time.perf_counter()
    while True:
        await asyncio.sleep(0)
        now = time.perf_counter()
        if now - before < QUIET_TURN or now - started > QUIET_WAIT:
            return
        before = now


class _Done:
    """The future a step's outcome goes to, on the loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self._loop = loop
        self._future = future

    def settle(self, error: BaseException | None) -> None:
        """Called on the writer's thread: hand the outcome to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_settle, self._future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if error is not None:
        _fail(future, error)
    elif not future.done():
        future.set_result(None)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    configure_sqlite_connection(dbapi_connection)
