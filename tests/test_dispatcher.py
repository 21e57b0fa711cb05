"""The outbox dispatcher: delivered once, retried with backoff, failed with a reason."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.dispatcher import Dispatcher, RetryPolicy
from bot.errors import DeliveryError
from bot.pacing import PaceRule
from bot.ports import Transaction
from bot.records import NewLead, OutboxItem
from storage.db import connect
from storage.transactions import SqlStorage
from tests.backends import BACKENDS, Backend, Counting, open_backend
from tests.conftest import NOW, FakeClock
from tests.fakes import RecordingSender


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


async def queue(backend: Backend, count: int, kind: str = "send_text") -> None:
    def work(tx: Transaction) -> None:
        for number in range(count):
            tx.outbox.add(
                kind=kind, idempotency_key=f"k{number}", payload={"n": number}, due_at=NOW, now=NOW
            )

    await backend.storage.run(work)


def dispatcher(
    backend: Backend, sender: RecordingSender, clock: FakeClock, **options: object
) -> Dispatcher:
    return Dispatcher(
        backend.storage,
        {"send_text": sender},
        clock,
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


async def test_due_items_are_sent_and_marked(backend: Backend) -> None:
    await queue(backend, 3)
    sender = RecordingSender()
    assert await dispatcher(backend, sender, FakeClock()).run_once() == 3
    assert [item.payload["n"] for item in sender.sent] == [0, 1, 2]
    assert [row["status"] for row in await backend.outbox()] == ["sent"] * 3
    assert await dispatcher(backend, sender, FakeClock()).run_once() == 0


async def test_temporary_failure_is_retried_with_backoff_then_sent(backend: Backend) -> None:
    await queue(backend, 1)
    sender = RecordingSender()
    sender.fail_next = [DeliveryError("timeout"), DeliveryError("502 bad gateway")]
    clock = FakeClock()
    worker = dispatcher(
        backend, sender, clock, policy=RetryPolicy(first_delay=timedelta(seconds=10), jitter=0.5)
    )
    await worker.run_once()
    row = (await backend.outbox())[0]
    assert (row["status"], row["error"], row["attempts"]) == ("pending", "timeout", 1)
    first_delay = row["due_at"] - NOW
    assert timedelta(seconds=5) <= first_delay <= timedelta(seconds=15)
    assert await worker.run_once() == 0  # not due yet
    clock.now = row["due_at"]
    await worker.run_once()
    row = (await backend.outbox())[0]
    second_delay = row["due_at"] - clock.now
    assert timedelta(seconds=10) <= second_delay <= timedelta(seconds=30)  # doubled, with jitter
    clock.now = row["due_at"]
    await worker.run_once()
    assert (await backend.outbox())[0]["status"] == "sent"
    assert len(sender.sent) == 1


async def test_retry_after_from_the_provider_is_honoured(backend: Backend) -> None:
    await queue(backend, 1)
    sender = RecordingSender()
    sender.fail_next = [DeliveryError("429 too many requests", retry_after=42)]
    await dispatcher(backend, sender, FakeClock()).run_once()
    assert (await backend.outbox())[0]["due_at"] == NOW + timedelta(seconds=42)


async def test_permanent_failure_is_not_retried(backend: Backend) -> None:
    await queue(backend, 1)
    sender = RecordingSender()
    sender.fail_next = [DeliveryError("400 chat not found", permanent=True)]
    await dispatcher(backend, sender, FakeClock()).run_once()
    row = (await backend.outbox())[0]
    assert (row["status"], row["error"]) == ("failed", "400 chat not found")


async def test_gives_up_after_max_attempts(backend: Backend) -> None:
    await queue(backend, 1)
    sender = RecordingSender()
    sender.fail_next = [DeliveryError(f"timeout {n}") for n in range(3)]
    clock = FakeClock()
    worker = dispatcher(backend, sender, clock, policy=RetryPolicy(max_attempts=3))
    for _ in range(3):
        clock.advance(hours=2)
        await worker.run_once()
    row = (await backend.outbox())[0]
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "timeout 2", 3)


async def test_unknown_kind_fails_with_reason(backend: Backend) -> None:
    await queue(backend, 1, kind="carrier_pigeon")
    await dispatcher(backend, RecordingSender(), FakeClock()).run_once()
    row = (await backend.outbox())[0]
    assert (row["status"], row["error"]) == ("failed", "no sender for 'carrier_pigeon'")


async def test_a_sender_bug_is_retried_not_fatal(backend: Backend) -> None:
    class Broken(RecordingSender):
        async def send(self, item: OutboxItem) -> str | None:
            raise ZeroDivisionError

    await queue(backend, 2)
    worker = Dispatcher(backend.storage, {"send_text": Broken()}, FakeClock())
    assert await worker.run_once() == 2
    assert {row["error"] for row in await backend.outbox()} == {"unexpected ZeroDivisionError"}


async def test_run_wakes_on_new_work_and_stops_when_cancelled(backend: Backend) -> None:
    sender = RecordingSender()
    worker = dispatcher(backend, sender, FakeClock(), idle_wait=30)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await queue(backend, 2)
    worker.wake()
    for _ in range(100):
        if len(sender.sent) == 2:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sender.sent) == 2


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(
        first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=60), jitter=0
    )
    rng = random.Random(1)
    assert [policy.delay(n, rng).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_several_dispatchers_send_each_item_once(kind: str, tmp_path: Path) -> None:
    async with open_backend(kind, tmp_path) as backend:
        assert backend.database is not None
        await queue(backend, 60)
        sender = RecordingSender()
        databases = [
            connect(backend.database.url, schema=backend.database.schema) for _ in range(3)
        ]
        storages = [SqlStorage(db) for db in databases]
        workers = [
            Dispatcher(storage, {"send_text": sender}, FakeClock(), batch=5) for storage in storages
        ]
        try:

            async def drain(worker: Dispatcher) -> None:
                while await worker.run_once():
                    await asyncio.sleep(0)

            await asyncio.gather(*(drain(worker) for worker in workers))
        finally:
            for storage, db in zip(storages, databases, strict=True):
                await storage.close()
                await db.dispose()
        counts = Counter(item.idempotency_key for item in sender.sent)
        assert len(counts) == 60
        assert set(counts.values()) == {1}


async def queue_chat(backend: Backend, conversation_id: int, texts: list[str]) -> None:
    """Outbox rows for one conversation, as the service writes them (needs a real conversation
    on SQL backends, so a lead and a conversation are created first)."""

    def work(tx: Transaction) -> None:
        for number, text in enumerate(texts):
            tx.outbox.add(
                kind="send_text",
                idempotency_key=f"c{conversation_id}-{number}",
                payload={"channel": "telegram", "chat": str(conversation_id), "text": text},
                due_at=NOW,
                now=NOW,
                conversation_id=conversation_id,
            )

    await backend.storage.run(work)


async def conversation(backend: Backend, name: str) -> int:
    new = NewLead("api", name, "quote", NOW)

    def work(tx: Transaction) -> int:
        lead, _ = tx.leads.add(new, f"R{name}", NOW)
        return tx.conversations.add(
            lead_id=lead.id,
            channel="telegram",
            channel_user_id=name,
            script_id="quote",
            script_version="v1",
            now=NOW,
        ).id

    await backend.storage.run(lambda tx: tx.scripts.ensure("quote", "v1", "id: quote", NOW))
    return await backend.storage.run(work)


async def test_a_conversations_messages_go_out_in_order_even_after_a_retry(
    backend: Backend,
) -> None:
    first = await conversation(backend, "one")
    await queue_chat(backend, first, ["a", "b", "c"])
    sender = RecordingSender()
    sender.fail_next = [DeliveryError("timeout")]  # "a" fails once
    clock = FakeClock()
    worker = dispatcher(backend, sender, clock)
    while await worker.run_once():
        pass
    assert sender.sent == []  # "b" and "c" wait behind "a"
    clock.advance(minutes=1)
    while await worker.run_once():
        clock.advance(seconds=1)
    assert [item.payload["text"] for item in sender.sent] == ["a", "b", "c"]


async def test_chats_are_paced_but_do_not_wait_for_each_other(backend: Backend) -> None:
    one, two = await conversation(backend, "one"), await conversation(backend, "two")
    await queue_chat(backend, one, ["1a", "1b"])
    await queue_chat(backend, two, ["2a"])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    ticks = iter(range(1000))
    worker = Dispatcher(
        backend.storage,
        {"send_text": RecordingSender()},
        FakeClock(),
        pacing={"telegram": PaceRule(per_chat=1.0)},
        monotonic=lambda: float(next(ticks)) / 1000,  # time barely moves
        sleep=sleep,
    )
    while await worker.run_once():
        pass
    assert len(slept) == 1  # only "1b" waited for its chat's next slot
    assert 0.9 < slept[0] <= 1.0


async def test_a_blocked_prospect_stops_all_sending_to_that_conversation(backend: Backend) -> None:
    blocked, other = await conversation(backend, "blocked"), await conversation(backend, "other")
    await queue_chat(backend, blocked, ["x", "y", "z"])
    await queue_chat(backend, other, ["fine"])
    sender = RecordingSender()
    sender.fail_next = [DeliveryError("403 bot was blocked by the user", unreachable=True)]
    worker = dispatcher(backend, sender, FakeClock())
    while await worker.run_once():
        pass
    rows = {row["payload"]["text"]: row for row in await backend.outbox()}
    assert [rows[t]["status"] for t in ("x", "y", "z")] == ["failed"] * 3
    assert rows["z"]["error"] == "403 bot was blocked by the user"
    assert rows["fine"]["status"] == "sent"
    assert [item.payload["text"] for item in sender.sent] == ["fine"]


async def test_a_database_hiccup_does_not_stop_the_dispatcher(backend: Backend) -> None:
    class Flaky:
        """The backend's storage, failing its first two transactions."""

        def __init__(self, inner: object) -> None:
            self.inner = inner
            self.failures = 2

        async def run(self, work: object) -> object:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database went away")
            return await self.inner.run(work)  # type: ignore[attr-defined]

    await queue(backend, 1)
    sender = RecordingSender()
    worker = Dispatcher(Flaky(backend.storage), {"send_text": sender}, FakeClock(), idle_wait=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if sender.sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sender.sent) == 1


class HeldSender(RecordingSender):
    """Holds each send to the chats in `held` until `release` is set."""

    def __init__(self, held: set[str]) -> None:
        super().__init__()
        self.held = held
        self.release = asyncio.Event()
        self.started: list[str] = []

    async def send(self, item: OutboxItem) -> str | None:
        self.started.append(str(item.payload["text"]))
        if item.payload["chat"] in self.held:
            await self.release.wait()
        return await super().send(item)


async def until(condition: object, what: str) -> None:
    for _ in range(250):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_slow_send_holds_back_only_its_own_conversation(backend: Backend) -> None:
    slow, fast = await conversation(backend, "slow"), await conversation(backend, "fast")
    await queue_chat(backend, slow, ["s1", "s2"])
    sender = HeldSender(held={str(slow)})
    worker = dispatcher(backend, sender, FakeClock(), idle_wait=30)
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: sender.started == ["s1"], "the slow send to start")
        # A reply written while that send hangs goes out at once, not after the slow one.
        await queue_chat(backend, fast, ["f1", "f2"])
        worker.wake()
        await until(lambda: [item.payload["text"] for item in sender.sent] == ["f1", "f2"], "f1")
        assert "s2" not in sender.started  # its conversation's order: s2 only after s1
        sender.release.set()
        await until(lambda: len(sender.sent) == 4, "s1 and s2")
        assert [item.payload["text"] for item in sender.sent][2:] == ["s1", "s2"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [row["status"] for row in await backend.outbox()] == ["sent"] * 4


async def test_work_left_behind_by_a_full_batch_goes_when_room_frees(backend: Backend) -> None:
    """With `batch` sends under way the loop claims nothing more and waits. A send ending with
    nothing behind it in its own conversation must still wake it when the batch was full: the
    rows left waiting would otherwise sit until the idle timeout (30 s here)."""
    first, second, third = [await conversation(backend, name) for name in ("c1", "c2", "c3")]
    for chat, text in ((first, "one"), (second, "two")):
        await queue_chat(backend, chat, [text])
    sender = HeldSender(held={str(first), str(second)})
    worker = dispatcher(backend, sender, FakeClock(), idle_wait=30, batch=2)
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: sorted(sender.started) == ["one", "two"], "the batch to fill")
        await queue_chat(backend, third, ["three"])
        worker.wake()  # committed while the batch is full: nothing is claimed for it yet
        await asyncio.sleep(0.1)
        assert "three" not in sender.started
        sender.release.set()  # both sends end; neither conversation has more to send
        await until(lambda: len(sender.sent) == 3, "the third message, once room freed")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_sends_under_way_when_stopped_are_claimed_again_later(backend: Backend) -> None:
    one = await conversation(backend, "one")
    await queue_chat(backend, one, ["hello"])
    sender = HeldSender(held={str(one)})
    clock = FakeClock()
    worker = dispatcher(backend, sender, clock, idle_wait=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: sender.started == ["hello"], "the send to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await backend.outbox()
    assert row["status"] == "pending"  # not lost: its lease runs out and it goes again
    clock.advance(minutes=5)
    sender.release.set()
    assert await dispatcher(backend, sender, clock).run_once() == 1
    assert [item.payload["text"] for item in sender.sent] == ["hello"]


async def test_a_send_with_nothing_behind_it_does_not_claim_again(backend: Backend) -> None:
    """Each delivery that ends used to wake the claim loop; the usual reply has nothing behind
    it, and that claim found nothing (a transaction per reply). Only a send that freed the
    next message of its conversation wakes it now."""
    alone, pair = await conversation(backend, "alone"), await conversation(backend, "pair")
    await queue_chat(backend, alone, ["a1"])
    await queue_chat(backend, pair, ["p1", "p2"])
    counting = Counting(backend.storage)
    sender = RecordingSender()
    worker = Dispatcher(counting, {"send_text": sender}, FakeClock(), idle_wait=30)
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: len(sender.sent) == 3, "the three messages")
        await asyncio.sleep(0.2)  # time for any claim a finished delivery would start
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    texts = [item.payload["text"] for item in sender.sent]
    assert texts.index("p1") < texts.index("p2")
    # Claims: the first (a1 and p1), then the one p1's send started (p2); records: three.
    assert counting.runs == 2 + 3
