"""Engine figures: median step() on a 20-question script, and loading a 200-question script.

Run: `python -m bench.engine`. Each figure stands beside a baseline run in the same process, so
the ratio means the same on a fast or a slow machine:
- step(): a hand-written state machine for the same 20 questions (a dict of answers, a list of
  prompts, `str.isdigit`-grade checks): the least any bot does per message.
- load: PyYAML's C loader reading the same file: the least any YAML-driven bot does at start.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import yaml

from bench.synthetic import replies, script_yaml
from bot.engine import step
from bot.inbound import ConversationStarted, TextReceived
from bot.loader import load_script

STEP_TARGET_US = 50.0
LOAD_TARGET_MS = 200.0


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure_steps(conversations: int = 400) -> list[float]:
    """Microseconds per step() over whole conversations (start plus one reply per question)."""
    script = load_script(script_yaml(20))
    answers = replies(20)
    now = datetime(2026, 1, 5, 10, tzinfo=UTC)
    samples: list[float] = []
    for _ in range(conversations):
        started = time.perf_counter_ns()
        state = step(script, None, ConversationStarted({"first_name": "Ana"}), now).state
        samples.append((time.perf_counter_ns() - started) / 1000)
        for reply in answers:
            now += timedelta(seconds=30)
            started = time.perf_counter_ns()
            state = step(script, state, TextReceived(reply), now).state
            samples.append((time.perf_counter_ns() - started) / 1000)
    assert state.outcome == "qualified", state  # the benchmark plays real conversations
    return samples


def measure_baseline_steps(conversations: int = 400) -> list[float]:
    prompts = [f"Question {i}?" for i in range(20)]
    answers = replies(20)
    samples: list[float] = []
    for _ in range(conversations):
        index, given = 0, dict[str, str]()
        for reply in answers:
            started = time.perf_counter_ns()
            text = reply.strip()
            if text:
                given = {**given, f"q{index}": text}
                index += 1
                _ = prompts[min(index, 19)]
            samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _best_of(repeats: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def measure_load(questions: int = 200, repeats: int = 7) -> tuple[float, float]:
    """Best-of milliseconds for load_script (parse + whole check + compile) and for YAML only."""
    source = script_yaml(questions)
    loaded = _best_of(repeats, lambda: load_script(source))
    baseline = _best_of(repeats, lambda: yaml.load(source, Loader=yaml.CSafeLoader))
    return loaded, baseline


def main() -> None:
    measure_steps(50)  # warm up: dateparser, rapidfuzz and Jinja caches, CPU frequency
    steps = measure_steps()
    baseline = measure_baseline_steps()
    median, p99 = statistics.median(steps), _percentile(steps, 0.99)
    base_median = statistics.median(baseline)
    load_ms, yaml_ms = measure_load()
    print("| figure | leadbot | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| step(), 20-question script, median | {median:.1f} µs | {base_median:.2f} µs "
        f"| {median / base_median:.0f}x | ≤ {STEP_TARGET_US:.0f} µs: "
        f"{'met' if median <= STEP_TARGET_US else 'MISSED'} |"
    )
    print(f"| step(), p99 | {p99:.1f} µs | {_percentile(baseline, 0.99):.2f} µs | | |")
    print(
        f"| load and check, 200-question script | {load_ms:.1f} ms | {yaml_ms:.1f} ms "
        f"| {load_ms / yaml_ms:.1f}x | ≤ {LOAD_TARGET_MS:.0f} ms: "
        f"{'met' if load_ms <= LOAD_TARGET_MS else 'MISSED'} |"
    )
    print(f"\n({len(steps)} steps measured; baseline: {len(baseline)} steps)")


if __name__ == "__main__":
    main()
