"""Reading a JSON body the same way for every source, and turning its values into text.

Numbers are kept as their literal text (`parse_int=str`, `parse_float=str`): TikTok's ids exceed
2**53, so a float would round them, and an int would need converting back anyway (and Python
refuses to parse integers past 4,300 digits). The cost is that a number and a string holding the
same digits look alike afterwards; every field ends up as text, so nothing depends on telling
them apart.
"""

from __future__ import annotations

import json
import re
from typing import TypeGuard

from webhooks.intake.common import IntakeError

# Deep enough for any real payload; shallow enough that walking or re-serialising a value can
# never run into Python's recursion limit.
MAX_DEPTH = 64

# A `\ud800` escape with no partner decodes to a lone surrogate, which cannot be encoded as UTF-8:
# accepting it would only move the failure to whoever stores or sends the text next.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how one gets into a JSON text


class _NotJsonError(ValueError):
    """Raised from a json.loads hook; caught below and never seen by callers."""


def _refuse_constant(name: str) -> object:
    # json.loads accepts NaN and Infinity, which are JavaScript, not JSON.
    raise _NotJsonError(f"{name} is not a JSON value")


# Built once: json.loads with options builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_refuse_constant)


def malformed(detail: str) -> IntakeError:
    return IntakeError(400, "malformed_json", f"body is not valid JSON: {detail}")


def invalid(message: str) -> IntakeError:
    return IntakeError(400, "invalid_payload", message)


def _too_deep() -> IntakeError:
    return invalid(f"the JSON is nested more than {MAX_DEPTH} levels deep")


def load_json(body: bytes) -> object:
    """The parsed body: dicts, lists, str (numbers as their literal text), bool and None."""
    try:
        # utf-8-sig: RFC 8259 lets a parser ignore a byte order mark, and some senders add one.
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise malformed(f"invalid UTF-8 at byte {exc.start}") from exc
    try:
        if text.startswith("\ufeff"):  # a second mark: json.loads refuses it so, and so do we
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise malformed(str(exc)) from exc
    except _NotJsonError as exc:
        raise malformed(str(exc)) from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    # The walk costs a third of a flat lead's parsing, and most bodies cannot fail it: a
    # surrogate only arrives as an escape (the UTF-8 decoder refuses encoded ones), and nesting
    # needs an opening bracket per level.
    if _SURROGATE_ESCAPE.search(text) or text.count("{") + text.count("[") > MAX_DEPTH:
        _check_values(document)
    return document


def _check_values(document: object) -> None:
    # An explicit stack rather than recursion, for the same reason as MAX_DEPTH.
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise malformed("a string holds an unpaired surrogate escape")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def scalar_text(value: object) -> str | None:
    """The text of a JSON scalar (numbers are already their literal text, booleans become
    "true"/"false"); None for null, lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return None


def is_nested(value: object) -> bool:
    return isinstance(value, dict | list)


def answer_text(value: object) -> str | None:
    """An answer as text, for sources whose answer shapes are not fully documented: a list of
    scalars (several choices) is joined with ", ", anything else nested is kept as compact JSON,
    so an unexpected shape costs one field's tidiness rather than a whole delivery."""
    text = scalar_text(value)
    if text is not None or value is None:
        return text
    if isinstance(value, list) and all(isinstance(item, str | bool) for item in value):
        return ", ".join(scalar_text(item) or "" for item in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def has_text(text: str | None) -> TypeGuard[str]:
    """Whether an answer says anything: null and blank answers are left out of `fields`, so a
    script still asks for what the form did not really collect."""
    return text is not None and text.strip() != ""
