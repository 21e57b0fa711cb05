"""Pacing: bursts to one chat are spaced, the channel has a total rate, a 429 pauses it all."""

from __future__ import annotations

from bot.pacing import Pacer, PaceRule


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_to_one_chat_is_spaced_in_order() -> None:
    clock = Clock()
    pacer = Pacer({"telegram": PaceRule(per_chat=1.0)}, clock)
    assert [pacer.reserve("telegram", "42") for _ in range(3)] == [0.0, 1.0, 2.0]
    assert pacer.reserve("telegram", "43") == 0.0  # another chat is not held back


def test_the_channel_rate_spreads_many_chats() -> None:
    clock = Clock()
    pacer = Pacer({"telegram": PaceRule(per_chat=1.0, per_second=30)}, clock)
    waits = [pacer.reserve("telegram", str(chat)) for chat in range(60)]
    assert waits[0] == 0.0
    assert abs(waits[30] - 1.0) < 1e-9  # the 31st message of the second waits a second
    assert abs(waits[59] - 59 / 30) < 1e-9


def test_a_pause_holds_the_whole_channel_and_only_it() -> None:
    clock = Clock()
    pacer = Pacer({"telegram": PaceRule(per_chat=1.0)}, clock)
    pacer.pause("telegram", 5)
    assert pacer.reserve("telegram", "1") == 5.0
    assert pacer.reserve("web", "1") == 0.0
    clock.now += 10
    assert pacer.reserve("telegram", "2") == 0.0


def test_channels_without_a_rule_are_not_paced() -> None:
    pacer = Pacer({}, Clock())
    assert {pacer.reserve("web", "x") for _ in range(5)} == {0.0}


def test_idle_chats_are_forgotten() -> None:
    clock = Clock()
    pacer = Pacer({"telegram": PaceRule(per_chat=1.0)}, clock)
    for chat in range(2000):
        pacer.reserve("telegram", str(chat))
    clock.now += 5
    pacer.reserve("telegram", "new")
    assert len(pacer._next_in_chat) < 10
