"""Keys for answers that have no leadbot name: a slug of the source's label, never a collision."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MAX_KEY_LENGTH = 48
FALLBACK_KEY = "field"  # for a label with no letters or digits at all


@lru_cache(maxsize=4096)  # a form's labels repeat on every lead it sends
def slug(label: str) -> str:
    """Lowercase; every run of characters other than letters, marks and digits becomes one "_";
    trimmed; at most 48 characters. "What is your budget?" -> "what_is_your_budget".

    Letters are any script's, not only ASCII: a form asked in Japanese or Hindi would otherwise
    lose every key to the fallback. Marks are kept because many scripts write vowels with them.
    NFKC first, so full-width and ligature forms slug like their plain letters.
    """
    kept: list[str] = []
    gap = False
    for char in unicodedata.normalize("NFKC", label).lower():
        if unicodedata.category(char)[0] in "LMN":
            if gap and kept:
                kept.append("_")
            kept.append(char)
            gap = False
        else:
            gap = True
    key = "".join(kept)[:MAX_KEY_LENGTH].rstrip("_")
    return key or FALLBACK_KEY


class FieldCollector:
    """Values under unique keys: a key that is taken gets "_2", "_3"... so that two questions
    whose labels slug alike (or a repeated field) keep both answers."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        # Where each key's suffix search resumes, so many repeats stay linear, not quadratic.
        self._next_suffix: dict[str, int] = {}

    def add(self, key: str, value: str) -> str:
        """Store `value` under `key` or its first free variant; return the key used."""
        if key not in self.values:
            self.values[key] = value
            return key
        number = self._next_suffix.get(key, 2)
        while True:
            suffix = f"_{number}"
            candidate = key[: MAX_KEY_LENGTH - len(suffix)] + suffix
            number += 1
            if candidate not in self.values:
                break
        self._next_suffix[key] = number
        self.values[candidate] = value
        return candidate


def split_full_name(fields: dict[str, str]) -> None:
    """Fill first_name/last_name from a full name when the form did not ask for them: the first
    word, then the rest (a guess that suits most Western names; scripts may ask to confirm)."""
    words = fields.get("name", "").split(None, 1)
    if len(words) == 2:
        fields.setdefault("first_name", words[0])
        fields.setdefault("last_name", words[1].strip())
