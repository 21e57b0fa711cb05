"""The conversation engine: `step(script, state, inbound, now) -> Transition`. Pure and total."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import appointments, handoff
from bot.answering import (
    hint_for,
    options_for,
    parse_boolean,
    parse_reply,
    picked_boolean,
    picked_option,
    yes_no_options,
)
from bot.answers.contact import parse_phone
from bot.answers.result import JSONValue, Parsed, ParseResult, Rejected
from bot.calendars import NOTHING_BOOKED, Availability
from bot.compiled import CompiledScript
from bot.effects import (
    CancelTimers,
    Complete,
    Effect,
    HandOff,
    MarkAbandoned,
    OptIn,
    OptOut,
    RecordAnswer,
    RecordConsent,
    ReminderPart,
    ScheduleTimer,
    SendText,
)
from bot.errors import StateError
from bot.graph import END, END_TARGET
from bot.inbound import (
    APPOINTMENT_TIMERS,
    AppointmentCancelled,
    AppointmentMoved,
    ContactShared,
    ConversationStarted,
    Inbound,
    OptionPicked,
    RepClosed,
    RepTookOver,
    ReturnedFromRep,
    SilenceTimerFired,
    TextReceived,
    TimerKind,
)
from bot.keywords import Command
from bot.scoring import choose_outcome, score_answers
from bot.spec import (
    AppointmentQuestion,
    ConsentQuestion,
    HandoffStep,
    OutcomeRef,
    PhoneQuestion,
    Question,
)
from bot.state import WITH_PEOPLE, ConversationState, Status


@dataclass(frozen=True, slots=True)
class Transition:
    state: ConversationState
    effects: tuple[Effect, ...]


def step(
    script: CompiledScript,
    state: ConversationState | None,
    inbound: Inbound,
    now: datetime,
    *,
    availability: Availability | None = None,
) -> Transition:
    """Apply one inbound fact. Raises only `StateError`, for a state of another script.

    `availability`: the seats taken in the script's calendars, read by the caller in the
    turn's transaction (None: nothing is booked, as in `leadbot chat`)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if state is None:
        started = inbound if isinstance(inbound, ConversationStarted) else ConversationStarted()
        return _new_conversation(script, started, now, availability or NOTHING_BOOKED)
    if state.script_id != script.id or state.script_version != script.version:
        raise StateError(
            f"state is for script {state.script_id}@{state.script_version}, "
            f"not {script.id}@{script.version}"
        )
    turn = _Turn(script, state, now, availability or NOTHING_BOOKED)
    turn.set(turns=state.turns + 1)
    turn.handle(inbound)
    if not isinstance(inbound, SilenceTimerFired):
        turn.restart_silence_timers()
    return turn.finish()


def _new_conversation(
    script: CompiledScript, started: ConversationStarted, now: datetime, availability: Availability
) -> Transition:
    timezone = script.spec.timezone
    if started.timezone:
        try:
            ZoneInfo(started.timezone)
            timezone = started.timezone
        except (ZoneInfoNotFoundError, ValueError):
            pass  # an unknown zone from a channel is not the prospect's fault: use the script's
    fields = script.spec.lead_field_types()
    state = ConversationState(
        script_id=script.id,
        script_version=script.version,
        language=script.language_for(started.language),
        timezone=timezone,
        lead={k: str(v) for k, v in started.lead.items() if k in fields and v is not None},
        turns=1,
    )
    turn = _Turn(script, state, now, availability)
    turn.start()
    turn.restart_silence_timers()
    return turn.finish()


class _Turn:
    """The working copy of one step: collects effects, then freezes into a Transition."""

    def __init__(
        self,
        script: CompiledScript,
        state: ConversationState,
        now: datetime,
        availability: Availability = NOTHING_BOOKED,
    ) -> None:
        self.script = script
        self.availability = availability
        # A private copy that `set` changes in place: rebuilding a frozen dataclass on every
        # change was a quarter of the cost of a step. Nobody else sees it before `finish`.
        self.state = replace(state)
        self.now = now
        self.answers: dict[str, JSONValue] = dict(state.answers)
        self.effects: list[Effect] = []
        self.asked = False  # a question went out this turn: silence timers start again

    def finish(self) -> Transition:
        self.set(answers=self.answers)
        return Transition(self.state, tuple(self.effects))

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, inbound: Inbound) -> None:
        status = self.state.status
        if status is Status.OPTED_OUT:
            # They said stop: nothing but their own START makes the bot write again.
            if isinstance(inbound, TextReceived):
                command, _ = self.script.keywords.classify(inbound.text)
                if command is Command.OPT_IN:
                    self.opt_in(inbound.text.strip())
            return
        match inbound:
            case ConversationStarted():
                self._on_started()
            case TextReceived(text=text):
                self._on_text(text)
            case OptionPicked():
                self._on_option(inbound)
            case ContactShared():
                self._on_contact(inbound)
            case SilenceTimerFired():
                self._on_timer(inbound)
            case ReturnedFromRep():
                handoff.on_returned(self)
            case RepTookOver():
                handoff.on_rep_took_over(self, inbound)
            case RepClosed():
                handoff.on_closed(self, inbound)
            case AppointmentMoved():
                appointments.on_moved(self, inbound)
            case AppointmentCancelled():
                appointments.on_rep_cancelled(self, inbound)

    def _on_started(self) -> None:
        if self.state.status is Status.EXPIRED and self._restarts_when_late():
            self.restart()
        elif self.state.status in (Status.ACTIVE, Status.EXPIRED) and self.state.question:
            self.set(status=Status.ACTIVE)
            self.say(self.script.message("welcome_back", self.language))
            self.ask_again()
        elif self.state.status is Status.COMPLETED:
            self.say(self.script.message("completed", self.language))

    def _on_text(self, text: str) -> None:
        keywords = self.script.keywords
        command, asks_for_person = keywords.classify(text)
        if command is Command.OPT_OUT:
            self.opt_out(text.strip())
            return
        status = self.state.status
        if status in WITH_PEOPLE:
            return  # people have it: the service records the message for them
        if self.state.awaiting_callback:
            handoff.note_callback(self, text)
            return
        if command in (Command.RESCHEDULE, Command.CANCEL_APPOINTMENT) and appointments.on_command(
            self, command
        ):
            return
        if status is Status.COMPLETED:
            self.say(self.script.message("completed", self.language))
            return
        if status is Status.EXPIRED:
            self.set(status=Status.ACTIVE)
            if self._restarts_when_late():
                self.restart()
                return
        if command is Command.RESTART:
            self.restart()
            return
        if command is Command.HELP:
            self.help()
            return
        if asks_for_person:
            self.hand_off(f"prospect asked for a person: {text.strip()[:60]!r}")
            return
        question = self.pending()
        if question is None:
            return
        if not text.strip():  # a photo, a sticker, a voice note: not a try at the question
            self.say(self.script.message("text_only", self.language))
            self.ask_again()
            return
        if self.state.confirming:
            self.answer_confirmation(question, parse_boolean(self.script, text, self.language))
            return
        if isinstance(question, AppointmentQuestion):
            appointments.on_text(self, question, text)
            return
        result = parse_reply(
            self.script,
            question,
            text,
            language=self.language,
            timezone=self.state.timezone,
            now=self.now,
        )
        if isinstance(result, Rejected) and (phrase := keywords.mentions_handoff(text)):
            self.hand_off(f"prospect asked for a person: {phrase!r}")
            return
        self.answer(question, result, source="prospect")

    def _wake_if_expired(self) -> None:
        """A tap or a shared contact after expiry is a late reply like a typed one."""
        if self.state.status is Status.EXPIRED:
            if self._restarts_when_late():
                self.restart()
            else:
                self.set(status=Status.ACTIVE)

    def _restarts_when_late(self) -> bool:
        expiry = self.script.spec.expiry
        return expiry is not None and expiry.late_reply == "restart"

    def _on_option(self, picked: OptionPicked) -> None:
        self._wake_if_expired()
        question = self.pending()
        if self.state.status is not Status.ACTIVE or question is None:
            return
        if picked.question_id != question.id:
            return  # a button from an earlier message: the question it answered is gone
        if self.state.confirming:
            result = picked_boolean(self.script, picked.value, self.language)
            self.answer_confirmation(question, result)
            return
        if isinstance(question, AppointmentQuestion):
            appointments.on_option(self, question, picked.value)
            return
        self.answer(
            question, picked_option(self.script, question, picked.value, self.language), "prospect"
        )

    def _on_contact(self, contact: ContactShared) -> None:
        self._wake_if_expired()
        question = self.pending()
        if question is None or self.state.status is not Status.ACTIVE:
            return
        if not isinstance(question, PhoneQuestion) or self.state.confirming:
            self._on_text(contact.phone)
            return
        if not contact.own:
            self.answer(question, Rejected("not_own_contact"), "contact")
            return
        digits = contact.phone.strip()
        # Telegram sends contacts without the leading "+"; they are always international.
        number = digits if digits.startswith("+") else "+" + digits
        self.answer(question, parse_phone(number, region=None), "contact")

    def _on_timer(self, fired: SilenceTimerFired) -> None:
        if fired.kind in APPOINTMENT_TIMERS:
            appointments.on_reminder(self, fired)
            return
        if fired.seq != self.state.timer_seq:
            return  # the prospect wrote since, or the conversation moved on
        if fired.kind is TimerKind.HANDOFF:
            if self.state.status is Status.HANDED_OFF:
                handoff.on_timeout(self)
                self.restart_silence_timers()  # resumed: silence is followed up again
            return
        if self.state.status is not Status.ACTIVE:
            return
        question = self.pending()
        if fired.kind is TimerKind.EXPIRY:
            self.set(status=Status.EXPIRED)
            self.emit(CancelTimers())
            self.emit(MarkAbandoned(question.id if question else None))
            return
        reminders = self.script.spec.reminders
        if reminders is None or self.state.reminders_sent >= len(reminders.after) or not question:
            return
        text = (
            self.render(reminders.message)
            if reminders.message is not None
            else self.script.message("reminder", self.language)
        )
        first = len(self.effects)
        self.say(text)
        self.ask_again()
        self._mark_reminder(first)
        self.set(reminders_sent=self.state.reminders_sent + 1)
        self.schedule_timers(since=_parse_time(self.state.waiting_since, self.now))

    def _mark_reminder(self, first: int) -> None:
        """Tag the messages sent since effect `first` as a reminder's: outside a channel's
        window the dispatcher skips them (the nudge may go as the window template), where an
        ordinary message would be held for a rep to see."""
        part = ReminderPart.NUDGE
        for index in range(first, len(self.effects)):
            effect = self.effects[index]
            if isinstance(effect, SendText):
                self.effects[index] = replace(effect, reminder=part)
                part = ReminderPart.REPEAT

    # -- answers ----------------------------------------------------------------------------

    def answer(self, question: Question, result: ParseResult, source: str) -> None:
        if isinstance(result, Parsed):
            self.record(question, result, source)
            if isinstance(question, ConsentQuestion):
                self.emit(
                    RecordConsent(question.id, self.render(question.prompt), result.value is True)
                )
                if result.value is not True and isinstance(question.on_decline, OutcomeRef):
                    self.complete(question.on_decline.outcome, f"declined {question.id}")
                    return
            self.go(self.next_after(question), question.id)
            return
        attempts = self.state.attempts + 1
        if attempts >= question.max_attempts:
            self.give_up(question)
            return
        self.set(attempts=attempts)
        if question.retry is not None:
            text = self.render(question.retry)
        else:
            text = self.script.message(result.code, self.language, result.params)
        self.send_question(question, text=text)

    def answer_confirmation(self, question: Question, result: ParseResult) -> None:
        prefilled = self.prefilled(question)
        if isinstance(result, Parsed) and result.value is True and prefilled is not None:
            self.set(confirming=False)
            self.record(question, prefilled, "form")
            self.go(self.next_after(question), question.id)
        elif isinstance(result, Parsed) or self.state.attempts + 1 >= question.max_attempts:
            self.set(confirming=False, attempts=0)
            self.send_question(question)  # "no" (or no clear answer): ask the question itself
        else:
            self.set(attempts=self.state.attempts + 1)
            self.send(
                self.script.message("yes_no", self.language),
                yes_no_options(self.script, self.language),
                question,
            )

    def give_up(self, question: Question) -> None:
        action = question.on_fail
        if action == "handoff":
            reason = f"no valid answer to {question.id!r} after {question.max_attempts} tries"
            self.hand_off(reason, message_key="handoff_stuck")
        elif isinstance(action, OutcomeRef):
            self.complete(action.outcome, f"no valid answer to {question.id}")
        else:
            self.go(self.next_after(question), question.id)

    def record(self, question: Question, result: Parsed, source: str) -> None:
        self.answers[question.id] = result.value
        self.emit(RecordAnswer(question.id, result.value, result.display, source))

    def prefilled(self, question: Question) -> Parsed | None:
        """The lead's form value for this question, when it is a valid answer."""
        raw = self.state.lead.get(question.prefill) if question.prefill else None
        if not raw:
            return None
        result = parse_reply(
            self.script,
            question,
            raw,
            language=self.language,
            timezone=self.state.timezone,
            now=self.now,
        )
        return result if isinstance(result, Parsed) else None

    # -- flow -------------------------------------------------------------------------------

    def start(self) -> None:
        greeting = self.script.spec.greeting
        if greeting is not None:
            self.say(self.render(greeting))
        self.go(self.script.order[0])

    def restart(self) -> None:
        self.answers.clear()
        self.set(status=Status.ACTIVE, question=None, confirming=False, attempts=0, outcome=None)
        self.emit(CancelTimers())
        self.start()

    def next_after(self, question: Question) -> str:
        context = self.context()
        if any(b.if_ in self.script.score_conditions for b in question.branches):
            context["score"] = score_answers(self.script, context).total
        for branch in question.branches:
            if branch.if_ is None or self.script.holds(branch.if_, context):
                return branch.goto
        return self.script.next_in_order(question.id) or END

    def go(self, target: str, came_from: str | None = None) -> None:
        # Prefilled questions are answered without a message; the checker rules out loops with
        # no way out, and each hop records an answer, but stay total with a hop limit anyway.
        for _hop in range(len(self.script.order) + 2):
            if target == END_TARGET:
                target = END
            if target in self.script.outcomes or target == END:
                via = f"next step after {came_from}" if came_from else "first step"
                self.complete(None if target == END else target, via)
                return
            question = self.script.questions[target]
            self.set(question=question.id, attempts=0, confirming=False)
            if isinstance(question, HandoffStep):
                self.say(self.render(question.prompt))
                self.hand_off(question.reason)
                return
            prefilled = None if question.id in self.answers else self.prefilled(question)
            if prefilled is None:
                if handoff.rule_fires(self):  # e.g. a hot lead: a rep asks the rest
                    self.hand_off(f"rule: {self.script.spec.handoff.when}")
                    return
                self.send_question(question)
                return
            if question.confirm_prefill:
                self.set(confirming=True)
                self.ask_confirmation(question, prefilled)
                return
            self.record(question, prefilled, "form")
            target, came_from = self.next_after(question), question.id
        self.complete(None, "")

    def complete(self, outcome_id: str | None, via: str) -> None:
        context = self.context()
        score = score_answers(self.script, context)
        if outcome_id is None:
            outcome, rule = choose_outcome(
                self.script, {**context, "score": score.total}, score.total
            )
        else:
            outcome, rule = self.script.outcomes[outcome_id], f"{outcome_id}: {via or 'goto'}"
        self.set(status=Status.COMPLETED, question=None, confirming=False, outcome=outcome.id)
        self.emit(CancelTimers())
        if outcome.message is not None:
            self.say(self.render(outcome.message, score=score.total, outcome=outcome.id))
        reasons = (*score.reasons, rule)
        self.emit(Complete(outcome.id, score.total, reasons, outcome.qualified))
        if outcome.handoff:
            self.set(status=Status.HANDED_OFF)
            self.emit(HandOff(f"outcome {outcome.id}"))

    def hand_off(self, reason: str, message_key: str = "handoff") -> None:
        handoff.hand_off(self, reason, message_key)

    def opt_out(self, keyword: str) -> None:
        self.set(status=Status.OPTED_OUT, confirming=False)
        self.emit(CancelTimers())
        self.say(self.script.message("opted_out", self.language))
        self.emit(OptOut(keyword[:60]))

    def opt_in(self, keyword: str) -> None:
        pending = self.pending()
        self.set(status=Status.ACTIVE if pending is not None else Status.COMPLETED)
        self.emit(OptIn(keyword[:60]))
        self.say(self.script.message("opted_in", self.language))
        if pending is not None:
            self.ask_again()

    def help(self) -> None:
        question = self.pending()
        if question is not None and question.help is not None:
            self.say(self.render(question.help))
        else:
            self.say(self.script.message("help", self.language))
        self.ask_again()

    def ask_again(self) -> None:
        question = self.pending()
        if question is None:
            return
        prefilled = self.prefilled(question) if self.state.confirming else None
        if prefilled is not None:
            self.ask_confirmation(question, prefilled)
        else:
            self.set(confirming=False)
            self.send_question(question)

    def ask_confirmation(self, question: Question, prefilled: Parsed) -> None:
        """ "Is ana@example.com still right?", in the script's words when it has them."""
        if question.confirm is not None:
            text = self.render(question.confirm, value=prefilled.display)
        else:
            params = {"value": prefilled.display}
            text = self.script.message("confirm_prefill", self.language, params)
        self.send(text, yes_no_options(self.script, self.language), question)

    # -- output -----------------------------------------------------------------------------

    def send_question(self, question: Question, text: str | None = None) -> None:
        if isinstance(question, AppointmentQuestion):
            appointments.offer(self, question, text)
            return
        options = options_for(self.script, question, self.language)
        self.send(text if text is not None else self.render(question.prompt), options, question)

    def send(self, text: str, options: Any, question: Question) -> None:
        hint = hint_for(question)
        self.emit(SendText(text, options, question.id, hint, question.whatsapp_buttons))
        self.asked = True

    def say(self, text: str) -> None:
        if text:
            self.emit(SendText(text))

    def restart_silence_timers(self) -> None:
        if self.asked and self.state.status is Status.ACTIVE:
            self.set(reminders_sent=0, waiting_since=self.now.isoformat())
            self.schedule_timers(since=self.now)

    def schedule_timers(self, since: datetime) -> None:
        """While the bot waits: a reminder when the prospect goes quiet, and the expiry."""
        spec = self.script.spec
        if spec.reminders is None and spec.expiry is None:
            return
        seq = self.state.timer_seq + 1
        self.emit(CancelTimers())
        if spec.reminders is not None and self.state.reminders_sent < len(spec.reminders.after):
            delay: timedelta = spec.reminders.after[self.state.reminders_sent]
            self.emit(ScheduleTimer(TimerKind.REMINDER, self.now + delay, seq))
        if spec.expiry is not None:
            self.emit(ScheduleTimer(TimerKind.EXPIRY, since + spec.expiry.after, seq))
        self.set(timer_seq=seq)

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    # -- state ------------------------------------------------------------------------------

    @property
    def language(self) -> str:
        return self.state.language

    def set(self, **changes: Any) -> None:
        for name, value in changes.items():
            object.__setattr__(self.state, name, value)

    def pending(self) -> Question | None:
        return self.script.questions.get(self.state.question) if self.state.question else None

    def context(self, **extra: Any) -> dict[str, Any]:
        return {"lead": self.state.lead, "answers": self.answers, **extra}

    def render(self, text: Any, **extra: Any) -> str:
        return self.script.render(text, self.language, self.context(**extra))


def _parse_time(value: str | None, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return default
