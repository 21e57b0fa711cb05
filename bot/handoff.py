"""Between the bot and the people: handing a conversation over, a rep holding it, and the bot
taking it back. The state machine:

    with the bot (active) -> waiting for a rep (handed_off) -> with a rep (with_rep)
        -> with the bot again (active, or completed if nothing is left), or closed

A prospect waiting for a rep is told one is coming; if none takes the conversation within the
script's `handoff.timeout`, the bot says so and goes on (or asks when to call back), so a
handoff never leaves a prospect in silence. While people hold it, the bot says nothing.
These functions are steps of the engine's turn (`bot.engine._Turn`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.answers.result import JSONValue
from bot.effects import CancelTimers, Closed, HandOff, RecordAnswer, ScheduleTimer
from bot.inbound import RepClosed, RepTookOver, TimerKind
from bot.scoring import score_answers
from bot.spec import ChoiceQuestion, HandoffStep
from bot.state import FINISHED, WITH_PEOPLE, Status

if TYPE_CHECKING:
    from bot.engine import _Turn

CALLBACK_ANSWER = "callback_time"  # where a call-back wish is stored among the answers
_RECAP_ITEMS = 4
_RECAP_WIDTH = 160


def hand_off(turn: _Turn, reason: str, message_key: str = "handoff") -> None:
    """Ask for a rep: tell the prospect one is coming, and start the clock on it."""
    turn.set(status=Status.HANDED_OFF, timer_seq=turn.state.timer_seq + 1)
    turn.emit(CancelTimers())
    if not isinstance(turn.pending(), HandoffStep):  # a handoff step said its own prompt
        message = turn.script.spec.handoff.message
        if message is not None and message_key == "handoff":
            turn.say(turn.render(message))
        else:
            turn.say(turn.script.message(message_key, turn.language))
    turn.emit(HandOff(reason))
    timeout = turn.script.handoff_timeout
    turn.emit(ScheduleTimer(TimerKind.HANDOFF, turn.now + timeout, turn.state.timer_seq))


def rule_fires(turn: _Turn) -> bool:
    """The script's `handoff.when` rule ("qualified and score >= 80"), once a conversation."""
    rule = turn.script.spec.handoff.when
    if rule is None or turn.state.rule_fired:
        return False
    context = turn.context()
    context["score"] = score_answers(turn.script, context).total
    if not turn.script.holds(rule, context):
        return False
    turn.set(rule_fired=True)
    return True


def on_rep_took_over(turn: _Turn, event: RepTookOver) -> None:
    if turn.state.status is Status.OPTED_OUT:
        return
    # The bot remembers whether it had finished, to go back to that on hand back.
    turn.set(status=Status.WITH_REP, awaiting_callback=False, timer_seq=turn.state.timer_seq + 1)
    turn.emit(CancelTimers())
    turn.say(turn.script.message("rep_joined", turn.language, {"name": event.rep_name}))


def on_returned(turn: _Turn) -> None:
    """Back to the bot: the pending question again with a one-line recap, or the end."""
    if turn.state.status in WITH_PEOPLE:
        resume(turn)


def resume(turn: _Turn) -> None:
    if turn.state.outcome is not None:  # handed over after finishing: it stays finished
        turn.set(status=Status.COMPLETED)
        return
    turn.set(status=Status.ACTIVE, attempts=0, awaiting_callback=False)
    handoff = turn.script.spec.handoff
    text = (
        turn.render(handoff.resume_message)
        if handoff.resume_message is not None
        else turn.script.message("resume", turn.language)
    )
    question = turn.pending()
    if question is None:
        turn.say(text)
        turn.complete(None, "handed back with nothing left to ask")
        return
    recap = recap_line(turn)
    turn.say(f"{text} {recap}" if recap else text)
    if isinstance(question, HandoffStep):
        turn.go(turn.next_after(question), question.id)
    else:
        turn.ask_again()


def on_closed(turn: _Turn, event: RepClosed) -> None:
    if turn.state.status in FINISHED and turn.state.status is not Status.COMPLETED:
        return  # already closed, or opted out
    score = score_answers(turn.script, turn.context())
    turn.set(status=Status.CLOSED, question=None, confirming=False, outcome=event.outcome)
    turn.emit(CancelTimers())
    turn.emit(Closed(event.outcome, score.total, (*score.reasons, "closed by a rep")))


def on_timeout(turn: _Turn) -> None:
    """No rep in time: say so, then go on or ask for a call-back time."""
    turn.say(turn.script.message("handoff_timeout", turn.language))
    if turn.script.spec.handoff.on_timeout == "callback":
        turn.set(status=Status.ACTIVE, awaiting_callback=True)
        turn.say(turn.script.message("callback_ask", turn.language))
        return
    resume(turn)


def note_callback(turn: _Turn, text: str) -> None:
    """The prospect's call-back wish, kept as they wrote it, then the bot goes on."""
    wish = text.strip()[:200]
    turn.set(awaiting_callback=False)
    turn.answers[CALLBACK_ANSWER] = wish
    turn.emit(RecordAnswer(CALLBACK_ANSWER, wish, wish, "prospect"))
    turn.say(turn.script.message("callback_noted", turn.language))
    resume(turn)


def recap_line(turn: _Turn) -> str:
    """ "So far: SUV X, 25000, next month." from the answers, in script order."""
    shown: list[str] = []
    for question_id in turn.script.order:
        if question_id in turn.answers and len(shown) < _RECAP_ITEMS:
            shown.append(_display(turn, question_id, turn.answers[question_id]))
    if not shown:
        return ""
    line = turn.script.message("recap", turn.language, {"answers": ", ".join(shown)})
    return line if len(line) <= _RECAP_WIDTH else line[: _RECAP_WIDTH - 1] + "…"


def _display(turn: _Turn, question_id: str, value: JSONValue) -> str:
    question = turn.script.questions[question_id]
    if isinstance(question, ChoiceQuestion):
        labels = {
            option.value: option.label
            for option in turn.script.choices.get((question_id, turn.language), ())
        }
        values = value if isinstance(value, list) else [value]
        return " + ".join(str(labels.get(str(v), v)) for v in values)
    if isinstance(value, bool):
        return turn.script.message("yes" if value else "no", turn.language)
    return str(value)
