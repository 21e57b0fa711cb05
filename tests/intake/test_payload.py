"""Reading JSON bodies: the checks skipped for bodies that cannot fail them refuse the same."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.intake.common import IntakeError
from webhooks.intake.payload import MAX_DEPTH, _check_values, load_json


def outcome(body: bytes) -> object:
    try:
        return load_json(body)
    except IntakeError as error:
        return (error.status, error.code, error.message)


def walked(body: bytes) -> object:
    """What load_json answered before it skipped anything: parse, then always walk."""
    text = body.decode("utf-8-sig")
    document = json.loads(text, parse_int=str, parse_float=str)
    try:
        _check_values(document)
    except IntakeError as error:
        return (error.status, error.code, error.message)
    return document


SURROGATE = (
    400,
    "malformed_json",
    "body is not valid JSON: a string holds an unpaired surrogate escape",
)
TOO_DEEP = (400, "invalid_payload", f"the JSON is nested more than {MAX_DEPTH} levels deep")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"name": "Ana \\uD800"}', SURROGATE),  # hex digits in either case
        (b'{"name": "\\udfff"}', SURROGATE),
        (b'{"name": "\\ud83d\\ude00"}', {"name": "\U0001f600"}),  # a pair is one character
        (b'{"name": "Garc\\u00eda"}', {"name": "García"}),
        (b'{"name": "\\\\ud800"}', {"name": "\\ud800"}),  # an escaped backslash, then text
        (b'{"name": "' + b"[" * 100 + b'"}', {"name": "[" * 100}),  # brackets in text
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, walked(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), TOO_DEEP),
        (
            b"\xef\xbb\xbf\xef\xbb\xbf{}",
            (
                400,
                "malformed_json",
                "body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): "
                "line 1 column 1 (char 0)",
            ),
        ),
    ],
)
def test_edges_of_the_skipped_checks(body: bytes, expected: object) -> None:
    assert outcome(body) == expected


# Lone surrogates, and text that looks like an escape: hypothesis draws neither unless told.
PIECES = ["a", "é", "\U0001f600", "\ud800", "\udc00", "\\", "u", "d8", "DF", "["]
tricky_text = st.lists(st.sampled_from(PIECES)).map("".join)
any_text = st.text() | tricky_text
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


@given(json_values, st.booleans())
def test_skipping_the_walk_never_changes_the_answer(value: object, ascii_only: bool) -> None:
    # ensure_ascii writes every non-ASCII character, lone surrogates included, as an escape.
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return  # an encoded surrogate: refused before either of them looks (invalid UTF-8)
    assert outcome(body) == walked(body)


@given(st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 2), st.booleans())
def test_depth_around_the_limit(depth: int, in_an_object: bool) -> None:
    body = "[" * depth + "]" * depth
    if in_an_object:
        body = '{"deep": ' + body + "}"
    assert outcome(body.encode()) == walked(body.encode())
