"""TikTok Instant Form leads (TikTok API for Business lead webhooks): check the delivery's
signature, then turn each lead entry into a `Submission`."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.fieldkeys import FieldCollector, slug, split_full_name
from webhooks.intake.headers import header, hex_digest, key_bytes
from webhooks.intake.payload import answer_text, has_text, invalid, load_json, scalar_text
from webhooks.intake.timestamps import parse_time

OPEN_SIGNATURE = "X-Open-Signature"
TIKTOK_SIGNATURE = "TikTok-Signature"
MAX_LEADS = 1000  # TikTok's documented largest batch
LEAD_OBJECT = "1"  # `object` 1 is a lead; 2, 3 and 8 are ad group, ad and fatigue notices

# TikTok's own field keys, looked up by their slug (so "Phone Number" counts as phone_number),
# mapped to leadbot's names.
_STANDARD_FIELDS = {
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone_number": "phone",
    "gender": "gender",
    "address": "address",
    "scheduled_time": "scheduled_time",
    "city": "city",
    "zip_code": "zip_code",
    "postal_code": "zip_code",
}

# Entry key -> attribution key. The form arrives as page_id/page_name; form_id/form_name are
# accepted too, as the reference asks for both variants where naming is unverified.
_ATTRIBUTION = (
    ("advertiser_id", "advertiser_id"),
    ("advertiser_name", "advertiser_name"),
    ("campaign_id", "campaign_id"),
    ("campaign_name", "campaign_name"),
    ("adgroup_id", "adgroup_id"),
    ("adgroup_name", "adgroup_name"),
    ("ad_id", "ad_id"),
    ("ad_name", "ad_name"),
    ("page_id", "form_id"),
    ("form_id", "form_id"),
    ("page_name", "form_name"),
    ("form_name", "form_name"),
)

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def verify_tiktok(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> None:
    """Accept the delivery if either signature header checks out; raise IntakeError otherwise.

    Both schemes are accepted because public sources disagree on which one lead webhooks use:
    `X-Open-Signature` (HMAC of the body with non-ASCII escaped) and `TikTok-Signature`
    (`t=<unix seconds>,s=<HMAC of "<t>.<body>">`, within `tolerance` of `now`).
    """
    if not secret:
        raise ValueError("the TikTok app secret is empty: anyone could sign with it")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    open_signature = header(headers, OPEN_SIGNATURE)
    timed_signature = header(headers, TIKTOK_SIGNATURE)
    if open_signature is None and timed_signature is None:
        raise _bad_signature(f"missing {OPEN_SIGNATURE} or {TIKTOK_SIGNATURE} header")
    key = key_bytes(secret)
    failures: list[IntakeError] = []
    if open_signature is not None:
        failure = _check_open_signature(body, open_signature, key)
        if failure is None:
            return
        failures.append(failure)
    if timed_signature is not None:
        failure = _check_timed_signature(body, timed_signature, key, now, tolerance)
        if failure is None:
            return
        failures.append(failure)
    raise failures[0]


def _bad_signature(message: str) -> IntakeError:
    return IntakeError(401, "bad_signature", message)


def _check_open_signature(body: bytes, value: str, key: bytes) -> IntakeError | None:
    given = hex_digest(value)
    if given is None:
        return _bad_signature(f"{OPEN_SIGNATURE} is not a hex SHA-256 digest")
    signed = escape_non_ascii(body)
    if signed is None:
        # TikTok signs text; a body that is not UTF-8 cannot be what it signed.
        return _bad_signature("signature does not match")
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return _bad_signature("signature does not match")
    return None


def escape_non_ascii(body: bytes) -> bytes | None:
    """The raw body with every non-ASCII character written as a lowercase `\\uXXXX` escape
    (a surrogate pair beyond the BMP), as json.dumps(ensure_ascii=True) writes them: what TikTok
    signs. The raw text is escaped as it is: re-serialising a parsed object would change its
    spacing and key order and so its hash. None when the body is not UTF-8."""
    if body.isascii():
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _NON_ASCII.sub(_escape, text).encode("ascii")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def _check_timed_signature(
    body: bytes, value: str, key: bytes, now: datetime, tolerance: timedelta
) -> IntakeError | None:
    parts: dict[str, str] = {}
    for item in value.split(","):
        name, equals, text = item.partition("=")
        if equals:
            parts.setdefault(name.strip().lower(), text.strip())
    timestamp = parts.get("t", "")
    given = hex_digest(parts.get("s", ""))
    if not _UNIX_SECONDS.fullmatch(timestamp) or given is None:
        return _bad_signature(
            f"{TIKTOK_SIGNATURE} is not in the form t=<unix seconds>,s=<hex SHA-256 digest>"
        )
    # The timestamp as sent, not as re-formatted: that is the text that was signed.
    signed = timestamp.encode("ascii") + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return _bad_signature("signature does not match")
    # Only an authentic delivery learns that it is stale: its sender can fix its clock.
    age = math.floor(now.timestamp()) - int(timestamp)
    if abs(age) > tolerance.total_seconds():
        when = "old" if age > 0 else "in the future"
        return _bad_signature(f"signature timestamp is {_span(abs(age))} {when}")
    return None


def _span(seconds: int) -> str:
    """A duration in the largest unit that keeps it readable, rounded down."""
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"


def parse_tiktok(body: bytes) -> list[Submission]:
    """The leads in one delivery (up to 1,000); [] for a delivery about something else.

    Raises IntakeError for anything that is not a lead delivery of the documented shape, and
    never any other exception, whatever the bytes.
    """
    document = load_json(body)
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object")
    kind = document.get("object")
    if kind is None:
        raise invalid("object is missing")
    if not isinstance(kind, str):
        raise invalid("object must be a number")
    if kind.strip() != LEAD_OBJECT:
        return []  # acknowledged: an ad group, ad or fatigue notice holds no lead to store
    entries = document.get("entry")
    if entries is None:
        raise invalid("entry is missing")
    if not isinstance(entries, list):
        raise invalid("entry must be a list")
    if len(entries) > MAX_LEADS:
        raise IntakeError(
            413,
            "too_many_leads",
            f"{len(entries)} leads in one delivery; at most {MAX_LEADS} are accepted",
        )
    return [_submission(entry, f"entry[{index}]") for index, entry in enumerate(entries)]


def _submission(entry: object, path: str) -> Submission:
    if not isinstance(entry, dict):
        raise invalid(f"{path} must be an object")
    lead_id = entry.get("id")
    if lead_id is None:
        raise invalid(f"{path}.id is missing")
    if not isinstance(lead_id, str):
        raise invalid(f"{path}.id must be a number or text")
    if not lead_id.strip():
        raise invalid(f"{path}.id is empty")
    return Submission(
        source="tiktok",
        external_id=lead_id,
        fields=_fields(entry.get("changes"), f"{path}.changes"),
        raw=entry,
        attribution=_attribution(entry),
        submitted_at=parse_time(entry.get("create_time")),
    )


def _fields(changes: object, path: str) -> dict[str, str]:
    if changes is None:
        return {}  # a lead with no answers is still a lead, and its id is worth keeping
    if not isinstance(changes, list):
        raise invalid(f"{path} must be a list")
    collector = FieldCollector()
    for index, change in enumerate(changes):
        where = f"{path}[{index}]"
        if not isinstance(change, dict):
            raise invalid(f"{where} must be an object")
        label = change.get("field")
        if label is None:
            raise invalid(f"{where}.field is missing")
        if not isinstance(label, str):
            raise invalid(f"{where}.field must be text")
        text = answer_text(change.get("value"))
        if not has_text(text):
            continue
        key = slug(label)
        collector.add(_STANDARD_FIELDS.get(key, key), text)
    fields = collector.values
    split_full_name(fields)
    return fields


def _attribution(entry: dict[str, object]) -> dict[str, str]:
    attribution: dict[str, str] = {}
    for source_key, key in _ATTRIBUTION:
        text = scalar_text(entry.get(source_key))
        if key not in attribution and has_text(text):
            attribution[key] = text
    return attribution
