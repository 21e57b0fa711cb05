"""No prospect input can make the engine raise, and every state it returns is sound."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.compiled import CompiledScript
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
from bot.loader import load_script
from bot.state import ConversationState, Status
from tests.conftest import NOW
from tests.test_engine import SCRIPT

CAR = load_script(
    (Path(__file__).parent.parent / "examples/scripts/car_test_drive.yaml").read_text(),
    "car_test_drive.yaml",
)

emoji = st.sampled_from(["👍", "👎", "🚗", "❤️", "🇪🇸", "\u200b", "\ufeff", "🤷‍♀️"])
texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.lists(emoji, max_size=8).map("".join),
    st.sampled_from(
        ["", " ", "\n\t", "STOP", "help", "restart", "agent", "1", "2, 3", "yes", "no", "10k"]
    ),
    st.integers(min_value=5_000, max_value=20_000).map(lambda n: "x" * n),
    st.builds(
        lambda a, b: f"{a} {b}",
        st.sampled_from(["next friday", "tomorrow 3pm", "1/1/1"]),
        st.text(max_size=10),
    ),
)


def inbounds(script: CompiledScript) -> st.SearchStrategy[Inbound]:
    question_ids = st.sampled_from([*script.order, "nope"])
    return st.one_of(
        texts.map(TextReceived),
        texts.map(TextReceived),
        st.builds(
            OptionPicked,
            question_ids,
            st.one_of(texts, st.sampled_from(["yes", "no", "suv", "suv_x", "van"])),
        ),
        st.builds(ContactShared, st.one_of(texts, st.just("+34612345678")), st.booleans()),
        st.builds(SilenceTimerFired, st.sampled_from(list(TimerKind)), st.integers(0, 6)),
        st.just(ReturnedFromRep()),
        st.builds(
            ConversationStarted,
            st.dictionaries(
                st.sampled_from(["first_name", "email", "phone", "budget_hint", "x"]),
                texts,
                max_size=3,
            ),
            st.one_of(
                st.none(), st.sampled_from(["es", "en", "zz", "pt-BR", ""]), st.text(max_size=5)
            ),
            st.one_of(
                st.none(), st.sampled_from(["Europe/Madrid", "Bad/Zone", "", "America/Bogota"])
            ),
        ),
    )


def _check_sound(script: CompiledScript, state: ConversationState) -> None:
    assert json.loads(json.dumps(state.to_dict())) == state.to_dict()
    assert ConversationState.from_dict(state.to_dict()) == state
    if state.status is Status.ACTIVE:
        assert state.question in script.questions
    if state.status is Status.COMPLETED:
        assert state.outcome in script.outcomes
    if state.question is not None:
        assert state.question in script.questions
    assert 0 <= state.attempts < max(q.max_attempts for q in script.spec.questions)


def _play(script: CompiledScript, started: ConversationStarted, events: list[Inbound]) -> None:
    now = NOW
    transition = step(script, None, started, now)
    state = transition.state
    _check_sound(script, state)
    for event in events:
        now += timedelta(minutes=7)
        transition = step(script, state, event, now)
        state = transition.state
        _check_sound(script, state)


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(
    st.builds(
        ConversationStarted,
        st.dictionaries(st.sampled_from(["first_name", "email", "budget_hint"]), texts, max_size=3),
    ),
    st.lists(inbounds(SCRIPT), max_size=12),
)
def test_engine_never_raises_on_any_input(
    started: ConversationStarted, events: list[Inbound]
) -> None:
    _play(SCRIPT, started, events)


@SETTINGS
@given(
    st.builds(
        ConversationStarted,
        st.dictionaries(
            st.sampled_from(["first_name", "phone", "preferred_model"]), texts, max_size=3
        ),
    ),
    st.lists(inbounds(CAR), max_size=10),
)
def test_example_script_never_raises_on_any_input(
    started: ConversationStarted, events: list[Inbound]
) -> None:
    _play(CAR, started, events)
