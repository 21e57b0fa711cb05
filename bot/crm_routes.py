"""Which subscriptions want which event, held in memory so that a turn no subscription cares
about never touches the CRM tables (the turn benchmark counts every statement).

The delivery worker refreshes it from the database every few seconds (hooks made through the
API on another worker), and at once on the worker that made or deleted one."""

from __future__ import annotations

from collections.abc import Iterable

from bot.crm_records import ACTIVE, Subscription


class CrmRoutes:
    def __init__(self) -> None:
        self._wanted: dict[str, tuple[int, ...]] = {}

    def replace(self, subscriptions: Iterable[Subscription]) -> None:
        wanted: dict[str, list[int]] = {}
        for subscription in subscriptions:
            if subscription.status != ACTIVE:
                continue
            for event in subscription.events:
                wanted.setdefault(event, []).append(subscription.id)
        # One assignment: a turn on the event loop sees the old map or the new, never half.
        self._wanted = {event: tuple(sorted(ids)) for event, ids in wanted.items()}

    def wanted(self, event: str) -> tuple[int, ...]:
        """The subscriptions that get `event` (none: do not record it)."""
        return self._wanted.get(event, ())

    def any_wanted(self, events: Iterable[str]) -> bool:
        return any(event in self._wanted for event in events)
