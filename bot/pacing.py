"""Pacing of outbound messages: per chat, per channel, and pauses a provider asks for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PaceRule:
    """At most one message per `per_chat` seconds to one chat, `per_second` in all."""

    per_chat: float = 0.0
    per_second: float = 0.0  # 0: unlimited


class Pacer:
    """Books send slots. `reserve` returns how long to wait before sending; bursts to one chat
    go out in order, spaced, never dropped. A 429 pauses the whole channel (Telegram counts its
    limits per bot, not per chat)."""

    def __init__(self, rules: Mapping[str, PaceRule], clock: Callable[[], float]) -> None:
        self._rules = rules
        self._clock = clock
        self._next_in_chat: dict[tuple[str, str], float] = {}
        self._next_in_channel: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}

    def reserve(self, channel: str, chat: str) -> float:
        rule = self._rules.get(channel)
        now = self._clock()
        start = max(now, self._paused_until.get(channel, 0.0))
        if rule is None:
            return start - now
        if rule.per_chat:
            start = max(start, self._next_in_chat.get((channel, chat), 0.0))
            self._next_in_chat[(channel, chat)] = start + rule.per_chat
        if rule.per_second:
            start = max(start, self._next_in_channel.get(channel, 0.0))
            self._next_in_channel[channel] = start + 1.0 / rule.per_second
        self._forget_idle(now)
        return start - now

    def pause(self, channel: str, seconds: float) -> None:
        until = self._clock() + max(seconds, 0.0)
        self._paused_until[channel] = max(until, self._paused_until.get(channel, 0.0))

    def _forget_idle(self, now: float) -> None:
        # Chats whose next slot has passed need no entry: memory stays flat however many chats.
        if len(self._next_in_chat) > 1024:
            self._next_in_chat = {k: t for k, t in self._next_in_chat.items() if t > now}
