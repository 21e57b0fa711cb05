"""Engine details found by writing the docs and the examples: each test pins one behaviour."""

from __future__ import annotations

from datetime import timedelta

from bot.effects import Complete, HandOff, OptOut, SendText
from bot.engine import step
from bot.inbound import (
    ConversationStarted,
    Inbound,
    OptionPicked,
    ReturnedFromRep,
    SilenceTimerFired,
    TextReceived,
    TimerKind,
)
from bot.loader import parse_script
from bot.problems import Severity
from bot.state import ConversationState, Status
from tests.conftest import NOW, script_from

CONFIRM = script_from(
    """
    id: confirm
    name: Confirm
    region: GB
    lead_fields: [phone]
    questions:
      - id: phone
        type: phone
        prefill: phone
        confirm_prefill: true
        confirm: "Can we text you on {{ value }}?"
        prompt: What's your mobile number?
    outcomes: [{id: done}]
    reminders: {after: [10m]}
    """
)


def play(
    script, lines: list[Inbound | str], **started: object
) -> tuple[ConversationState, list[list[str]]]:  # type: ignore[no-untyped-def]
    now = NOW
    transition = step(script, None, ConversationStarted(**started), now)  # type: ignore[arg-type]
    said = [[e.text for e in transition.effects if isinstance(e, SendText)]]
    state = transition.state
    for line in lines:
        now += timedelta(minutes=1)
        inbound = TextReceived(line) if isinstance(line, str) else line
        transition = step(script, state, inbound, now)
        state = transition.state
        said.append([e.text for e in transition.effects if isinstance(e, SendText)])
    return state, said


def test_custom_confirm_text_is_kept_when_asked_again() -> None:
    _state, said = play(CONFIRM, ["help"], lead={"phone": "07911 123456"})
    assert said[0] == ["Can we text you on +44 7911 123456?"]
    assert said[1][-1] == "Can we text you on +44 7911 123456?"


def test_a_reminder_during_a_confirmation_repeats_the_confirmation() -> None:
    state, said = play(
        CONFIRM, [SilenceTimerFired(TimerKind.REMINDER, 1), "yes"], lead={"phone": "07911 123456"}
    )
    assert said[1][-1] == "Can we text you on +44 7911 123456?"
    assert state.answers == {"phone": "+447911123456"}


NUMBERS = script_from(
    """
    id: numbers
    name: Numbers
    languages: [en, es]
    questions:
      - id: budget
        type: number
        min: 2000
        prompt: {en: Budget?, es: ¿Presupuesto?}
        max_attempts: 2
        on_fail: handoff
      - id: fine
        type: yes_no
        prompt: {en: All good?, es: ¿Todo bien?}
        next: end
      - id: never
        type: text
        prompt: {en: Never asked, es: Nunca}
    outcomes:
      - {id: happy, when: answers.fine, message: {en: Great!, es: ¡Genial!}}
      - {id: unhappy, message: {en: Sorry., es: Lo siento.}}
    """
)


def test_number_bounds_are_shown_as_people_write_them() -> None:
    _state, said = play(NUMBERS, ["12"])
    assert "at least 2,000" in said[1][0]
    _state, said = play(NUMBERS, ["12"], language="es")
    assert "al menos 2000" in said[1][0] or "al menos 2.000" in said[1][0]


def test_failing_on_fail_handoff_says_why_and_hand_back_resets_the_attempts() -> None:
    state, said = play(NUMBERS, ["lots", "many"])
    assert said[2] == [
        "Let me get a member of our team to help with this. They'll reply here shortly."
    ]
    assert state.status is Status.HANDED_OFF
    state, said = play(NUMBERS, ["lots", "many", ReturnedFromRep(), "a few"])
    assert state.status is Status.ACTIVE  # one more miss is a retry, not a second handoff
    assert state.attempts == 1


def test_yes_no_can_be_answered_by_its_number() -> None:
    state, _said = play(NUMBERS, ["5000", "1"])
    assert state.answers["fine"] is True
    state, _said = play(NUMBERS, ["5000", "2"])
    assert state.answers["fine"] is False


def test_goto_end_chooses_the_outcome_by_its_rules() -> None:
    state, said = play(NUMBERS, ["5000", "yes"])
    assert state.outcome == "happy"
    assert "never" not in state.answers
    assert said[-1] == ["Great!"]


DATES = script_from(
    """
    id: dates
    name: Dates
    languages: [en, es]
    timezone: Europe/Madrid
    questions:
      - id: day
        type: date
        weekdays: [mon, tue, wed, thu, fri]
        prompt: {en: Which day?, es: ¿Qué día?}
      - id: call
        type: datetime
        prompt: {en: When shall we call?, es: ¿Cuándo te llamamos?}
    outcomes: [{id: done}]
    """
)


def test_dates_and_days_are_in_the_prospects_language() -> None:
    transition = step(DATES, None, ConversationStarted(language="es"), NOW)
    rejected = step(DATES, transition.state, TextReceived("el sábado"), NOW)
    text = next(e.text for e in rejected.effects if isinstance(e, SendText))
    assert "de lunes a viernes" in text
    accepted = step(DATES, rejected.state, TextReceived("2026-01-07"), NOW)
    recorded = next(e for e in accepted.effects if type(e).__name__ == "RecordAnswer")
    assert recorded.display == "miércoles, 7 de enero de 2026"  # type: ignore[attr-defined]


def test_a_datetime_question_gives_examples_with_a_time() -> None:
    _state, said = play(DATES, ["2026-01-07", "whenever"])
    assert "Friday at 3pm" in said[2][0]


MULTI = script_from(
    """
    id: multi
    name: Multi
    questions:
      - id: concerns
        type: choice
        multiple: true
        min_choices: 2
        prompt: Pick two
        options: [{value: a, label: Acne}, {value: b, label: Dryness}, {value: c, label: Redness}]
    outcomes: [{id: done}]
    """
)


def test_one_tap_cannot_satisfy_a_minimum_of_two() -> None:
    state, said = play(MULTI, [OptionPicked("concerns", "a")])
    assert "concerns" not in state.answers
    assert "at least 2" in said[1][0]
    state, _said = play(MULTI, ["1, 3"])
    assert state.answers["concerns"] == ["a", "c"]


def test_regional_languages_get_their_base_languages_words() -> None:
    script = script_from(
        """
        id: br
        name: BR
        languages: [pt-BR]
        questions: [{id: name, type: text, prompt: Seu nome?}]
        outcomes: [{id: done}]
        """
    )
    transition = step(script, None, ConversationStarted(), NOW)
    stopped = step(script, transition.state, TextReceived("parar"), NOW)
    assert any(isinstance(e, OptOut) for e in stopped.effects)
    handed = step(script, transition.state, TextReceived("agente"), NOW)
    assert any(isinstance(e, HandOff) for e in handed.effects)


def test_a_template_that_does_not_fit_the_data_shows_no_markup() -> None:
    script = script_from(
        """
        id: tpl
        name: Tpl
        lead_fields: [{name: employees, type: number}]
        greeting: "Hello! {{ 'Big team!' if lead.employees > 100 else '' }} Welcome."
        questions: [{id: name, type: text, prompt: Your name?}]
        outcomes: [{id: done}]
        """
    )
    transition = step(script, None, ConversationStarted({"employees": "250"}), NOW)
    assert next(e.text for e in transition.effects if isinstance(e, SendText)) == "Hello! Welcome."


def test_an_expired_conversation_opened_again_restarts_when_the_script_says_so() -> None:
    script = script_from(
        """
        id: late
        name: Late
        greeting: Hi!
        questions:
          - {id: a, type: text, prompt: First?}
          - {id: b, type: text, prompt: Second?}
        outcomes: [{id: done}]
        expiry: {after: 1d, late_reply: restart}
        """
    )
    state, said = play(
        script, ["one", SilenceTimerFired(TimerKind.EXPIRY, 2), ConversationStarted()]
    )
    assert state.status is Status.ACTIVE
    assert said[-1] == ["Hi!", "First?"]
    assert state.answers == {}


def test_checker_flags_jinja_and_unknown_placeholders_in_messages() -> None:
    result = parse_script(
        """
id: m
name: M
questions: [{id: a, type: number, prompt: A?}]
outcomes: [{id: done}]
messages:
  too_small: "At least {min}, {{ lead.first_name }}"
  number: "A number, {name}?"
"""
    )
    errors = [p.message for p in result.problems if p.severity is Severity.ERROR]
    warnings = [p.message for p in result.problems if p.severity is Severity.WARNING]
    assert any("not Jinja2" in m and "{min}" in m for m in errors)
    assert any("placeholder {name} is not filled in for 'number'" in m for m in warnings)


def test_checker_warns_about_options_that_are_reserved_words_and_odd_settings() -> None:
    result = parse_script(
        """
id: w
name: W
questions:
  - id: job
    type: choice
    prompt: Job?
    options: [{value: fork, label: Forklift, synonyms: [operator]}, {value: end, label: End}]
  - {id: day, type: date, hours: "09:00-17:00", prompt: Day?}
  - {id: mail, type: email, confirm: "Still {{ value }}?", prompt: Mail?}
outcomes: [{id: done}]
"""
    )
    warnings = [p.message for p in result.warnings]
    assert "typing 'operator' is a request for a person, so it never picks this option" in warnings
    assert "typing 'End' is the opt_out command, so it never picks this option" in warnings
    assert "hours only apply to datetime questions" in warnings
    assert "confirm is only said with confirm_prefill: true" in warnings


def test_end_is_a_reserved_id() -> None:
    result = parse_script(
        """
id: e
name: E
questions: [{id: end, type: text, prompt: A?}]
outcomes: [{id: done}]
"""
    )
    assert any("`end` is reserved" in p.message for p in result.errors)


def test_complete_reasons_name_the_step_that_chose_an_outcome() -> None:
    state, _said = play(NUMBERS, ["5000", "no"])
    assert state.outcome == "unhappy"
    transition = step(NUMBERS, None, ConversationStarted(), NOW)
    transition = step(NUMBERS, transition.state, TextReceived("5000"), NOW)
    done = step(NUMBERS, transition.state, TextReceived("no"), NOW)
    complete = next(e for e in done.effects if isinstance(e, Complete))
    assert complete.reasons == ("unhappy: default",)


def test_a_tap_after_expiry_is_a_late_reply() -> None:
    script = script_from(
        """
        id: tap
        name: Tap
        questions:
          - {id: a, type: yes_no, prompt: Ready?}
          - {id: b, type: text, prompt: Name?}
        outcomes: [{id: done}]
        expiry: {after: 1d}
        """
    )
    state, said = play(script, [SilenceTimerFired(TimerKind.EXPIRY, 1), OptionPicked("a", "yes")])
    assert state.status is Status.ACTIVE
    assert state.answers == {"a": True}
    assert said[-1] == ["Name?"]
