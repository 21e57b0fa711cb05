"""The engine, step by step: no loop, no database, a fixed clock."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from bot.effects import (
    CancelTimers,
    Complete,
    Effect,
    HandOff,
    InputHint,
    MarkAbandoned,
    OptOut,
    RecordAnswer,
    RecordConsent,
    ScheduleTimer,
    SendText,
)
from bot.engine import Transition, step
from bot.errors import StateError
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
from bot.state import ConversationState, Status
from tests.conftest import NOW, script_from

SCRIPT = script_from(
    """
    id: shop
    name: Shop
    languages: [en, es]
    timezone: Europe/Madrid
    region: ES
    lead_fields: [first_name, email, phone, {name: budget_hint, type: number}]
    greeting: {en: "Hi {{ lead.first_name or 'there' }}!", es: "¡Hola {{ lead.first_name }}!"}
    questions:
      - id: product
        type: choice
        prompt: {en: What are you after?, es: ¿Qué buscas?}
        options:
          - {value: suv, label: {en: SUV X, es: SUV X}, synonyms: [crossover], score: 10}
          - {value: sedan, label: {en: Sedan S, es: Berlina S}, score: 5}
          - {value: van, label: {en: Van V, es: Furgoneta V}}
        help: {en: The SUV X seats seven., es: El SUV X tiene siete plazas.}
        next:
          - if: answers.product == 'van'
            goto: trade
          - goto: budget
      - id: budget
        type: number
        prefill: budget_hint
        min: 1000
        prompt: {en: Your budget?, es: ¿Tu presupuesto?}
        retry: {en: "A number like 20k, please.", es: "Un número como 20k, por favor."}
        max_attempts: 2
        on_fail: skip
      - id: job
        type: text
        prompt: {en: What do you do for a living?, es: ¿A qué te dedicas?}
      - id: email
        type: email
        prefill: email
        confirm_prefill: true
        prompt: {en: Your email?, es: ¿Tu correo?}
        max_attempts: 2
        on_fail: handoff
      - id: phone
        type: phone
        prompt: {en: Your phone?, es: ¿Tu teléfono?}
      - id: terms
        type: consent
        prompt: {en: May we call you about offers?, es: ¿Podemos llamarte con ofertas?}
        on_decline: {outcome: declined}
        next: specialist
      - id: trade
        type: yes_no
        prompt: {en: Trading in a vehicle?, es: ¿Entregas un vehículo?}
        max_attempts: 2
        on_fail: {outcome: nurture}
        next: nurture
      - id: specialist
        type: handoff
        prompt: {en: Let me get a specialist., es: Te paso con un especialista.}
        reason: wants a specialist
    scoring:
      - if: answers.budget >= 20000
        points: 30
        reason: budget >= 20k
    outcomes:
      - id: hot
        min_score: 40
        qualified: true
        message: {en: "Hot! Score {{ score }}.", es: "¡Genial! {{ score }}."}
      - id: declined
        message: {en: Understood., es: Entendido.}
      - id: nurture
        qualified: false
        message: {en: "Thanks, {{ lead.first_name }}.", es: "Gracias."}
    reminders:
      after: [10m, 1d]
    expiry:
      after: 7d
    """
)


def texts(effects: tuple[Effect, ...]) -> list[str]:
    return [e.text for e in effects if isinstance(e, SendText)]


def of_type(effects: tuple[Effect, ...], kind: type) -> list:
    return [e for e in effects if isinstance(e, kind)]


class Conversation:
    """Drives the engine like a channel would, advancing the clock a minute per message."""

    def __init__(self, **started: object) -> None:
        self.now = NOW
        self.last = step(SCRIPT, None, ConversationStarted(**started), self.now)  # type: ignore[arg-type]
        self.state = self.last.state

    def send(self, inbound: Inbound | str) -> Transition:
        if isinstance(inbound, str):
            inbound = TextReceived(inbound)
        self.now += timedelta(minutes=1)
        self.last = step(SCRIPT, self.state, inbound, self.now)
        self.state = self.last.state
        return self.last


def test_start_greets_with_lead_fields_and_asks_first_question() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    sent = of_type(convo.last.effects, SendText)
    assert [s.text for s in sent] == ["Hi Ana!", "What are you after?"]
    assert [o.label for o in sent[1].options] == ["SUV X", "Sedan S", "Van V"]
    assert sent[1].question_id == "product"
    assert sent[1].hint is InputHint.CHOICE
    assert convo.state.question == "product"
    assert convo.state.status is Status.ACTIVE


def test_language_from_the_channel_and_fallback_to_default() -> None:
    assert (
        texts(Conversation(language="es", lead={"first_name": "Ana"}).last.effects)[0]
        == "¡Hola Ana!"
    )
    assert Conversation(language="es-MX").state.language == "es"
    assert Conversation(language="ja").state.language == "en"


def test_unknown_lead_fields_are_dropped_and_unknown_timezone_ignored() -> None:
    convo = Conversation(lead={"first_name": "Ana", "ssn": "123"}, timezone="Nowhere/City")
    assert dict(convo.state.lead) == {"first_name": "Ana"}
    assert convo.state.timezone == "Europe/Madrid"


@pytest.mark.parametrize("reply", ["1", "suv", "SUV X", "crossover", "the suv please"])
def test_choice_by_number_label_synonym_or_fuzzy(reply: str) -> None:
    convo = Conversation()
    result = convo.send(reply)
    assert of_type(result.effects, RecordAnswer) == [
        RecordAnswer("product", "suv", "SUV X", "prospect")
    ]
    assert convo.state.answers["product"] == "suv"
    assert texts(result.effects) == ["Your budget?"]


def test_option_picked_answers_and_a_stale_button_does_nothing() -> None:
    convo = Conversation()
    convo.send(OptionPicked("product", "sedan"))
    assert convo.state.answers["product"] == "sedan"
    stale = convo.send(OptionPicked("product", "suv"))
    assert stale.effects == ()
    assert convo.state.answers["product"] == "sedan"
    assert convo.state.question == "budget"


def test_unknown_option_value_is_refused_politely() -> None:
    convo = Conversation()
    result = convo.send(OptionPicked("product", "tank"))
    assert "pick one of the options" in texts(result.effects)[0]
    assert convo.state.attempts == 1


def test_branch_condition_routes_the_flow() -> None:
    convo = Conversation()
    result = convo.send("van")
    assert texts(result.effects) == ["Trading in a vehicle?"]
    assert convo.state.question == "trade"


def test_invalid_answer_gets_retry_then_on_fail_skip() -> None:
    convo = Conversation()
    convo.send("suv")
    first = convo.send("a lot")
    assert texts(first.effects) == ["A number like 20k, please."]
    assert convo.state.attempts == 1
    second = convo.send("no idea")
    assert of_type(second.effects, RecordAnswer) == []
    assert "budget" not in convo.state.answers
    assert texts(second.effects) == ["What do you do for a living?"]


def test_default_retry_message_names_the_problem() -> None:
    convo = Conversation(language="es")
    for reply in ["suv", "25k", "plumber", "ana@example.com"]:
        convo.send(reply)
    result = convo.send("call me")
    assert convo.state.question == "phone"
    sent = of_type(result.effects, SendText)
    assert sent[0].text == "Eso no parece un número de teléfono. ¿Podrías incluir el prefijo?"
    assert sent[0].question_id == "phone"
    assert sent[0].hint is InputHint.PHONE


def test_on_fail_outcome_completes_the_conversation() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    convo.send("van")
    convo.send("maybe")
    result = convo.send("perhaps")
    completes = of_type(result.effects, Complete)
    assert completes
    assert completes[0].outcome == "nurture"
    assert "no valid answer to trade" in completes[0].reasons[-1]
    assert convo.state.status is Status.COMPLETED


def test_on_fail_handoff() -> None:
    convo = Conversation()
    for reply in ["suv", "25k", "plumber", "not an email", "still not"]:
        result = convo.send(reply)
    assert convo.state.status is Status.HANDED_OFF
    assert of_type(result.effects, HandOff)[0].reason.startswith("no valid answer to 'email'")


def test_prefill_skips_valid_values_and_asks_invalid_ones() -> None:
    convo = Conversation(lead={"budget_hint": "30000"})
    result = convo.send("suv")
    answers = of_type(result.effects, RecordAnswer)
    assert RecordAnswer("budget", 30000, "30,000", "form") in answers
    assert texts(result.effects) == ["What do you do for a living?"]
    invalid = Conversation(lead={"budget_hint": "lots"})
    assert texts(invalid.send("suv").effects) == ["Your budget?"]


def test_confirm_prefill_yes_records_no_asks() -> None:
    convo = Conversation(lead={"email": "Ana@Example.com"})
    convo.send("suv")
    convo.send("25k")
    confirm = convo.send("plumber")
    sent = of_type(confirm.effects, SendText)[0]
    assert sent.text == "Is Ana@example.com still right?"
    assert [o.value for o in sent.options] == ["yes", "no"]
    assert convo.state.confirming
    yes = convo.send("yes")
    assert RecordAnswer("email", "Ana@example.com", "Ana@example.com", "form") in yes.effects

    other = Conversation(lead={"email": "ana@example.com"})
    for reply in ["suv", "25k", "plumber"]:
        other.send(reply)
    no = other.send(OptionPicked("email", "no"))
    assert texts(no.effects) == ["Your email?"]
    assert not other.state.confirming
    other.send("ana.new@example.com")
    assert other.state.answers["email"] == "ana.new@example.com"


def test_full_conversation_scores_and_hands_off_at_the_handoff_step() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    for reply in ["suv", "25k", "plumber", "ana@example.com", "+34 612 345 678"]:
        convo.send(reply)
    consent = convo.send("yes")
    assert of_type(consent.effects, RecordConsent) == [
        RecordConsent("terms", "May we call you about offers?", True)
    ]
    assert texts(consent.effects) == ["Let me get a specialist."]
    assert of_type(consent.effects, HandOff) == [HandOff("wants a specialist")]
    assert convo.state.status is Status.HANDED_OFF
    silent = convo.send("hello?")
    assert silent.effects == ()
    back = convo.send(ReturnedFromRep())
    completes = of_type(back.effects, Complete)
    assert completes[0].outcome == "hot"
    assert completes[0].score == 40
    assert completes[0].qualified is True
    assert completes[0].reasons == (
        "product = SUV X: +10",
        "budget >= 20k: +30",
        "hot: score >= 40 (score 40)",
    )
    assert texts(back.effects)[-1] == "Hot! Score 40."
    assert convo.state.answers == {
        "product": "suv",
        "budget": 25000,
        "job": "plumber",
        "email": "ana@example.com",
        "phone": "+34612345678",
        "terms": True,
    }


def test_consent_declined_goes_to_its_outcome() -> None:
    convo = Conversation()
    for reply in ["sedan", "5k", "nurse", "nurse@example.com", "612345678"]:
        convo.send(reply)
    result = convo.send("no")
    assert of_type(result.effects, RecordConsent) == [
        RecordConsent("terms", "May we call you about offers?", False)
    ]
    assert of_type(result.effects, Complete)[0].outcome == "declined"


def test_handoff_phrase_as_whole_message_hands_off_and_rep_returns_to_same_question() -> None:
    convo = Conversation()
    convo.send("suv")
    result = convo.send("Talk to a person!")
    assert of_type(result.effects, HandOff)[0].reason.startswith("prospect asked for a person")
    assert CancelTimers() in result.effects
    assert convo.state.status is Status.HANDED_OFF
    back = convo.send(ReturnedFromRep())
    assert texts(back.effects) == [
        "Thanks for waiting! Let's pick up where we left off. So far: SUV X.",
        "Your budget?",
    ]
    assert convo.state.status is Status.ACTIVE


def test_handoff_word_inside_a_valid_answer_is_an_answer() -> None:
    convo = Conversation()
    convo.send("suv")
    convo.send("25k")
    result = convo.send("I'm an estate agent")
    assert of_type(result.effects, HandOff) == []
    assert convo.state.answers["job"] == "I'm an estate agent"


def test_handoff_word_inside_an_invalid_answer_hands_off() -> None:
    convo = Conversation()
    result = convo.send("can I speak to a real person about this")
    assert of_type(result.effects, HandOff)


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", "baja"])
def test_opt_out_in_any_state_and_silence_after(word: str) -> None:
    convo = Conversation(language="es")
    result = convo.send(word)
    assert of_type(result.effects, OptOut) == [OptOut(word)]
    assert CancelTimers() in result.effects
    assert convo.state.status is Status.OPTED_OUT
    for later in [
        TextReceived("hola"),
        ConversationStarted(),
        ReturnedFromRep(),
        OptionPicked("product", "suv"),
    ]:
        assert convo.send(later).effects == ()


def test_opt_out_while_with_a_rep() -> None:
    convo = Conversation()
    convo.send("agent")
    result = convo.send("stop")
    assert of_type(result.effects, OptOut)
    assert convo.state.status is Status.OPTED_OUT


def test_help_shows_question_help_then_asks_again() -> None:
    convo = Conversation()
    result = convo.send("help")
    assert texts(result.effects) == ["The SUV X seats seven.", "What are you after?"]
    generic = Conversation()
    generic.send("suv")
    assert "STOP" in texts(generic.send("?").effects)[0]


def test_restart_forgets_answers_and_greets_again() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    convo.send("suv")
    result = convo.send("restart")
    assert texts(result.effects) == ["Hi Ana!", "What are you after?"]
    assert convo.state.answers == {}
    assert convo.state.question == "product"


def test_contact_shared_answers_a_phone_question_only_when_it_is_their_own() -> None:
    convo = Conversation()
    for reply in ["suv", "25k", "plumber", "ana@example.com"]:
        convo.send(reply)
    assert convo.state.question == "phone"
    refused = convo.send(ContactShared("34612345678", own=False))
    assert "own number" in texts(refused.effects)[0]
    accepted = convo.send(ContactShared("34612345678", own=True))
    assert RecordAnswer("phone", "+34612345678", "+34 612 34 56 78", "contact") in accepted.effects


def test_questions_schedule_reminders_and_expiry() -> None:
    convo = Conversation()
    timers = of_type(convo.last.effects, ScheduleTimer)
    assert timers == [
        ScheduleTimer(TimerKind.REMINDER, NOW + timedelta(minutes=10), 1),
        ScheduleTimer(TimerKind.EXPIRY, NOW + timedelta(days=7), 1),
    ]


def test_reminders_then_expiry_then_late_reply_resumes() -> None:
    convo = Conversation()
    first = convo.send(SilenceTimerFired(TimerKind.REMINDER, 1))
    assert texts(first.effects) == [
        "Still there? Just a couple of questions left.",
        "What are you after?",
    ]
    second_timer = of_type(first.effects, ScheduleTimer)
    assert second_timer[0].kind is TimerKind.REMINDER
    assert second_timer[0].at == convo.now + timedelta(days=1)
    assert second_timer[1] == ScheduleTimer(TimerKind.EXPIRY, NOW + timedelta(days=7), 2)
    assert convo.state.reminders_sent == 1
    stale = convo.send(SilenceTimerFired(TimerKind.REMINDER, 1))
    assert stale.effects == ()
    convo.send(SilenceTimerFired(TimerKind.REMINDER, 2))
    assert convo.state.reminders_sent == 2
    expired = convo.send(SilenceTimerFired(TimerKind.EXPIRY, 3))
    assert MarkAbandoned("product") in expired.effects
    assert convo.state.status is Status.EXPIRED
    late = convo.send("sedan")
    assert convo.state.status is Status.ACTIVE
    assert convo.state.answers["product"] == "sedan"
    assert texts(late.effects) == ["Your budget?"]


def test_a_reply_cancels_pending_timers_and_starts_new_ones() -> None:
    convo = Conversation()
    result = convo.send("suv")
    assert result.effects[-3:] == (
        CancelTimers(),
        ScheduleTimer(TimerKind.REMINDER, convo.now + timedelta(minutes=10), 2),
        ScheduleTimer(TimerKind.EXPIRY, convo.now + timedelta(days=7), 2),
    )


def test_completed_conversation_answers_politely_and_records_nothing() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    convo.send("van")
    convo.send("no")
    assert convo.state.status is Status.COMPLETED
    result = convo.send("hello again")
    assert texts(result.effects) == [
        "Thanks, we have everything we need. Someone from our team will be in touch."
    ]
    assert of_type(result.effects, RecordAnswer) == []


def test_state_round_trips_through_json() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    convo.send("suv")
    data = json.loads(json.dumps(convo.state.to_dict()))
    restored = ConversationState.from_dict(data)
    assert restored == convo.state
    after = step(SCRIPT, restored, TextReceived("25k"), NOW)
    assert after.state.answers["budget"] == 25000


def test_state_from_another_script_version_is_refused() -> None:
    convo = Conversation()
    other = ConversationState.from_dict({**convo.state.to_dict(), "script_version": "0" * 16})
    with pytest.raises(StateError):
        step(SCRIPT, other, TextReceived("suv"), NOW)
    with pytest.raises(StateError):
        ConversationState.from_dict({"nonsense": 1})


def test_step_is_deterministic() -> None:
    replies = ["suv", "25k", "plumber", "ana@example.com"]
    runs = []
    for _ in range(2):
        convo = Conversation(lead={"first_name": "Ana"})
        runs.append([convo.send(reply) for reply in replies])
    assert runs[0] == runs[1]


def test_naive_clock_is_taken_as_utc() -> None:
    result = step(SCRIPT, None, ConversationStarted(), NOW.replace(tzinfo=None))
    assert of_type(result.effects, ScheduleTimer)[0].at == NOW + timedelta(minutes=10)


def test_step_never_changes_the_state_it_was_given() -> None:
    convo = Conversation(lead={"first_name": "Ana"})
    before = convo.state
    snapshot = copy.deepcopy(before.to_dict())  # to_dict copies one level only
    after = step(SCRIPT, before, TextReceived("suv"), NOW)
    assert before.to_dict() == snapshot
    assert after.state is not before
    assert after.state.answers == {"product": "suv"}
