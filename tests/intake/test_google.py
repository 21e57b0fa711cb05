"""Google Ads lead form webhooks: the key first, then the lead."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.google import parse_google

KEY = "google-key-123"


def delivery(**changes: Any) -> dict[str, Any]:
    """A test lead as Google's "Send test data" button sends one (values invented)."""
    document: dict[str, Any] = {
        "lead_id": "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz",
        "user_column_data": [
            {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "Ana Ruiz"},
            {"column_id": "EMAIL", "column_name": "User Email", "string_value": "ana@example.com"},
            {"column_id": "PHONE_NUMBER", "string_value": "+34612345678"},
            {"column_id": "POSTAL_CODE", "string_value": "28013"},
            {"column_id": "CITY", "string_value": "Madrid"},
            {"column_id": "REGION", "string_value": "Comunidad de Madrid"},
            {"column_id": "COUNTRY", "string_value": "ES"},
            {"column_id": "COMPANY_NAME", "string_value": "Acme"},
            {"column_id": "JOB_TITLE", "string_value": "Buyer"},
            {
                "column_id": "SERVICE",
                "column_name": "Which service do you need?",
                "string_value": "Repairs",
            },
        ],
        "api_version": "1.0",
        "form_id": 40000000000,
        "campaign_id": 20000000000,
        "adgroup_id": 30000000000,
        "creative_id": 9007199254740993,  # 2**53 + 1: a float would make it ...992
        "gcl_id": "TeSter-gclid",
        "lead_submit_time": "2026-01-05 11:00:00+01:00",
        "google_key": KEY,
        "is_test": True,
    }
    document.update(changes)
    return document


def body_of(document: object) -> bytes:
    return json.dumps(document).encode()


def parse(document: object) -> Submission:
    return parse_google(body_of(document), KEY)


T = TypeVar("T")


def refusal(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(IntakeError) as caught:
        call()
    return caught.value.status, caught.value.code, caught.value.message


def attempt(call: Callable[[], T]) -> T | IntakeError:
    """The result, or the IntakeError raised; any other exception fails the test."""
    try:
        return call()
    except IntakeError as error:
        return error


def columns(*rows: dict[str, Any]) -> dict[str, str]:
    return dict(parse(delivery(user_column_data=list(rows))).fields)


def test_a_test_lead_is_parsed_and_marked() -> None:
    submission = parse(delivery())
    assert submission.source == "google"
    assert submission.external_id == (
        "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz"
    )
    assert submission.is_test is True
    assert submission.fields == {
        "name": "Ana Ruiz",
        "first_name": "Ana",  # split from the full name, as for TikTok
        "last_name": "Ruiz",
        "email": "ana@example.com",
        "phone": "+34612345678",
        "zip_code": "28013",
        "city": "Madrid",
        "state": "Comunidad de Madrid",
        "country": "ES",
        "company": "Acme",
        "job_title": "Buyer",
        "which_service_do_you_need": "Repairs",
    }
    assert submission.attribution == {
        "form_id": "40000000000",
        "campaign_id": "20000000000",
        "adgroup_id": "30000000000",
        "ad_id": "9007199254740993",
        "gclid": "TeSter-gclid",
    }
    assert submission.submitted_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_the_key_is_not_kept_with_the_lead() -> None:
    submission = parse(delivery())
    assert "google_key" not in submission.raw
    assert KEY not in json.dumps(submission.raw)
    assert submission.raw["lead_id"] == submission.external_id
    assert submission.raw["creative_id"] == "9007199254740993"


def test_a_real_lead_is_not_a_test() -> None:
    assert parse(delivery(is_test=False)).is_test is False


@pytest.mark.parametrize(
    ("is_test", "expected"),
    [
        (True, True),
        ("true", True),
        (" TRUE ", True),
        (False, False),
        ("false", False),
        (1, False),
        (None, False),
        ("yes", False),
    ],
)
def test_is_test_is_true_only_when_google_says_so(is_test: object, expected: bool) -> None:
    assert parse(delivery(is_test=is_test)).is_test is expected


def test_without_is_test_a_lead_is_real() -> None:
    document = delivery()
    del document["is_test"]
    assert parse(document).is_test is False


# --- the key ------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["nope", "google-key-1234", "GOOGLE-KEY-123", 123, True, ["x"]])
def test_a_wrong_key_is_refused(sent: object) -> None:
    assert refusal(lambda: parse(delivery(google_key=sent))) == (
        401,
        "bad_key",
        "google_key does not match",
    )


@pytest.mark.parametrize("sent", [None, ""])
def test_an_absent_key_is_refused(sent: object) -> None:
    assert refusal(lambda: parse(delivery(google_key=sent))) == (
        401,
        "bad_key",
        "google_key is missing",
    )


def test_a_delivery_without_the_key_field_is_refused() -> None:
    document = delivery()
    del document["google_key"]
    assert refusal(lambda: parse(document)) == (401, "bad_key", "google_key is missing")


@pytest.mark.parametrize("document", [[], "google-key-123", 5, None])
def test_a_body_that_is_not_an_object_has_no_key(document: object) -> None:
    assert refusal(lambda: parse(document)) == (401, "bad_key", "google_key is missing")


def test_the_key_is_checked_before_the_shape_of_the_lead() -> None:
    document = {"google_key": "wrong", "user_column_data": "not a list"}
    assert refusal(lambda: parse(document)) == (401, "bad_key", "google_key does not match")


def test_a_key_with_non_ascii_text_compares_safely() -> None:
    assert refusal(lambda: parse(delivery(google_key="clé-東京"))) == (
        401,
        "bad_key",
        "google_key does not match",
    )
    assert parse_google(body_of(delivery(google_key="clé-東京")), "clé-東京").external_id


def test_an_empty_configured_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="google_key is empty"):
        parse_google(body_of(delivery(google_key="")), "")


# --- the lead -----------------------------------------------------------------------------


@pytest.mark.parametrize("lead_id", [None, "", "  "])
def test_a_lead_without_an_id_is_refused(lead_id: object) -> None:
    assert refusal(lambda: parse(delivery(lead_id=lead_id))) == (
        400,
        "invalid_payload",
        "lead_id is missing",
    )
    document = delivery()
    del document["lead_id"]
    assert refusal(lambda: parse(document)) == (400, "invalid_payload", "lead_id is missing")


def test_a_numeric_lead_id_is_kept_exact() -> None:
    assert parse(delivery(lead_id=7126711421177430274)).external_id == "7126711421177430274"


def test_a_lead_id_that_is_not_a_scalar_is_refused() -> None:
    assert refusal(lambda: parse(delivery(lead_id={"id": 1}))) == (
        400,
        "invalid_payload",
        "lead_id must be text or a number",
    )


def test_first_and_last_name_columns() -> None:
    assert columns(
        {"column_id": "FIRST_NAME", "string_value": "Ana"},
        {"column_id": "LAST_NAME", "string_value": "Ruiz"},
    ) == {"first_name": "Ana", "last_name": "Ruiz"}


def test_work_contacts_stand_in_for_personal_ones_not_asked() -> None:
    assert columns(
        {"column_id": "WORK_EMAIL", "string_value": "ana@acme.example"},
        {"column_id": "WORK_PHONE", "string_value": "+34910000000"},
    ) == {"email": "ana@acme.example", "phone": "+34910000000"}


def test_personal_contacts_win_over_work_ones_in_any_order() -> None:
    assert columns(
        {"column_id": "WORK_EMAIL", "string_value": "ana@acme.example"},
        {"column_id": "EMAIL", "string_value": "ana@example.com"},
        {"column_id": "PHONE_NUMBER", "string_value": "+34612345678"},
        {"column_id": "WORK_PHONE", "string_value": "+34910000000"},
    ) == {
        "email": "ana@example.com",
        "work_email": "ana@acme.example",
        "phone": "+34612345678",
        "work_phone": "+34910000000",
    }


def test_an_empty_personal_answer_leaves_room_for_the_work_one() -> None:
    assert columns(
        {"column_id": "EMAIL", "string_value": ""},
        {"column_id": "WORK_EMAIL", "string_value": "ana@acme.example"},
    ) == {"email": "ana@acme.example"}


def test_other_columns_are_keyed_by_their_name_else_their_id() -> None:
    assert columns(
        {"column_id": "STREET_ADDRESS", "string_value": "Calle Mayor 1"},
        {"column_name": "How soon?", "string_value": "This month"},
        {"column_id": "budget_q", "column_name": "Budget (EUR)", "string_value": 5000},
        {"column_id": "VEHICLE_MODEL", "column_name": "", "string_value": "Y"},
        {"column_id": "NOTHING", "string_value": None},
        {"column_id": "full_name", "string_value": "Ana Ruiz"},
    ) == {
        "street_address": "Calle Mayor 1",
        "how_soon": "This month",
        "budget_eur": "5000",
        "vehicle_model": "Y",
        "name": "Ana Ruiz",
        "first_name": "Ana",
        "last_name": "Ruiz",
    }


def test_repeated_columns_keep_every_answer() -> None:
    assert columns(
        {"column_id": "EMAIL", "string_value": "a@example.com"},
        {"column_id": "EMAIL", "string_value": "b@example.com"},
    ) == {"email": "a@example.com", "email_2": "b@example.com"}


def test_a_lead_without_columns_has_no_fields() -> None:
    document = delivery()
    del document["user_column_data"]
    assert parse(document).fields == {}


def test_only_the_attribution_google_gives_is_kept() -> None:
    document = {"lead_id": "1", "google_key": KEY, "campaign_id": 5, "gcl_id": None}
    assert parse(document).attribution == {"campaign_id": "5"}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-01-05 11:00:00+01:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05 03:00:00-07:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05T10:00:00Z", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05T10:00:00.250+00:00", datetime(2026, 1, 5, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-05 10:00:00", None),  # no zone named: not guessed
        ("2026-01-05", None),
        ("5 January 2026", None),
        ("", None),
        ("0001-01-01 00:00:00+01:00", None),  # before year 1 in UTC
        (None, None),
        (True, None),
        (1767607200, datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),  # unix seconds, should it come
    ],
)
def test_submitted_at_comes_from_lead_submit_time(when: object, expected: object) -> None:
    assert parse(delivery(lead_submit_time=when)).submitted_at == expected


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            b"{not json",
            "body is not valid JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
        (b"\xfe\xff", "body is not valid JSON: invalid UTF-8 at byte 0"),
        (b'{"google_key": Infinity}', "body is not valid JSON: Infinity is not a JSON value"),
    ],
)
def test_malformed_json_is_refused_before_the_key(body: bytes, message: str) -> None:
    assert refusal(lambda: parse_google(body, KEY)) == (400, "malformed_json", message)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user_column_data": {"EMAIL": "x"}}, "user_column_data must be a list"),
        (
            {"user_column_data": [{"column_id": "EMAIL"}, "x"]},
            "user_column_data[1] must be an object",
        ),
        ({"user_column_data": [{"string_value": "x"}]}, "user_column_data[0].column_id is missing"),
        (
            {"user_column_data": [{"column_id": ["EMAIL"], "string_value": "x"}]},
            "user_column_data[0].column_id must be text",
        ),
        (
            {"user_column_data": [{"column_id": "Q1", "column_name": True, "string_value": "x"}]},
            "user_column_data[0].column_name must be text",
        ),
        (
            {"lead_id": "1", "extra": json.loads("[" * 64 + "]" * 64)},
            "the JSON is nested more than 64 levels deep",
        ),
    ],
)
def test_a_lead_of_the_wrong_shape_names_the_path(changes: dict[str, Any], message: str) -> None:
    assert refusal(lambda: parse(delivery(**changes))) == (400, "invalid_payload", message)


# --- never anything but IntakeError -------------------------------------------------------

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
COLUMN_IDS = st.sampled_from(
    ["FULL_NAME", "EMAIL", "WORK_EMAIL", "PHONE_NUMBER", "WORK_PHONE", "CITY", "Q1"]
)
COLUMNS = st.lists(
    st.fixed_dictionaries(
        {"column_id": COLUMN_IDS, "string_value": st.text() | JSON_VALUES},
        optional={"column_name": st.text()},
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "column_id": COLUMN_IDS | JSON_VALUES,
            "column_name": JSON_VALUES,
            "string_value": JSON_VALUES,
        },
    ),
    max_size=5,
)
DELIVERIES = st.fixed_dictionaries(
    {"google_key": st.just(KEY), "lead_id": st.text() | st.integers(), "user_column_data": COLUMNS},
    optional={
        "is_test": JSON_VALUES,
        "lead_submit_time": st.text(max_size=40) | JSON_VALUES,
        "campaign_id": JSON_VALUES,
        "gcl_id": JSON_VALUES,
    },
) | st.fixed_dictionaries(
    {},
    optional={
        "google_key": st.just(KEY) | JSON_VALUES,
        "lead_id": JSON_VALUES,
        "user_column_data": JSON_VALUES,
    },
)


def parses_or_refuses(body: bytes) -> None:
    submission = attempt(lambda: parse_google(body, KEY))
    if isinstance(submission, IntakeError):
        assert (submission.status, submission.code) in (
            (400, "malformed_json"),
            (400, "invalid_payload"),
            (401, "bad_key"),
        )
        assert submission.message
        return
    assert submission.source == "google"
    assert submission.external_id.strip()
    for mapping in (submission.fields, submission.attribution):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    assert "google_key" not in submission.raw
    assert submission.submitted_at is None or submission.submitted_at.tzinfo is not None


@SETTINGS
@given(st.binary())
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    parses_or_refuses(body)


@SETTINGS
@given(JSON_VALUES, st.booleans())
def test_any_json_value_parses_or_is_refused(value: object, ascii_only: bool) -> None:
    parses_or_refuses(json.dumps(value, ensure_ascii=ascii_only).encode())


@SETTINGS
@given(DELIVERIES, st.booleans())
def test_any_delivery_shaped_value_parses_or_is_refused(value: object, ascii_only: bool) -> None:
    parses_or_refuses(json.dumps(value, ensure_ascii=ascii_only).encode())
