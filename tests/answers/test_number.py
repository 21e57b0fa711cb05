import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.number import parse_number
from bot.answers.result import Parsed, ParseResult, Rejected


@pytest.mark.parametrize(
    ("text", "value", "display"),
    [
        ("10,000", 10_000, "10,000"),
        ("10k", 10_000, "10,000"),
        ("10K", 10_000, "10,000"),
        ("$5k", 5_000, "5,000"),
        ("5 000", 5_000, "5,000"),
        ("5\u00a0000", 5_000, "5,000"),
        ("5\u2009000", 5_000, "5,000"),
        ("5\u202f000", 5_000, "5,000"),
        ("€2.5k", 2_500, "2,500"),
        ("1.5m", 1_500_000, "1,500,000"),
        ("2mm", 2_000_000, "2,000,000"),
        ("3mn", 3_000_000, "3,000,000"),
        ("1.5bn", 1_500_000_000, "1,500,000,000"),
        ("2b", 2_000_000_000, "2,000,000,000"),
        ("5 million", 5_000_000, "5,000,000"),
        ("2,5", 2.5, "2.5"),
        ("0,5", 0.5, "0.5"),
        ("1.234.567", 1_234_567, "1,234,567"),
        ("1,234,567", 1_234_567, "1,234,567"),
        ("1'000'000", 1_000_000, "1,000,000"),
        ("1,234.56", 1234.56, "1,234.56"),
        ("1.234,56", 1234.56, "1,234.56"),
        ("1 234,56", 1234.56, "1,234.56"),
        ("0.125", 0.125, "0.125"),
        ("-3", -3, "-3"),
        ("-$5", -5, "-5"),
        ("about 20", 20, "20"),
        ("20 dollars", 20, "20"),
        ("12.50", 12.5, "12.5"),
        ("3 kids", 3, "3"),
        ("5kg", 5, "5"),
        ("20 or 20", 20, "20"),
        ("0", 0, "0"),
        ("１２", 12, "12"),
    ],
)
def test_parse_number_accepts(text: str, value: float, display: str) -> None:
    result = parse_number(text)
    assert result == Parsed(value, display)
    assert isinstance(result, Parsed)
    assert type(result.value) is type(value)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("", {}, Rejected("number")),
        ("lots", {}, Rejected("number")),
        ("5 or 6", {}, Rejected("number")),
        ("10-20k", {}, Rejected("number")),
        ("1,2,3", {}, Rejected("number")),
        ("1 3", {}, Rejected("number")),
        ("5 mil", {}, Rejected("number")),
        ("3 billones", {}, Rejected("number")),
        ("9" * 40, {}, Rejected("number")),
        ("1" * 1001, {}, Rejected("number")),
        ("2.5", {"integer": True}, Rejected("integer")),
        ("2.5k", {"integer": True}, Parsed(2500, "2,500")),
        ("3", {"minimum": 5}, Rejected("too_small", {"min": 5})),
        ("-1", {"minimum": 0.0}, Rejected("too_small", {"min": 0.0})),
        ("5", {"minimum": 5}, Parsed(5, "5")),
        ("1.5m", {"maximum": 1_000_000}, Rejected("too_large", {"max": 1_000_000})),
        ("1m", {"maximum": 1_000_000}, Parsed(1_000_000, "1,000,000")),
        ("0.1", {"maximum": 0.1}, Parsed(0.1, "0.1")),
    ],
)
def test_parse_number_checks(text: str, kwargs: dict[str, object], expected: ParseResult) -> None:
    assert parse_number(text, **kwargs) == expected  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.text() | st.text(min_size=1000, max_size=10_000))
def test_parse_number_never_raises(text: str) -> None:
    assert isinstance(parse_number(text, integer=True, minimum=-5, maximum=5), Parsed | Rejected)


@settings(max_examples=300)
@given(st.from_regex(r"[-$€ ]{0,2}[\d.,' \u00a0]{1,40}\s?[kmbKMB]?n?", fullmatch=True))
def test_parse_number_never_raises_on_numeric_text(text: str) -> None:
    result = parse_number(text)
    assert isinstance(result, Parsed | Rejected)
    if isinstance(result, Parsed):
        assert isinstance(result.value, int | float)
