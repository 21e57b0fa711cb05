"""The CRM watcher on the in-memory fakes: which effects make which events, in what order,
and that a turn nobody subscribed to writes nothing."""

from __future__ import annotations

from datetime import timedelta

from bot.crm_delivery import CrmDeliverer, PostResult
from bot.crm_records import ConfiguredHook, NewEvent, Subscription
from bot.crm_routes import CrmRoutes
from bot.crm_watcher import turn_events
from bot.effects import Closed, Complete, HandOff, RecordAnswer, SendText
from tests.conftest import NOW, FakeClock
from tests.fakes import MemoryStorage


def test_effects_become_events_answers_first_then_the_verdict() -> None:
    effects = (
        SendText("thanks"),
        RecordAnswer("budget", 20000, "20000", "prospect"),
        Complete("hot", 30, ("budget",), True),
        HandOff("outcome hot"),
    )
    assert turn_events(effects) == [
        ("lead.updated", None),
        ("lead.qualified", None),
        ("lead.completed", None),
        ("conversation.handoff", "outcome hot"),
    ]
    assert turn_events((Complete("cold", 0, (), False),)) == [
        ("lead.disqualified", None),
        ("lead.completed", None),
    ]
    assert turn_events((Complete("done", 0, (), None),)) == [("lead.completed", None)]
    assert turn_events((Closed("won", 10, ()),)) == [("conversation.closed", None)]
    assert turn_events((SendText("hello"),)) == []


def test_routes_know_only_active_subscriptions() -> None:
    routes = CrmRoutes()
    routes.replace(
        [
            Subscription(1, "a", "https://a", frozenset({"lead.created"}), "settings"),
            Subscription(2, None, "https://b", frozenset({"lead.created"}), "api", "disabled"),
        ]
    )
    assert routes.wanted("lead.created") == (1,)
    assert not routes.any_wanted(["lead.updated"])


class Recorder:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []

    async def post(self, url: str, body: bytes, headers: object) -> PostResult:
        self.bodies.append(body)
        return PostResult(self.statuses.pop(0) if self.statuses else 200)


async def test_the_worker_delivers_from_the_memory_fake_in_order() -> None:
    storage = MemoryStorage()
    clock = FakeClock(NOW)
    routes = CrmRoutes()
    hook = ConfiguredHook("hub", "https://crm.example.com", frozenset({"lead.updated"}))
    await storage.run(lambda tx: tx.crm.sync_configured([hook], NOW))
    poster = Recorder(500)
    worker = CrmDeliverer(storage, poster, routes, clock, secrets={"hub": "s"})
    await worker.reload()
    for _ in range(2):
        event = NewEvent(1, "lead.updated", NOW, {"version": 1, "event": "lead.updated"})
        await storage.run(lambda tx, e=event: tx.crm.record(e, routes.wanted("lead.updated"), NOW))
    assert await worker.run_once() == 1  # the second waits behind the first
    clock.advance(seconds=15)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1
    assert [b.count(b'"sequence":1') for b in poster.bodies] == [1, 1, 0]
    assert clock.now - NOW < timedelta(minutes=1)
