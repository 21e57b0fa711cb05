"""Relays (Zapier, LeadsBridge, Make) and custom APIs: one flat JSON object per lead, named the
sender's way (relays publish no stable field names) and mapped to leadbot's names by
configuration."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.fieldkeys import FieldCollector, slug
from webhooks.intake.headers import comparable, header, hex_digest, key_bytes
from webhooks.intake.payload import has_text, invalid, is_nested, load_json, scalar_text

API_KEY = "X-Api-Key"
SIGNATURE = "X-Leadbot-Signature"

ATTRIBUTION_KEYS = frozenset(
    {
        "campaign_id",
        "campaign_name",
        "adgroup_id",
        "adgroup_name",
        "ad_id",
        "ad_name",
        "form_id",
        "form_name",
        "advertiser_id",
        "advertiser_name",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    }
)

# Where a lead's id is looked for when `id_field` does not find it.
_ID_FALLBACKS = ("external_id", "lead_id", "id")


def verify_relay(
    body: bytes,
    headers: Mapping[str, str],
    *,
    api_keys: Sequence[str],
    hmac_secret: str | None,
) -> None:
    """Accept a delivery carrying one of `api_keys` (as X-Api-Key or a Bearer token) or, when
    `hmac_secret` is set, `X-Leadbot-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""
    if isinstance(api_keys, str):
        # A str is a Sequence[str] too: each of its characters would pass as a key.
        raise TypeError("api_keys must be a list of keys, not one string")
    if any(not key for key in api_keys) or hmac_secret == "":
        raise ValueError("an empty API key or HMAC secret would let anyone in")
    if not api_keys and hmac_secret is None:
        raise ValueError("the relay has neither an API key nor an HMAC secret")
    presented_key = (header(headers, API_KEY) or "").strip() or _bearer(
        header(headers, "Authorization")
    )
    signature = (header(headers, SIGNATURE) or "").strip()
    failures: list[IntakeError] = []
    if presented_key:
        if _known_key(presented_key, api_keys):
            return
        failures.append(IntakeError(401, "unauthorized", "API key not recognised"))
    if signature:
        if hmac_secret is None:
            failure: IntakeError | None = IntakeError(
                401, "unauthorized", f"this source takes {API_KEY}, not {SIGNATURE}"
            )
        else:
            failure = _check_signature(body, signature, hmac_secret)
        if failure is None:
            return
        failures.append(failure)
    if not failures:
        raise IntakeError(401, "unauthorized", f"missing {API_KEY} or {SIGNATURE} header")
    raise failures[0]


def _bearer(authorization: str | None) -> str:
    # The scheme is case-insensitive (RFC 9110) and may be followed by any whitespace.
    parts = (authorization or "").split(None, 1)
    return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""


def _known_key(presented: str, api_keys: Sequence[str]) -> bool:
    # Every key is compared, matched or not, so the time taken says nothing about which one.
    given = comparable(presented)
    found = False
    for key in api_keys:
        found = hmac.compare_digest(comparable(key), given) or found
    return found


def _check_signature(body: bytes, value: str, secret: str) -> IntakeError | None:
    scheme, equals, digest = value.partition("=")
    given = hex_digest(digest)
    if not equals or scheme.strip().lower() != "sha256" or given is None:
        return IntakeError(401, "bad_signature", f"{SIGNATURE} is not in the form sha256=<hex>")
    expected = hmac.new(key_bytes(secret), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return IntakeError(401, "bad_signature", "signature does not match")
    return None


def parse_relay(
    body: bytes, *, source: str, mapping: Mapping[str, str], id_field: str = "id"
) -> Submission:
    """The lead in one delivery. `mapping` maps leadbot field names to the sender's keys; keys it
    does not name are kept under their slug; attribution keys go to `attribution`.

    Raises IntakeError, and never any other exception, whatever the bytes.
    """
    document = load_json(body)
    if not isinstance(document, dict):
        raise invalid("expected one JSON object per request")
    for key, value in document.items():
        if is_nested(value):
            raise invalid(f"field {key!r} must be text, a number or true/false")
    id_key, external_id = _find_id(document, mapping, id_field)
    fields = FieldCollector()
    attribution: dict[str, str] = {}
    mapped_keys = set(mapping.values())
    for name, sender_key in mapping.items():
        text = scalar_text(document.get(sender_key))
        if sender_key == id_key or not has_text(text):
            continue
        if name in ATTRIBUTION_KEYS:
            attribution[name] = text
        else:
            fields.add(name, text)
    for sender_key, value in document.items():
        text = scalar_text(value)
        if sender_key in mapped_keys or sender_key == id_key or not has_text(text):
            continue
        key = slug(sender_key)
        if key in ATTRIBUTION_KEYS and key not in attribution:
            attribution[key] = text
        else:
            fields.add(key, text)
    return Submission(
        source=source,
        external_id=external_id,
        fields=fields.values,
        raw=document,
        attribution=attribution,
    )


def _find_id(
    document: dict[str, object], mapping: Mapping[str, str], id_field: str
) -> tuple[str, str]:
    """(the sender's key holding the lead id, the id). `id_field` may be a leadbot name the
    mapping translates or the sender's own key; the usual id names are tried after it."""
    for name in dict.fromkeys((id_field, *_ID_FALLBACKS)):
        for sender_key in dict.fromkeys((mapping.get(name, name), name)):
            text = scalar_text(document.get(sender_key))
            if has_text(text):
                return sender_key, text
    raise invalid(f"the lead has no {id_field!r}; say which field identifies it")
