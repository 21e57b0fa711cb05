"""TikTok-Signature on Direct Message webhooks, checked before anything reads the body.

TikTok signs DM webhooks as it signs lead webhooks: `t=<unix seconds>,s=<hex HMAC-SHA256 of
"<t>.<raw body>">`, keyed with the app secret. The lead intake's verifier already does that
arithmetic (constant-time compare, timestamp tolerance both ways, the timestamp checked only
once the signature is authentic), so it is reused here. This module only insists on that one
header: the lead webhook's other scheme, X-Open-Signature, is not one TikTok uses for messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from webhooks.intake.common import IntakeError
from webhooks.intake.headers import header
from webhooks.intake.tiktok import TIKTOK_SIGNATURE, verify_tiktok

# TikTok retries an unanswered event for up to 72 hours, each retry signed anew; a few minutes
# both ways absorbs clock skew while keeping a captured delivery from being replayed later.
TOLERANCE = timedelta(minutes=5)


class InvalidSignatureError(Exception):
    """The request is not TikTok's: no signature, a wrong one, or a stale one."""


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Return if `body` carries TikTok's signature made with `secret` within `tolerance` of
    `now`; raise InvalidSignatureError (its message names the problem) otherwise."""
    value = header(headers, TIKTOK_SIGNATURE)
    if value is None or not value.strip():
        raise InvalidSignatureError(f"missing {TIKTOK_SIGNATURE} header")
    try:
        verify_tiktok(body, {TIKTOK_SIGNATURE: value}, secret, now, tolerance)
    except IntakeError as error:
        raise InvalidSignatureError(error.message) from None
