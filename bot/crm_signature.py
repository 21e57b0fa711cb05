"""The signature on every CRM delivery: `t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

The timestamp is inside what is signed, so a receiver that checks its age refuses a replayed
request; the scheme is Stripe's, which CRM developers already know how to verify."""

from __future__ import annotations

import hashlib
import hmac

EVENT_HEADER = "X-Leadbot-Event"
DELIVERY_HEADER = "X-Leadbot-Delivery"
SEQUENCE_HEADER = "X-Leadbot-Sequence"
SIGNATURE_HEADER = "X-Leadbot-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for `body`, signed at `timestamp` (seconds since the epoch)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
