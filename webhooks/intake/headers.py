"""Header and secret helpers shared by the verifiers."""

from __future__ import annotations

import re
from collections.abc import Mapping

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")  # explicit ASCII: str.isdigit accepts other scripts


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The first value of `name`, looked up case-insensitively (HTTP header names are), whether
    `headers` is aiohttp's case-insensitive multidict or a plain dict."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def hex_digest(text: str) -> str | None:
    """A SHA-256 hex digest in lowercase, or None when `text` is not one.

    Checking the form before comparing also guarantees ASCII, which hmac.compare_digest needs
    when given str."""
    text = text.strip()
    return text.lower() if _HEX_DIGEST.fullmatch(text) else None


def key_bytes(secret: str) -> bytes:
    """An HMAC key as bytes. surrogateescape gives back the original bytes of a secret read from
    a non-UTF-8 environment variable, which is what the sender keyed with."""
    return secret.encode("utf-8", "surrogateescape")


def comparable(text: str) -> bytes:
    """Text as bytes for hmac.compare_digest (str there must be ASCII). surrogatepass encodes
    every str, so whatever a sender puts in a header cannot make the comparison raise."""
    return text.encode("utf-8", "surrogatepass")
