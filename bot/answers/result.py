"""The outcome of parsing one reply: a typed value, or the reason it was not accepted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True, slots=True)
class Parsed:
    """An accepted answer: `value` is stored (JSON-serialisable), `display` is shown to people."""

    value: JSONValue
    display: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reply that does not answer the question.

    `code` names the problem (a key into the default messages, e.g. "too_short"); `params`
    fills that message's placeholders (e.g. {"min": 3}).
    """

    code: str
    params: Mapping[str, str | int | float] = field(default_factory=dict)


ParseResult: TypeAlias = Parsed | Rejected
