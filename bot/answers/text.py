"""Free-text answers: trimmed, optionally bounded in length and shaped by a pattern."""

from __future__ import annotations

import re

from bot.answers.result import Parsed, ParseResult, Rejected


def parse_text(
    text: str,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: re.Pattern[str] | None = None,
) -> ParseResult:
    """Accept `text` stripped of surrounding whitespace, if it fits the length and pattern."""
    stripped = text.strip()
    if not stripped:
        return Rejected("empty")
    if min_length is not None and len(stripped) < min_length:
        return Rejected("too_short", {"min": min_length})
    if max_length is not None and len(stripped) > max_length:
        return Rejected("too_long", {"max": max_length})
    if pattern is not None and pattern.fullmatch(stripped) is None:
        return Rejected("pattern")
    return Parsed(stripped, stripped)
