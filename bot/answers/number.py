"""Numeric answers as people type them: "10,000", "$5k", "2,5", "1.234.567", "about 20"."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.answers.result import Parsed, ParseResult, Rejected

# Longer replies are chatter, not a number; the cap also bounds the work per message.
_MAX_TEXT = 1000
# More digits than any budget or count; it also keeps float(value) finite for JSON.
_MAX_DIGITS = 30

# Group separators people type: space, no-break space, narrow no-break space, thin space,
# and the apostrophe of Swiss "1'000'000".
_SPACES = " \u00a0\u202f\u2009"
_GROUPERS = _SPACES + "'’"
_NUMBER = re.compile(
    # A minus sign only when it is not joining two numbers, as in the range "10-20".
    r"(?:(?<![\w.,])(?P<sign>[-−])\s?)?"
    r"(?:[$€£¥₹]\s?)?"
    rf"(?P<digits>\d+(?:[.,{_GROUPERS}]\d+)*)"
    # The word after the number, in case it is a multiplier ("k", "million"); "m2" is a unit.
    r"(?:\s?(?P<word>[^\W\d_]+)(?!\d))?",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(rf"([.,{_GROUPERS}])")
_THOUSAND = ("k", "thousand", "thousands", "grand", "mille", "mila", "tausend", "duizend")
_MILLION = ("m", "mm", "mn", "mio", "million", "millions", "millon", "millón", "millones")
_MILLION_MORE = ("milhão", "milhao", "milhões", "milhoes", "milione", "milioni", "miljoen")
_BILLION = ("b", "bn", "billion", "billions", "milliard", "milliards", "miliardo", "miliardi")
_MULTIPLIERS = {
    **dict.fromkeys(_THOUSAND, Decimal(1_000)),
    **dict.fromkeys((*_MILLION, *_MILLION_MORE, "millionen"), Decimal(1_000_000)),
    **dict.fromkeys((*_BILLION, "milliarde", "milliarden", "miljard"), Decimal(1_000_000_000)),
}
# Magnitude words we cannot read safely: "mil" is a thousand in Spanish but a million in English
# slang, and "billón" is 10^12 in Spanish. Guessing would store a wrong budget, so reject.
_UNSURE_MAGNITUDE = re.compile(r"mil$|mill|mil[hij]|bil[lhij]|tril", re.IGNORECASE)


def parse_number(
    text: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> ParseResult:
    """Accept the one number in `text` (words around it are ignored), within the bounds."""
    if len(text) > _MAX_TEXT:
        return Rejected("number")
    values: set[Decimal] = set()
    for match in _NUMBER.finditer(text):
        value = _digits_value(match["digits"])
        if value is None:
            return Rejected("number")
        word = (match["word"] or "").casefold()
        if word in _MULTIPLIERS:
            value *= _MULTIPLIERS[word]
        elif _UNSURE_MAGNITUDE.match(word):
            return Rejected("number")
        values.add(-value if match["sign"] else value)
    # "5 or 6" is not an answer we can store; the same number twice is fine.
    if len(values) != 1:
        return Rejected("number")
    number = values.pop()
    integral = number == number.to_integral_value()
    if integer and not integral:
        return Rejected("integer")
    if minimum is not None and number < minimum:
        return Rejected("too_small", {"min": minimum})
    if maximum is not None and number > maximum:
        return Rejected("too_large", {"max": maximum})
    if integral:
        whole = int(number)
        return Parsed(whole, f"{whole:,}")
    return Parsed(float(number), f"{number.normalize():,f}")


def _digits_value(raw: str) -> Decimal | None:
    """Read digits with thousands and decimal separators in any common convention.

    None when the separators contradict each other, e.g. "1,2,3" or "5 6".
    """
    pieces = _SEPARATOR.split(raw)
    groups, separators = pieces[0::2], pieces[1::2]
    if sum(len(group) for group in groups) > _MAX_DIGITS:
        return None
    if not separators:
        return Decimal(raw)
    last = separators[-1]
    if last in ".," and separators.count(last) == 1:
        thousands = separators[:-1]
        # With other separators before it ("1.234,5") the last one is the decimal point; alone,
        # it is one unless it splits off exactly three digits ("2,5" and "12.50" but "10,000").
        if thousands or not _is_grouping(groups, separators):
            if thousands and not _is_grouping(groups[:-1], thousands):
                return None
            return Decimal("".join(groups[:-1]) + "." + groups[-1])
    if _is_grouping(groups, separators):
        return Decimal("".join(groups))
    return None


def _is_grouping(groups: list[str], separators: list[str]) -> bool:
    """Whether `groups` are thousands groups ("1", "234", "567") split by one kind of separator."""
    if len(set(separators)) != 1:
        return False
    first, rest = groups[0], groups[1:]
    # "0.125" is a fraction: a leading zero never starts a thousands grouping.
    if not 1 <= len(first) <= 3 or first.startswith("0"):
        return False
    return all(len(group) == 3 for group in rest)
