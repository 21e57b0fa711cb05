"""Lead tokens and reference codes: how a chat finds its way back to the lead behind it.

A token is `<lead id>.<expiry>.<signature>` in base64url, signed with HMAC-SHA256 and at most 64
characters of [A-Za-z0-9_-] (Telegram's /start payload limit), so it rides in any deep link; a
guessed or altered token fails the signature and an old one expires. A reference code is six
characters without look-alikes (no 0/O, 1/I/L), for channels where the prospect types it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.errors import BotError

REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # 31 characters
REFERENCE_LENGTH = 6
_REFERENCE = re.compile(rf"\b[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}}\b", re.IGNORECASE)
_SIGNATURE_BYTES = 16  # 128 bits of HMAC: forging is out of reach, and the token stays short


class TokenError(BotError):
    """A token that is malformed, altered or expired; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenSigner:
    secret: bytes
    lifetime: timedelta = timedelta(days=30)

    def sign(self, lead_id: int, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        body = struct.pack(">QI", lead_id, expires)
        return _b64(body + self._mac(body))

    def verify(self, token: str, now: datetime) -> int:
        """The lead id in `token`; raises TokenError when it is not one we signed, or expired."""
        if len(token) > 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise TokenError("malformed")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise TokenError("malformed") from None
        # One token per byte string: base64 ignores stray bits in the last character.
        if len(raw) != 12 + _SIGNATURE_BYTES or _b64(raw) != token:
            raise TokenError("malformed")
        body, signature = raw[:12], raw[12:]
        if not hmac.compare_digest(signature, self._mac(body)):
            raise TokenError("altered")
        lead_id, expires = struct.unpack(">QI", body)
        if now.astimezone(UTC).timestamp() > expires:
            raise TokenError("expired")
        return int(lead_id)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, b"lead-token:" + body, hashlib.sha256).digest()[
            :_SIGNATURE_BYTES
        ]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_reference() -> str:
    """Six characters with both letters and digits, so that no word ("THANKS") is a code."""
    while True:
        # One read of the system's randomness per code; 248 = 8 * 31 keeps the choice unbiased.
        picks = [b for b in secrets.token_bytes(2 * REFERENCE_LENGTH) if b < 248]
        if len(picks) < REFERENCE_LENGTH:
            continue
        code = "".join(REFERENCE_ALPHABET[b % 31] for b in picks[:REFERENCE_LENGTH])
        if _is_code(code):
            return code


def _is_code(candidate: str) -> bool:
    return any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate)


def find_reference(text: str) -> str | None:
    """A reference code typed anywhere in a message ("hi, my code is k7q2mx"), upper-cased."""
    for match in _REFERENCE.finditer(text[:500]):
        if _is_code(match.group(0)):
            return match.group(0).upper()
    return None
