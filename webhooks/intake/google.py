"""Google Ads lead form webhooks: one lead per request, authenticated only by the `google_key`
it carries."""

from __future__ import annotations

import hmac

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.fieldkeys import FieldCollector, slug, split_full_name
from webhooks.intake.headers import comparable
from webhooks.intake.payload import answer_text, has_text, invalid, load_json, scalar_text
from webhooks.intake.timestamps import parse_time

KEY_FIELD = "google_key"

# Google's column ids -> leadbot field names.
_COLUMNS = {
    "FULL_NAME": "name",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "POSTAL_CODE": "zip_code",
    "CITY": "city",
    "REGION": "state",
    "COUNTRY": "country",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
}

# Work contacts stand in for personal ones the form did not ask for; when both were asked, the
# work one is kept under its own key rather than dropped.
_STAND_INS = {
    "WORK_EMAIL": ("email", "work_email"),
    "WORK_PHONE": ("phone", "work_phone"),
}

_ATTRIBUTION = (
    ("form_id", "form_id"),
    ("campaign_id", "campaign_id"),
    ("adgroup_id", "adgroup_id"),
    ("creative_id", "ad_id"),
    ("gcl_id", "gclid"),
)


def parse_google(body: bytes, google_key: str) -> Submission:
    """The lead in one delivery, once its `google_key` matches the configured one.

    The key is checked before anything else about the body, so a sender without it learns
    nothing but "not JSON" or "wrong key". Raises IntakeError, and never any other exception,
    whatever the bytes.
    """
    if not google_key:
        raise ValueError("the configured google_key is empty: any delivery without one would pass")
    document = _authenticated(load_json(body), google_key)
    lead_id = document.get("lead_id")
    if lead_id is None or (isinstance(lead_id, str) and not lead_id.strip()):
        raise invalid("lead_id is missing")
    if not isinstance(lead_id, str):
        raise invalid("lead_id must be text or a number")
    is_test = document.get("is_test")
    return Submission(
        source="google",
        external_id=lead_id,
        fields=_fields(document.get("user_column_data")),
        # The key is a secret: it does not belong in what is stored about the lead.
        raw={key: value for key, value in document.items() if key != KEY_FIELD},
        attribution=_attribution(document),
        submitted_at=parse_time(document.get("lead_submit_time")),
        is_test=is_test is True or (isinstance(is_test, str) and is_test.strip().lower() == "true"),
    )


def _authenticated(document: object, google_key: str) -> dict[str, object]:
    """The document, once its key matches; a body that is not an object carries no key."""
    if not isinstance(document, dict) or document.get(KEY_FIELD) in (None, ""):
        raise IntakeError(401, "bad_key", "google_key is missing")
    sent = scalar_text(document[KEY_FIELD]) or ""
    if not hmac.compare_digest(comparable(sent), comparable(google_key)):
        raise IntakeError(401, "bad_key", "google_key does not match")
    return document


def _fields(columns: object) -> dict[str, str]:
    if columns is None:
        return {}
    if not isinstance(columns, list):
        raise invalid("user_column_data must be a list")
    collector = FieldCollector()
    stand_ins: list[tuple[str, str, str]] = []
    for index, column in enumerate(columns):
        path = f"user_column_data[{index}]"
        if not isinstance(column, dict):
            raise invalid(f"{path} must be an object")
        column_id = column.get("column_id")
        column_name = column.get("column_name")
        if column_id is not None and not isinstance(column_id, str):
            raise invalid(f"{path}.column_id must be text")
        if column_name is not None and not isinstance(column_name, str):
            raise invalid(f"{path}.column_name must be text")
        if not column_id and not column_name:
            raise invalid(f"{path}.column_id is missing")
        text = answer_text(column.get("string_value"))
        if not has_text(text):
            continue
        standard = (column_id or "").strip().upper()
        if standard in _STAND_INS:
            stand_in, own_key = _STAND_INS[standard]
            stand_ins.append((stand_in, own_key, text))
        elif standard in _COLUMNS:
            collector.add(_COLUMNS[standard], text)
        else:
            # A custom question: its wording is the readable key; the id is the fallback.
            collector.add(slug(column_name or column_id or ""), text)
    # After the loop, so EMAIL wins over WORK_EMAIL whichever comes first.
    for stand_in, own_key, text in stand_ins:
        collector.add(own_key if stand_in in collector.values else stand_in, text)
    fields = collector.values
    split_full_name(fields)
    return fields


def _attribution(document: dict[str, object]) -> dict[str, str]:
    attribution: dict[str, str] = {}
    for source_key, key in _ATTRIBUTION:
        text = scalar_text(document.get(source_key))
        if has_text(text):
            attribution[key] = text
    return attribution
