"""An in-memory bot.ports.CrmStore for service tests on MemoryStorage (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.crm_records import (
    ACTIVE,
    DELIVERED,
    DISABLED,
    FAILED,
    PENDING,
    REMOVED,
    ConfiguredHook,
    Delivery,
    LeadView,
    NewEvent,
    Subscription,
)


@dataclass
class MemoryCrmData:
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    sequences: dict[int, int] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    event_sequences: list[int] = field(default_factory=list)
    deliveries: dict[int, dict[str, Any]] = field(default_factory=dict)


class MemoryCrm:
    def __init__(self, data: MemoryCrmData, lead: Callable[[int], LeadView | None]) -> None:
        self.data = data
        self._lead = lead

    def lead_view(self, lead_id: int) -> LeadView | None:
        return self._lead(lead_id)

    def record(self, event: NewEvent, subscription_ids: Sequence[int], now: datetime) -> int:
        sequence = self.data.sequences.get(event.lead_id, 0) + 1
        self.data.sequences[event.lead_id] = sequence
        self.data.events.append(event)
        self.data.event_sequences.append(sequence)
        for subscription_id in subscription_ids:
            delivery_id = len(self.data.deliveries) + 1
            self.data.deliveries[delivery_id] = {
                "event": len(self.data.events) - 1,
                "subscription_id": subscription_id,
                "status": PENDING,
                "attempts": 0,
                "due_at": now,
                "claimed_until": None,
                "queued_at": now,
                "last_status": None,
                "error": None,
            }
        return sequence

    def subscriptions(self) -> list[Subscription]:
        return [s for s in self.data.subscriptions.values() if s.status == ACTIVE]

    def sync_configured(self, hooks: Sequence[ConfiguredHook], now: datetime) -> None:
        named = {s.name: s for s in self.data.subscriptions.values() if s.origin == "settings"}
        for hook in hooks:
            found = named.get(hook.name)
            if found is None:
                new_id = len(self.data.subscriptions) + 1
                self.data.subscriptions[new_id] = Subscription(
                    new_id, hook.name, hook.url, hook.events, "settings"
                )
            else:
                moved = found.url != hook.url or found.status == REMOVED
                status = ACTIVE if moved else found.status
                self.data.subscriptions[found.id] = replace(
                    found, url=hook.url, events=hook.events, status=status
                )
        for name, found in named.items():
            if name not in {hook.name for hook in hooks}:
                self.data.subscriptions[found.id] = replace(found, status=REMOVED)

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        claimed: list[Delivery] = []
        heads: set[tuple[int, int]] = set()
        for delivery_id, row in sorted(self.data.deliveries.items()):
            event = self.data.events[row["event"]]
            queue = (row["subscription_id"], event.lead_id)
            if row["status"] != PENDING or queue in heads:
                continue
            heads.add(queue)  # a later one of this queue waits, due or not
            subscription = self.data.subscriptions.get(row["subscription_id"])
            if subscription is None or subscription.status != ACTIVE or row["due_at"] > now:
                continue
            if row["claimed_until"] is not None and row["claimed_until"] >= now:
                continue
            if len(claimed) == limit:
                break
            row["claimed_until"] = now + lease
            row["attempts"] += 1
            claimed.append(
                Delivery(
                    id=delivery_id,
                    delivery_id=f"delivery-{delivery_id}",
                    event=event.event,
                    lead_id=event.lead_id,
                    sequence=self.data.event_sequences[row["event"]],
                    body=event.body,
                    subscription_id=subscription.id,
                    subscription_name=subscription.name,
                    url=subscription.url,
                    secret=None,
                    attempts=row["attempts"],
                    queued_at=row["queued_at"],
                )
            )
        return claimed

    def delivered(self, delivery: Delivery, status: int, now: datetime) -> None:
        self.data.deliveries[delivery.id].update(status=DELIVERED, last_status=status)

    def retry_later(
        self, delivery: Delivery, due_at: datetime, status: int | None, error: str
    ) -> None:
        self.data.deliveries[delivery.id].update(
            due_at=due_at, last_status=status, error=error, claimed_until=None
        )

    def failed(self, delivery: Delivery, status: int | None, error: str, now: datetime) -> None:
        self.data.deliveries[delivery.id].update(status=FAILED, last_status=status, error=error)

    def disable(self, subscription_id: int, reason: str, now: datetime) -> None:
        found = self.data.subscriptions[subscription_id]
        self.data.subscriptions[subscription_id] = replace(found, status=DISABLED)
        for row in self.data.deliveries.values():
            if row["subscription_id"] == subscription_id and row["status"] == PENDING:
                row.update(status=FAILED, error="the subscription was disabled")
