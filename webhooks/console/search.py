"""The inbox's search box: what a rep typed, understood as a name, email, phone number or a
lead's reference code. A typed number is normalised with phonenumbers, in each region the
scripts are written for, to the E.164 form leads are stored in. Nothing here is logged."""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from bot.tokens import find_reference
from storage.console_inbox import SearchTerms

MAX_QUERY = 100
_PHONE_LIKE = re.compile(r"\+?[0-9 ()./-]+")
MIN_PARTIAL_DIGITS = 4  # fewer digits would find half the leads


def search_terms(text: str, regions: Iterable[str | None]) -> SearchTerms | None:
    text = " ".join(text.split())[:MAX_QUERY]
    if not text:
        return None
    phones: list[str] = []
    digits = None
    if _PHONE_LIKE.fullmatch(text):
        digits = re.sub(r"[^0-9]", "", text)
        international = text.startswith("+") or digits.startswith("00")
        tried = [None] if international else [*dict.fromkeys(regions), None]
        for region in tried:
            number = _e164(text, region)
            if number is not None and number not in phones:
                phones.append(number)
        if len(digits) < MIN_PARTIAL_DIGITS:
            digits = None
    code = find_reference(text)
    reference = code if code is not None and len(text) <= len(code) + 2 else None
    return SearchTerms(text=text, phones=tuple(phones), digits=digits, reference=reference)


def _e164(text: str, region: str | None) -> str | None:
    candidate = "+" + text.lstrip("0") if region is None and text.startswith("00") else text
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
