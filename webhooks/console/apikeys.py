"""API keys for programs on /api/v1: made once, shown once, stored as their hash."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from aiohttp import web

from webhooks.console.tokens import stored_hash

KEY_LENGTH = 40  # letters and digits: about 238 random bits
PREFIX_LENGTH = 8
_ALPHABET = string.ascii_letters + string.digits
# Keys of any earlier or later shape still look like this; anything else is not worth a lookup.
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str  # shown once to whoever made it, never stored
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    # Letters and digits only: a key never starts with "-", so it is safe on a command line.
    key = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))
    return NewApiKey(key, key[:PREFIX_LENGTH], stored_hash(key))


def presented_key(request: web.Request) -> str | None:
    """The key in `Authorization: Bearer <key>` or `X-Api-Key`; None when neither header is
    there, "" when one is there but holds no usable key."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        return value if scheme.lower() == "bearer" and _KEY_SHAPE.fullmatch(value) else ""
    header = request.headers.get("X-Api-Key")
    if header is None:
        return None
    header = header.strip()
    return header if _KEY_SHAPE.fullmatch(header) else ""
