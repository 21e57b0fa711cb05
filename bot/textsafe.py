"""Text as every database stores it: no NUL characters (PostgreSQL refuses them) and no lone
surrogates (no encoding can write them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def storable_value(value: Any) -> Any:
    """The same for every string inside JSON-like data (keys included)."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return {storable(str(key)): storable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(item) for item in value]
    return value
