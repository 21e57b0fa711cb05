"""Random tokens for cookies and keys, their stored hashes, and comparing them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# What secrets.token_urlsafe(32) makes; a cookie or field that is not of this shape is
# refused before it reaches a comparison or the database.
URLSAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def stored_hash(token: str) -> str:
    """SHA-256 in hex. A fast hash is right for long random tokens (unlike passwords):
    nobody can guess their way back from it."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison; any text (even non-ASCII) may come in."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
