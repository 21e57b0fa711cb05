from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.yes_no import NO_WORDS, YES_WORDS, parse_yes_no

LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl")


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("yes", ("en",), True),
        ("Yes!", ("en",), True),
        ("  YEAH  ", ("en",), True),
        ("yep", ("en",), True),
        ("Sure.", ("en",), True),
        ("ok", ("en",), True),
        ("okay thanks", ("en",), True),
        ("of course!", ("en",), True),
        ("Absolutely, thanks!", ("en",), True),
        ("yes please", ("en",), True),
        ("no problem", ("en",), True),
        ("y", ("en",), True),
        ("y please", ("en",), True),
        ("Y, please, thanks!", ("en",), True),
        ("no", ("en",), False),
        ("nope", ("en",), False),
        ("nah", ("en",), False),
        ("not really", ("en",), False),
        ("no thanks", ("en",), False),
        ("of course not", ("en",), False),
        ("n", ("en",), False),
        ("sí", ("es",), True),
        ("Si", ("es",), True),
        ("¡Claro!", ("es",), True),
        ("vale", ("es",), True),
        ("claro que no", ("es",), False),
        ("no, gracias", ("es",), False),
        ("oui", ("fr",), True),
        ("Ouais", ("fr",), True),
        ("d’accord", ("fr",), True),
        ("non merci", ("fr",), False),
        ("ja", ("de",), True),
        ("Nein danke", ("de",), False),
        ("sim", ("pt",), True),
        ("não", ("pt",), False),
        ("nao", ("pt-BR",), False),
        ("sì", ("it",), True),
        ("certo", ("it",), True),
        ("ja", ("nl",), True),
        ("nee", ("nl",), False),
        ("yes", ("es",), True),
        ("nope", ("fr", "de"), False),
        ("👍", ("en",), True),
        ("👍🏽", ("en",), True),
        ("✅", ("en",), True),
        ("ok 👍", ("en",), True),
        ("👎", ("en",), False),
        ("❌", ("en",), False),
        ("1", ("en",), None),
        ("2", ("en",), None),
        ("maybe", ("en",), None),
        ("not sure", ("en",), None),
        ("I don't know", ("en",), None),
        ("yes and no", ("en",), None),
        ("ok no", ("en",), None),
        ("quizás", ("es",), None),
        ("peut-être", ("fr",), None),
        ("perro y gato", ("es",), None),
        ("ja", ("en",), None),
        ("oui", ("en",), None),
        ("thanks", ("en",), None),
        ("", ("en",), None),
        ("   ", ("en",), None),
        ("yes " * 300, ("en",), None),
    ],
)
def test_parse_yes_no(text: str, languages: Sequence[str], expected: bool | None) -> None:
    assert parse_yes_no(text, languages) is expected


def test_default_language_is_english() -> None:
    assert parse_yes_no("yes") is True
    assert parse_yes_no("nein") is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_listed_word_is_understood(language: str) -> None:
    assert YES_WORDS.keys() == NO_WORDS.keys()
    for word in YES_WORDS[language]:
        assert parse_yes_no(word, (language,)) is True, word
    for word in NO_WORDS[language]:
        assert parse_yes_no(word, (language,)) is False, word


@settings(max_examples=300)
@given(st.text() | st.text(min_size=1000, max_size=10_000), st.sampled_from([(), LANGUAGES]))
def test_parse_yes_no_never_raises(text: str, languages: Sequence[str]) -> None:
    assert parse_yes_no(text, languages) in (True, False, None)
