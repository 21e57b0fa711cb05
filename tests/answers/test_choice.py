import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.choice import ChoiceOption, match_choice
from bot.answers.result import JSONValue, Parsed, ParseResult, Rejected

CARS = (
    ChoiceOption("x1", "SUV X", ("todoterreno",)),
    ChoiceOption("s1", "Sedan S", ("berline",)),
    ChoiceOption("h1", "Hatchback H"),
)
COLOURS = (
    ChoiceOption("rc", "Red car"),
    ChoiceOption("rt", "Red truck"),
    ChoiceOption("bw", "Black & White"),
)
SEATS = (ChoiceOption("2", "2"), ChoiceOption("5", "5"), ChoiceOption("7", "7"))
SUV = Parsed("x1", "SUV X")
SEDAN = Parsed("s1", "Sedan S")
HATCH = Parsed("h1", "Hatchback H")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("suv", SUV),
        ("sedan", SEDAN),
        ("2", SEDAN),
        ("2.", SEDAN),
        ("#2", SEDAN),
        ("option 2", SEDAN),
        (" 3) ", HATCH),
        ("the suv please", SUV),
        ("SUV X", SUV),
        ("x1", SUV),
        ("Sedán", SEDAN),
        ("TODOTERRENO", SUV),
        ("berline", SEDAN),
        ("hatchbak", HATCH),
        ("I want the sedan", SEDAN),
        ("4", Rejected("choice")),
        ("0", Rejected("choice")),
        ("s", Rejected("choice")),
        ("bicycle", Rejected("choice")),
        ("", Rejected("choice")),
        ("  ", Rejected("choice")),
        ("x" * 1001, Rejected("choice")),
        ("suv and sedan", Rejected("ambiguous", {"options": "SUV X, Sedan S"})),
    ],
)
def test_single_choice(text: str, expected: ParseResult) -> None:
    assert match_choice(text, CARS) == expected


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("red", COLOURS, Rejected("ambiguous", {"options": "Red car, Red truck"})),
        ("truck", COLOURS, Parsed("rt", "Red truck")),
        ("black & white", COLOURS, Parsed("bw", "Black & White")),
        # An exact label wins over the list position it could also be read as.
        ("2", SEATS, Parsed("2", "2")),
        ("7", SEATS, Parsed("7", "7")),
        ("3", SEATS, Parsed("7", "7")),
    ],
)
def test_single_choice_other_lists(
    text: str, options: tuple[ChoiceOption, ...], expected: ParseResult
) -> None:
    assert match_choice(text, options) == expected


def test_shared_term_is_ambiguous() -> None:
    options = (ChoiceOption("a", "Alpha", ("same",)), ChoiceOption("b", "Beta", ("same",)))
    assert match_choice("same", options) == Rejected("ambiguous", {"options": "Alpha, Beta"})


@pytest.mark.parametrize(
    ("text", "value", "display"),
    [
        ("1, 3", ["x1", "h1"], "SUV X, Hatchback H"),
        ("3,1", ["x1", "h1"], "SUV X, Hatchback H"),
        ("1 3", ["x1", "h1"], "SUV X, Hatchback H"),
        ("1;2", ["x1", "s1"], "SUV X, Sedan S"),
        ("suv and sedan", ["x1", "s1"], "SUV X, Sedan S"),
        ("sedán y todoterreno", ["x1", "s1"], "SUV X, Sedan S"),
        ("berline et hatchback", ["s1", "h1"], "Sedan S, Hatchback H"),
        ("suv und sedan", ["x1", "s1"], "SUV X, Sedan S"),
        ("suv & hatchback", ["x1", "h1"], "SUV X, Hatchback H"),
        ("2 / 3", ["s1", "h1"], "Sedan S, Hatchback H"),
        ("1+2+3", ["x1", "s1", "h1"], "SUV X, Sedan S, Hatchback H"),
        ("options 1 and 3", ["x1", "h1"], "SUV X, Hatchback H"),
        ("suv, suv", ["x1"], "SUV X"),
        ("sedan", ["s1"], "Sedan S"),
        ("1, 3,", ["x1", "h1"], "SUV X, Hatchback H"),
    ],
)
def test_multiple_choice(text: str, value: list[JSONValue], display: str) -> None:
    assert match_choice(text, CARS, multiple=True) == Parsed(value, display)


@pytest.mark.parametrize(
    ("text", "options", "kwargs", "expected"),
    [
        ("black & white", COLOURS, {}, Parsed(["bw"], "Black & White")),
        ("1, 5", CARS, {}, Rejected("choice")),
        ("suv, bicycle", CARS, {}, Rejected("choice")),
        ("", CARS, {}, Rejected("choice")),
        (", ;", CARS, {}, Rejected("choice")),
        ("red, truck", COLOURS, {}, Rejected("ambiguous", {"options": "Red car, Red truck"})),
        ("1", CARS, {"min_choices": 2}, Rejected("too_few", {"min": 2})),
        ("1, 2, 3", CARS, {"max_choices": 2}, Rejected("too_many", {"max": 2})),
        (
            "1, 2",
            CARS,
            {"min_choices": 2, "max_choices": 2},
            Parsed(["x1", "s1"], "SUV X, Sedan S"),
        ),
    ],
)
def test_multiple_choice_checks(
    text: str,
    options: tuple[ChoiceOption, ...],
    kwargs: dict[str, int],
    expected: ParseResult,
) -> None:
    assert match_choice(text, options, multiple=True, **kwargs) == expected


def test_no_options_matches_nothing() -> None:
    assert match_choice("1", ()) == Rejected("choice")
    assert match_choice("suv", (), multiple=True) == Rejected("choice")


@settings(max_examples=200)
@given(st.text() | st.text(min_size=1000, max_size=10_000), st.booleans())
def test_match_choice_never_raises(text: str, multiple: bool) -> None:
    result = match_choice(text, CARS + COLOURS, multiple=multiple, min_choices=1, max_choices=2)
    assert isinstance(result, Parsed | Rejected)


@settings(max_examples=100)
@given(st.text(), st.lists(st.text(), max_size=4))
def test_match_choice_never_raises_on_odd_options(text: str, labels: list[str]) -> None:
    options = [ChoiceOption(str(i), label, (label[::-1],)) for i, label in enumerate(labels)]
    assert isinstance(match_choice(text, options), Parsed | Rejected)
