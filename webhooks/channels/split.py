"""Texts too long for one message, cut where a reader would pause."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_SENTENCE_END = re.compile(r"[.!?…。](?:[\"')\]»”’]*)\s+")
_SPACE = re.compile(r"\s+")


def utf16_length(text: str) -> int:
    """How Telegram (and JavaScript) count characters: an emoji outside the BMP counts two."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Parts of at most `limit` (as `measure` counts), cut at the last paragraph break, else
    sentence end, else space in the part's second half; a word longer than that is cut."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: list[str] = []
    rest = text.strip()
    while measure(rest) > limit:
        window = _longest_prefix(rest, limit, measure)
        cut = _boundary(window)
        head = rest[:cut].rstrip()
        parts.append(head)
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> str:
    """The longest start of `text` that fits: `limit` characters, fewer for wide ones."""
    end = min(len(text), limit)
    while end > 1 and measure(text[:end]) > limit:
        end -= max(1, (measure(text[:end]) - limit) // 2)
    return text[:end]


def _boundary(window: str) -> int:
    """Where to cut inside `window`: never in its first half, which would leave a stub."""
    floor = len(window) // 2
    paragraph = window.rfind("\n\n")
    if paragraph > floor:
        return paragraph
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() > floor]
    if sentence_ends:
        return sentence_ends[-1]
    spaces = [m.start() for m in _SPACE.finditer(window) if m.start() > floor]
    if spaces:
        return spaces[-1]
    return len(window)


def numbered(text: str, options: Sequence[str]) -> str:
    """The text, then one line per choice: "1. Label"."""
    lines = "\n".join(f"{number}. {label}" for number, label in enumerate(options, start=1))
    return "\n\n".join(part for part in (text.strip(), lines) if part)
