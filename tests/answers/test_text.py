import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.result import Parsed, ParseResult, Rejected
from bot.answers.text import parse_text

ZIP = re.compile(r"\d{5}")


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("  Ana López \n", {}, Parsed("Ana López", "Ana López")),
        ("", {}, Rejected("empty")),
        (" \t\n ", {}, Rejected("empty")),
        ("ab", {"min_length": 3}, Rejected("too_short", {"min": 3})),
        ("  abc  ", {"min_length": 3}, Parsed("abc", "abc")),
        ("abcdef", {"max_length": 5}, Rejected("too_long", {"max": 5})),
        ("abcde", {"max_length": 5}, Parsed("abcde", "abcde")),
        ("2800", {"pattern": ZIP}, Rejected("pattern")),
        ("280001", {"pattern": ZIP}, Rejected("pattern")),
        (" 28001 ", {"pattern": ZIP}, Parsed("28001", "28001")),
    ],
)
def test_parse_text(text: str, kwargs: dict[str, object], expected: ParseResult) -> None:
    assert parse_text(text, **kwargs) == expected  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.text() | st.text(min_size=1000, max_size=10_000))
def test_parse_text_never_raises(text: str) -> None:
    result = parse_text(text, min_length=2, max_length=500, pattern=ZIP)
    assert isinstance(result, Parsed | Rejected)
