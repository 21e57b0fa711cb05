"""Privacy rules: which consent wording a lead agreed to, and when a lead is due for erasure."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

# How a consent was given: ticking the hosted form's box, by the lead source (a TikTok or
# Google form's own consent, a relay's `consent` field), or answering a consent question in chat.
CONSENT_FORM = "form"
CONSENT_SOURCE = "source"
CONSENT_CHAT = "chat"
VERSION_LENGTH = 12


def consent_version(text: str) -> str:
    """The version of a consent wording: the first 12 hex digits of the SHA-256 of the exact
    text the prospect saw (Unicode NFC, outer spaces trimmed).

    Derived rather than declared, so it cannot be forgotten when the wording changes, needs no
    bookkeeping, and is the same on every server and for every record already stored: change
    one word (or a translation) and the version changes; the same words give the same version.
    """
    canonical = unicodedata.normalize("NFC", text.strip())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_LENGTH]


def consent_via(source: str) -> str:
    """How a consent that came with a submission from `source` was given."""
    return CONSENT_FORM if source == "form" else CONSENT_SOURCE


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long leads are kept: None keeps them until someone erases them.

    A disqualified lead (its outcome says `qualified: false`) counts from when the conversation
    reached that outcome; any lead counts from its last change (a lead still being talked to is
    not erased under the business's feet)."""

    disqualified_after: timedelta | None = None
    all_after: timedelta | None = None

    @property
    def active(self) -> bool:
        return self.disqualified_after is not None or self.all_after is not None

    def cutoffs(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(disqualified leads completed before this, any lead last changed before this)."""
        disqualified = now - self.disqualified_after if self.disqualified_after else None
        everything = now - self.all_after if self.all_after else None
        return disqualified, everything


def hashed_address(address: str) -> str:
    """How an erased person's opt-out is kept: the SHA-256 of its address
    (bot.suppression.address_of). It still matches the address if they are ever reached
    again, and it names nobody by itself (a phone number could be guessed back from it by
    trying every number: it is a pseudonym, kept because not writing to them is a duty)."""
    return "sha256:" + hashlib.sha256(address.encode("utf-8")).hexdigest()
