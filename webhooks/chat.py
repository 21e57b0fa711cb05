"""`leadbot chat`: play a script in the terminal, through the same engine every channel uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

from bot.compiled import CompiledScript
from bot.effects import (
    CancelTimers,
    Complete,
    Effect,
    HandOff,
    OptOut,
    RecordAnswer,
    ScheduleTimer,
    SendText,
)
from bot.engine import step
from bot.inbound import (
    ConversationStarted,
    Inbound,
    ReturnedFromRep,
    SilenceTimerFired,
    TextReceived,
)
from bot.state import FINISHED, ConversationState, Status

HELP = "(commands: /wait = stay silent until the next reminder, /back = a rep hands back, /quit)"


def play(
    script: CompiledScript,
    *,
    lead: Mapping[str, str],
    language: str | None,
    timezone: str | None,
    stdin: TextIO,
    echo: Callable[[str], None],
) -> ConversationState:
    """Run a conversation until it finishes or input ends; print the lead at the end."""
    interactive = stdin.isatty()
    if interactive:
        # Importing readline gives input() line editing and history; only a terminal needs it.
        import readline  # noqa: F401, PLC0415
    echo(f"{script.spec.name} [{script.id}@{script.version}] {HELP}")
    timers: dict[str, ScheduleTimer] = {}
    answers: dict[str, str] = {}
    finished: list[Complete] = []
    state: ConversationState | None = None

    def feed(inbound: Inbound, now: datetime) -> None:
        nonlocal state
        transition = step(script, state, inbound, now)
        state = transition.state
        for effect in transition.effects:
            _show(effect, echo, timers, answers, finished)

    feed(ConversationStarted(dict(lead), language, timezone), datetime.now(UTC))
    while state is not None and state.status not in FINISHED:
        line = _read(stdin, interactive)
        if line is None or line.strip() == "/quit":
            break
        text = line.rstrip("\n")
        if not interactive:
            echo(f"you: {text}")
        if text.strip() == "/wait":
            if not timers:
                echo("(no reminder is scheduled)")
                continue
            timer = min(timers.values(), key=lambda t: t.at)
            echo(f"(silence until {timer.at:%Y-%m-%d %H:%M} UTC)")
            feed(SilenceTimerFired(timer.kind, timer.seq), timer.at)
        elif text.strip() == "/back":
            feed(ReturnedFromRep(), datetime.now(UTC))
        elif state.status is Status.HANDED_OFF and not text.startswith("/"):
            echo("(a rep holds this conversation; /back hands it back to the bot)")
            feed(TextReceived(text), datetime.now(UTC))
        else:
            feed(TextReceived(text), datetime.now(UTC))
    _summary(state, answers, finished, echo)
    assert state is not None
    return state


def _read(stdin: TextIO, interactive: bool) -> str | None:
    if interactive:
        try:
            return input("you> ")
        except EOFError:
            return None
    line = stdin.readline()
    return line or None


def _show(
    effect: Effect,
    echo: Callable[[str], None],
    timers: dict[str, ScheduleTimer],
    answers: dict[str, str],
    finished: list[Complete],
) -> None:
    match effect:
        case SendText(text=text, options=options):
            echo(f"bot: {text}")
            for number, option in enumerate(options, start=1):
                echo(f"     {number}. {option.label}")
        case RecordAnswer(question_id=question, display=display):
            answers[question] = display
        case ScheduleTimer():
            timers[effect.kind] = effect
        case CancelTimers():
            timers.clear()
        case Complete():
            finished.append(effect)
        case HandOff(reason=reason):
            echo(f"(handed off to a rep: {reason})")
        case OptOut():
            echo("(the prospect opted out)")


def _summary(
    state: ConversationState | None,
    answers: Mapping[str, str],
    finished: list[Complete],
    echo: Callable[[str], None],
) -> None:
    echo("")
    echo("== lead ==")
    kept = state.answers if state is not None else {}
    for question, display in answers.items():
        if question in kept:  # a restart forgets earlier answers; so does the summary
            echo(f"  {question}: {display}")
    if finished:
        done = finished[-1]
        echo(f"  outcome: {done.outcome} (score {done.score})")
        for reason in done.reasons:
            echo(f"    - {reason}")
    else:
        echo(f"  not finished ({state.status if state else 'not started'})")
