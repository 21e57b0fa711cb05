"""A small in-process sliding-window rate limiter, keyed by client address."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` hits per `window` seconds per key.

    Each key keeps the times of its recent hits (a sliding log: no burst at a window's edge).
    Keys are kept in order of their last hit, so idle ones are forgotten from the front as time
    passes, and at most `max_keys` are kept: memory stays bounded whatever the traffic. The
    limit holds per process; with several workers a client gets `limit` on each, which is
    enough to stop a script hammering the form.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be >= 1 and window > 0")
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str) -> float:
        """Record a hit: 0.0 when allowed, else the seconds until the next one will be."""
        now = self._clock()
        horizon = now - self._window
        self._forget_idle(horizon)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self._limit:
            # A refused hit is not recorded: a client that waits as told gets in.
            return max(hits[0] - horizon, 0.001)
        hits.append(now)
        self._hits.move_to_end(key)
        if len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)  # the least recently seen address goes first
        return 0.0

    def _forget_idle(self, horizon: float) -> None:
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > horizon:
                return
            del self._hits[key]
