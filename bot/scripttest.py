"""Conversation tests written in YAML: what the prospect says, what the bot must answer."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from bot.answers.result import JSONValue
from bot.compiled import CompiledScript
from bot.effects import (
    CancelTimers,
    Complete,
    HandOff,
    OptOut,
    RecordAnswer,
    ScheduleTimer,
    SendText,
)
from bot.engine import step
from bot.inbound import (
    ContactShared,
    ConversationStarted,
    Inbound,
    OptionPicked,
    ReturnedFromRep,
    SilenceTimerFired,
    TextReceived,
    TimerKind,
)
from bot.spec import Model
from bot.state import ConversationState

DEFAULT_NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday morning: stable in every test
SECONDS_PER_TURN = timedelta(seconds=20)


class BotSays(Model):
    contains: str | None = None
    matches: str | None = None

    @model_validator(mode="after")
    def _one_check(self) -> BotSays:
        if (self.contains is None) == (self.matches is None):
            raise ValueError("give exactly one of contains or matches")
        return self


class CaseStep(Model):
    """One line of a conversation; exactly one key is given."""

    bot: str | BotSays | None = Field(default=None, description="a bot message that must follow")
    user: str | None = Field(default=None, description="the prospect types this")
    pick: str | None = Field(default=None, description="the prospect taps this option value")
    contact: str | None = Field(default=None, description="the prospect shares this number")
    wait: Literal["reminder", "expiry"] | None = Field(default=None, description="silence")
    rep_returns: Literal[True] | None = Field(default=None, description="a rep hands back")

    @model_validator(mode="after")
    def _exactly_one(self) -> CaseStep:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(f"a step has exactly one key, got {given or 'none'}")
        return self


class CaseExpectations(Model):
    answers: dict[str, Any] | None = Field(default=None, description="these answers, at least")
    missing: list[str] | None = Field(default=None, description="questions left unanswered")
    outcome: str | None = None
    score: int | None = None
    status: str | None = None
    handoff: bool | None = None
    opted_out: bool | None = None


class Case(Model):
    name: str
    lead: dict[str, str] = Field(default_factory=dict)
    language: str | None = None
    timezone: str | None = None
    now: datetime | None = None
    conversation: list[CaseStep] = Field(default_factory=list)
    expect: CaseExpectations = Field(default_factory=CaseExpectations)


class CaseFile(Model):
    script: str = Field(description="the script file, relative to this file")
    now: datetime | None = None
    tests: list[Case] = Field(min_length=1)


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class _Run:
    script: CompiledScript
    now: datetime
    state: ConversationState | None = None
    unread: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    timers: dict[TimerKind, ScheduleTimer] = field(default_factory=dict)
    completed: Complete | None = None
    handed_off: bool = False
    opted_out: bool = False
    answer_sources: dict[str, str] = field(default_factory=dict)

    def feed(self, inbound: Inbound, shown: str | None) -> None:
        if shown is not None:
            self.transcript.append(f"  prospect: {shown}")
        transition = step(self.script, self.state, inbound, self.now)
        self.state = transition.state
        self.unread.clear()  # bot lines are checked against the latest reply only
        for effect in transition.effects:
            match effect:
                case SendText(text=text, options=options):
                    buttons = f"  [{' | '.join(o.label for o in options)}]" if options else ""
                    self.transcript.append(f"  bot: {text}{buttons}")
                    self.unread.append(text + buttons)
                case ScheduleTimer():
                    self.timers[effect.kind] = effect
                case CancelTimers():
                    self.timers.clear()
                case Complete():
                    self.completed = effect
                case HandOff():
                    self.handed_off = True
                case OptOut():
                    self.opted_out = True
                case RecordAnswer(question_id=question, source=source):
                    self.answer_sources[question] = source
        self.now += SECONDS_PER_TURN


def run_case(script: CompiledScript, case: Case, default_now: datetime | None = None) -> CaseResult:
    """Play one test case through `step()` and compare what happened with what it expects."""
    run = _Run(script, case.now or default_now or DEFAULT_NOW)
    run.feed(ConversationStarted(case.lead, case.language, case.timezone), None)
    result = CaseResult(case.name, transcript=run.transcript)
    for number, line in enumerate(case.conversation, start=1):
        problem = _play(run, line)
        if problem:
            result.failures.append(f"step {number}: {problem}")
            return result
    result.failures.extend(_compare(run, case.expect))
    return result


def _play(run: _Run, line: CaseStep) -> str | None:
    pending = run.state.question if run.state else None
    if line.user is not None:
        run.feed(TextReceived(line.user), line.user)
    elif line.pick is not None:
        run.feed(OptionPicked(pending or "", line.pick), f"(taps {line.pick})")
    elif line.contact is not None:
        run.feed(ContactShared(line.contact, own=True), f"(shares {line.contact})")
    elif line.rep_returns:
        run.transcript.append("  (a rep hands the conversation back)")
        run.feed(ReturnedFromRep(), None)
    elif line.wait is not None:
        kind = TimerKind(line.wait)
        timer = run.timers.get(kind)
        if timer is None:
            return f"waited for a {kind} but none is scheduled"
        run.now = timer.at
        run.transcript.append(f"  (silence until the {kind} at {timer.at.isoformat()})")
        run.feed(SilenceTimerFired(kind, timer.seq), None)
    elif line.bot is not None:
        return _expect_bot(run, line.bot)
    return None


def _expect_bot(run: _Run, expected: str | BotSays) -> str | None:
    check = BotSays(contains=expected) if isinstance(expected, str) else expected
    for index, text in enumerate(run.unread):
        if check.contains is not None and check.contains.casefold() in text.casefold():
            del run.unread[: index + 1]
            return None
        if check.matches is not None and re.search(check.matches, text, re.IGNORECASE | re.DOTALL):
            del run.unread[: index + 1]
            return None
    wanted = (
        f"containing {check.contains!r}"
        if check.contains is not None
        else f"matching /{check.matches}/"
    )
    said = "\n".join(f"      > {text}" for text in run.unread) or "      (nothing more)"
    return f"expected a bot message {wanted}; after the last reply the bot said:\n{said}"


def _compare(run: _Run, expect: CaseExpectations) -> list[str]:
    failures: list[str] = []
    state = run.state
    answers: dict[str, JSONValue] = dict(state.answers) if state else {}
    if expect.answers is not None:
        actual = {key: answers.get(key, "<no answer>") for key in expect.answers}
        if actual != expect.answers:
            failures.append(
                "answers differ (- expected, + actual):\n" + _diff(expect.answers, actual)
            )
    for question in expect.missing or []:
        if question in answers:
            failures.append(f"expected no answer to {question!r}, got {answers[question]!r}")
    completed = run.completed
    if expect.outcome is not None and (completed is None or completed.outcome != expect.outcome):
        got = completed.outcome if completed else "no outcome (conversation not finished)"
        failures.append(f"outcome: expected {expect.outcome!r}, got {got!r}")
    if expect.score is not None and (completed is None or completed.score != expect.score):
        got_score = completed.score if completed else None
        reasons = "; ".join(completed.reasons) if completed else ""
        failures.append(f"score: expected {expect.score}, got {got_score} ({reasons})")
    if expect.status is not None and (state is None or state.status != expect.status):
        failures.append(
            f"status: expected {expect.status!r}, got {state.status.value if state else None!r}"
        )
    if expect.handoff is not None and run.handed_off != expect.handoff:
        failures.append(f"handoff: expected {expect.handoff}, got {run.handed_off}")
    if expect.opted_out is not None and run.opted_out != expect.opted_out:
        failures.append(f"opted_out: expected {expect.opted_out}, got {run.opted_out}")
    return failures


def _diff(expected: object, actual: object) -> str:
    left = json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    right = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    lines = difflib.unified_diff(left.splitlines(), right.splitlines(), lineterm="", n=2)
    return "\n".join("      " + line for line in list(lines)[2:])
