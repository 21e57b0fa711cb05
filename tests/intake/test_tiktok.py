"""TikTok lead webhooks: both signature schemes, the documented payload, and refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.tiktok import MAX_LEADS, escape_non_ascii, parse_tiktok, verify_tiktok

SECRET = "tiktok-app-secret"
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

# The payload in lead-sources.md, byte for byte apart from its comments.
DOCUMENTED = b"""{"request_id": 7350000000000000001,
 "object": 1,
 "time": 1735700000,
 "entry": [{
   "id": 7126711421177430274,
   "lead_source": "INSTANT_FORM",
   "page_id": 6873052183063953666, "page_name": "Spring form",
   "advertiser_id": 7000000000000000001, "advertiser_name": "Acme",
   "campaign_id": 1700000000000000001, "campaign_name": "Spring",
   "adgroup_id": 1700000000000000002, "adgroup_name": "Broad 18-34",
   "ad_id": 1700000000000000003, "ad_name": "Video A",
   "create_time": 1735699990,
   "changes": [{"field": "name", "value": "Jane Doe"},
               {"field": "phone_number", "value": "+6591234567"},
               {"field": "email", "value": "jane@example.com"},
               {"field": "What is your budget?", "value": "$1k-5k"}]}]}"""

# Non-ASCII in three widths (2-byte, 3-byte, and beyond the BMP), with spacing that any
# re-serialisation would change.
UNICODE_BODY = (
    '{"object":1,  "entry":[{"id":1,"changes":[{"field":"name","value":"José 東京 😀"}]}]}'
)
# What TikTok signs for it, written out by hand: lowercase hex, the emoji as a surrogate pair.
UNICODE_SIGNED = (
    '{"object":1,  "entry":[{"id":1,"changes":[{"field":"name",'
    '"value":"Jos\\u00e9 \\u6771\\u4eac \\ud83d\\ude00"}]}]}'
)


def digest(data: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def timed(body: bytes, at: datetime, secret: str = SECRET) -> str:
    stamp = str(int(at.timestamp()))
    return f"t={stamp},s={digest(stamp.encode() + b'.' + body, secret)}"


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


def verify(body: bytes, headers: dict[str, str], **options: Any) -> None:
    verify_tiktok(body, headers, SECRET, NOW, **options)


def payload(*entries: object, kind: object = 1) -> bytes:
    return json.dumps({"object": kind, "time": 1735700000, "entry": list(entries)}).encode()


def lead(lead_id: int = 7126711421177430274, **extra: Any) -> dict[str, Any]:
    return {"id": lead_id, "changes": [{"field": "name", "value": "Jane Doe"}], **extra}


def only(submissions: list[Submission]) -> Submission:
    assert len(submissions) == 1
    return submissions[0]


# --- the documented payload ---------------------------------------------------------------


def test_the_documented_payload_keeps_every_id_exact() -> None:
    submission = only(parse_tiktok(DOCUMENTED))
    assert submission.source == "tiktok"
    assert submission.external_id == "7126711421177430274"
    # What a float would have made of it: the reason ids are parsed as text.
    assert str(int(float("7126711421177430274"))) != "7126711421177430274"
    assert submission.fields == {
        "name": "Jane Doe",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+6591234567",
        "email": "jane@example.com",
        "what_is_your_budget": "$1k-5k",
    }
    assert submission.attribution == {
        "advertiser_id": "7000000000000000001",
        "advertiser_name": "Acme",
        "campaign_id": "1700000000000000001",
        "campaign_name": "Spring",
        "adgroup_id": "1700000000000000002",
        "adgroup_name": "Broad 18-34",
        "ad_id": "1700000000000000003",
        "ad_name": "Video A",
        "form_id": "6873052183063953666",
        "form_name": "Spring form",
    }
    assert submission.submitted_at == datetime(2025, 1, 1, 2, 53, 10, tzinfo=UTC)
    assert submission.is_test is False
    assert submission.raw["id"] == "7126711421177430274"
    assert submission.raw["page_id"] == "6873052183063953666"
    assert submission.raw["lead_source"] == "INSTANT_FORM"
    assert submission.raw["changes"][3] == {"field": "What is your budget?", "value": "$1k-5k"}


def test_the_documented_payload_verifies_with_either_header() -> None:
    verify(DOCUMENTED, {"X-Open-Signature": digest(DOCUMENTED)})
    verify(DOCUMENTED, {"TikTok-Signature": timed(DOCUMENTED, NOW)})


# --- X-Open-Signature ---------------------------------------------------------------------


def test_the_hand_written_escaped_form_is_what_json_dumps_writes() -> None:
    assert json.dumps("José 東京 😀") == '"Jos\\u00e9 \\u6771\\u4eac \\ud83d\\ude00"'
    assert escape_non_ascii(UNICODE_BODY.encode()) == UNICODE_SIGNED.encode()


def test_open_signature_over_the_escaped_raw_text_passes() -> None:
    body = UNICODE_BODY.encode()
    verify(body, {"X-Open-Signature": digest(UNICODE_SIGNED.encode())})
    assert only(parse_tiktok(body)).fields["name"] == "José 東京 😀"


def test_open_signature_over_the_unescaped_utf8_bytes_fails() -> None:
    body = UNICODE_BODY.encode()
    assert refusal(lambda: verify(body, {"X-Open-Signature": digest(body)})) == (
        401,
        "bad_signature",
        "signature does not match",
    )


def test_open_signature_over_a_reserialised_object_fails() -> None:
    body = UNICODE_BODY.encode()
    reserialised = json.dumps(json.loads(body)).encode()  # escaped, but spaced differently
    assert reserialised != UNICODE_SIGNED.encode()
    assert refusal(lambda: verify(body, {"X-Open-Signature": digest(reserialised)})) == (
        401,
        "bad_signature",
        "signature does not match",
    )


def test_open_signature_over_uppercase_escapes_fails() -> None:
    body = UNICODE_BODY.encode()
    upper = UNICODE_SIGNED.replace("\\u00e9", "\\u00E9").replace("\\u4eac", "\\u4EAC")
    assert refusal(lambda: verify(body, {"X-Open-Signature": digest(upper.encode())}))[2] == (
        "signature does not match"
    )


def test_already_escaped_text_in_the_body_is_signed_as_it_is() -> None:
    body = b'{"object":1,"entry":[],"note":"caf\\u00e9 caf\xc3\xa9"}'
    verify(
        body,
        {"X-Open-Signature": digest(b'{"object":1,"entry":[],"note":"caf\\u00e9 caf\\u00e9"}')},
    )


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escaping_matches_json_dumps_ensure_ascii(text: str) -> None:
    # DEL is ASCII, so TikTok leaves it alone, but ensure_ascii escapes it; keep it out.
    text = text.replace("\x7f", "")
    unescaped = json.dumps(text, ensure_ascii=False).encode()
    assert escape_non_ascii(unescaped) == json.dumps(text, ensure_ascii=True).encode()


def test_open_signature_in_uppercase_hex_and_with_spaces_is_accepted() -> None:
    verify(DOCUMENTED, {"X-Open-Signature": f"  {digest(DOCUMENTED).upper()} "})


def test_a_body_that_is_not_utf8_never_matches_an_open_signature() -> None:
    body = b'{"name": "Jos\xe9"}'  # Latin-1
    assert refusal(lambda: verify(body, {"X-Open-Signature": digest(body)})) == (
        401,
        "bad_signature",
        "signature does not match",
    )


# --- TikTok-Signature ---------------------------------------------------------------------


def test_timed_signature_within_tolerance_passes() -> None:
    verify(DOCUMENTED, {"TikTok-Signature": timed(DOCUMENTED, NOW - timedelta(minutes=5))})
    verify(DOCUMENTED, {"TikTok-Signature": timed(DOCUMENTED, NOW + timedelta(minutes=5))})
    spaced = timed(DOCUMENTED, NOW).replace(",", " , ")
    verify(DOCUMENTED, {"TikTok-Signature": spaced})


def test_a_stale_timed_signature_is_refused_with_its_age() -> None:
    header = timed(DOCUMENTED, NOW - timedelta(minutes=9, seconds=30))
    assert refusal(lambda: verify(DOCUMENTED, {"TikTok-Signature": header})) == (
        401,
        "bad_signature",
        "signature timestamp is 9 minutes old",
    )


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (timedelta(minutes=-9), "signature timestamp is 9 minutes in the future"),
        (timedelta(seconds=6), "signature timestamp is 6 seconds old"),
        (timedelta(hours=3), "signature timestamp is 3 hours old"),
        (timedelta(days=400), "signature timestamp is 400 days old"),
    ],
)
def test_timestamps_outside_a_tolerance_are_named(offset: timedelta, message: str) -> None:
    header = timed(DOCUMENTED, NOW - offset)
    assert refusal(
        lambda: verify(DOCUMENTED, {"TikTok-Signature": header}, tolerance=timedelta(seconds=5))
    ) == (401, "bad_signature", message)


def test_a_stale_signature_with_the_wrong_secret_says_only_that_it_does_not_match() -> None:
    header = timed(DOCUMENTED, NOW - timedelta(hours=1), secret="another-secret")
    assert refusal(lambda: verify(DOCUMENTED, {"TikTok-Signature": header})) == (
        401,
        "bad_signature",
        "signature does not match",
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "t=1767607200",
        "s=" + "0" * 64,
        "t=abc,s=" + "0" * 64,
        "t=-5,s=" + "0" * 64,
        "t=1767607200,s=zz",
        "t=1767607200,s=" + "0" * 63,
        "t=١٧٦٧٦٠٧٢٠٠,s=" + "0" * 64,  # Arabic-Indic digits: isdigit() says yes
        "t=9999999999999999999999,s=" + "0" * 64,
    ],
)
def test_a_malformed_timed_signature_is_refused(value: str) -> None:
    assert refusal(lambda: verify(DOCUMENTED, {"TikTok-Signature": value})) == (
        401,
        "bad_signature",
        "TikTok-Signature is not in the form t=<unix seconds>,s=<hex SHA-256 digest>",
    )


# --- either header, and what is refused ---------------------------------------------------


def test_header_names_are_case_insensitive_in_a_plain_dict() -> None:
    verify(DOCUMENTED, {"x-open-signature": digest(DOCUMENTED)})
    verify(DOCUMENTED, {"TIKTOK-SIGNATURE": timed(DOCUMENTED, NOW)})


def test_aiohttps_case_insensitive_headers_work() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDictProxy(
        multidict.CIMultiDict({"x-OPEN-signature": digest(DOCUMENTED)})
    )
    verify_tiktok(DOCUMENTED, headers, SECRET, NOW)


def test_either_header_may_carry_the_valid_signature() -> None:
    verify(
        DOCUMENTED,
        {"X-Open-Signature": "0" * 64, "TikTok-Signature": timed(DOCUMENTED, NOW)},
    )
    verify(
        DOCUMENTED,
        {"X-Open-Signature": digest(DOCUMENTED), "TikTok-Signature": "garbage"},
    )


def test_when_both_headers_fail_the_first_is_reported() -> None:
    headers = {"X-Open-Signature": "nonsense", "TikTok-Signature": timed(b"other", NOW)}
    assert refusal(lambda: verify(DOCUMENTED, headers)) == (
        401,
        "bad_signature",
        "X-Open-Signature is not a hex SHA-256 digest",
    )


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/json"}])
def test_missing_headers_are_refused(headers: dict[str, str]) -> None:
    assert refusal(lambda: verify(DOCUMENTED, headers)) == (
        401,
        "bad_signature",
        "missing X-Open-Signature or TikTok-Signature header",
    )


@pytest.mark.parametrize("value", ["", "abc", "sha256=" + "0" * 64, "g" * 64, "0" * 65])
def test_a_malformed_open_signature_is_refused(value: str) -> None:
    assert refusal(lambda: verify(DOCUMENTED, {"X-Open-Signature": value})) == (
        401,
        "bad_signature",
        "X-Open-Signature is not a hex SHA-256 digest",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Open-Signature": digest(DOCUMENTED, "another-secret")},
        {"X-Open-Signature": digest(b"another body")},
        {"TikTok-Signature": timed(DOCUMENTED, NOW, secret="another-secret")},
        {"TikTok-Signature": timed(b"another body", NOW)},
    ],
)
def test_a_wrong_signature_is_refused_without_showing_the_expected_one(
    headers: dict[str, str],
) -> None:
    status, code, message = refusal(lambda: verify(DOCUMENTED, headers))
    assert (status, code, message) == (401, "bad_signature", "signature does not match")
    assert digest(DOCUMENTED) not in message


def test_configuration_mistakes_are_not_the_senders_fault() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        verify_tiktok(DOCUMENTED, {"X-Open-Signature": digest(DOCUMENTED, "")}, "", NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_tiktok(DOCUMENTED, {}, SECRET, NOW.replace(tzinfo=None))


# --- batches and object types -------------------------------------------------------------


def test_a_batch_of_1000_is_accepted_in_order() -> None:
    assert MAX_LEADS == 1000
    body = payload(*(lead(7126711421177430000 + n) for n in range(1000)))
    submissions = parse_tiktok(body)
    assert [s.external_id for s in submissions] == [
        str(7126711421177430000 + n) for n in range(1000)
    ]


def test_a_batch_of_1001_is_refused() -> None:
    body = payload(*(lead(n) for n in range(1001)))
    assert refusal(lambda: parse_tiktok(body)) == (
        413,
        "too_many_leads",
        "1001 leads in one delivery; at most 1000 are accepted",
    )


@pytest.mark.parametrize("kind", [2, 3, 8, "2"])
def test_deliveries_about_other_objects_hold_no_leads(kind: object) -> None:
    assert parse_tiktok(payload(lead(), kind=kind)) == []


def test_an_empty_batch_holds_no_leads() -> None:
    assert parse_tiktok(payload()) == []


# --- fields -------------------------------------------------------------------------------


def changes_of(*pairs: tuple[object, object]) -> dict[str, str]:
    entry = {"id": 1, "changes": [{"field": field, "value": value} for field, value in pairs]}
    return dict(only(parse_tiktok(payload(entry))).fields)


def test_standard_fields_are_renamed_and_custom_questions_slugged() -> None:
    assert changes_of(
        ("first_name", "Ana"),
        ("last_name", "Ruiz"),
        ("phone_number", "+34612345678"),
        ("gender", "female"),
        ("address", "Calle Mayor 1"),
        ("city", "Madrid"),
        ("postal_code", "28013"),
        ("scheduled_time", "2026-01-06 10:00"),
        ("Which model are you interested in?", "Model Y"),
    ) == {
        "first_name": "Ana",
        "last_name": "Ruiz",
        "phone": "+34612345678",
        "gender": "female",
        "address": "Calle Mayor 1",
        "city": "Madrid",
        "zip_code": "28013",
        "scheduled_time": "2026-01-06 10:00",
        "which_model_are_you_interested_in": "Model Y",
    }


def test_zip_code_and_labels_that_slug_alike_keep_every_answer() -> None:
    assert changes_of(
        ("zip_code", "28013"),
        ("Budget?", "low"),
        ("budget", "high"),
        ("Budget!", "any"),
    ) == {"zip_code": "28013", "budget": "low", "budget_2": "high", "budget_3": "any"}


def test_values_become_text_and_empty_answers_are_left_out() -> None:
    assert changes_of(
        ("age", 42),
        ("price", 1.50),
        ("opt_in", True),
        ("newsletter", False),
        ("colours", ["red", "blue", 3]),
        ("odd", {"a": [1, None]}),
        ("nothing", None),
        ("blank", "  "),
    ) == {
        "age": "42",
        "price": "1.5",
        "opt_in": "true",
        "newsletter": "false",
        "colours": "red, blue, 3",
        "odd": '{"a":["1",null]}',
    }


def test_a_number_keeps_the_text_it_was_sent_as() -> None:
    body = b'{"object": 1, "entry": [{"id": 1, "changes": [{"field": "n", "value": 1.10}]}]}'
    assert only(parse_tiktok(body)).fields == {"n": "1.10"}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("name", "Mary Ann Smith")], {"first_name": "Mary", "last_name": "Ann Smith"}),
        ([("name", "  Jane   Doe ")], {"first_name": "Jane", "last_name": "Doe"}),
        ([("name", "Cher")], {}),
        (
            [("name", "Jane Doe"), ("first_name", "Janet")],
            {"first_name": "Janet", "last_name": "Doe"},
        ),
        (
            [("last_name", "Smith"), ("name", "Jane Doe")],
            {"first_name": "Jane", "last_name": "Smith"},
        ),
    ],
)
def test_a_full_name_fills_the_name_parts_not_given(
    pairs: list[tuple[str, str]], expected: dict[str, str]
) -> None:
    fields = changes_of(*pairs)
    assert {k: v for k, v in fields.items() if k in ("first_name", "last_name")} == expected


def test_an_entry_without_changes_is_a_lead_without_answers() -> None:
    assert only(parse_tiktok(payload({"id": 5}))).fields == {}
    assert only(parse_tiktok(payload({"id": 5, "changes": None}))).fields == {}


def test_form_id_and_form_name_are_accepted_under_their_own_names_too() -> None:
    entry = {"id": 1, "changes": [], "form_id": 42, "form_name": "Autumn"}
    assert only(parse_tiktok(payload(entry))).attribution == {
        "form_id": "42",
        "form_name": "Autumn",
    }


@pytest.mark.parametrize(
    ("create_time", "expected"),
    [
        (1735699990, datetime(2025, 1, 1, 2, 53, 10, tzinfo=UTC)),
        (1735699990123, datetime(2025, 1, 1, 2, 53, 10, 123000, tzinfo=UTC)),
        ("2025-01-01T02:53:10Z", datetime(2025, 1, 1, 2, 53, 10, tzinfo=UTC)),
        ("2025-01-01 10:53:10+08:00", datetime(2025, 1, 1, 2, 53, 10, tzinfo=UTC)),
        ("2025-01-01 02:53:10", None),  # no zone named: not guessed
        ("yesterday", None),
        (None, None),
        ([1], None),
    ],
)
def test_submitted_at_comes_from_create_time(create_time: object, expected: object) -> None:
    entry = {"id": 1, "changes": [], "create_time": create_time}
    assert only(parse_tiktok(payload(entry))).submitted_at == expected


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            b'{"object": 1,',
            "body is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 14 (char 13)",
        ),
        (b'{"object": 1}\xff', "body is not valid JSON: invalid UTF-8 at byte 13"),
        (b'{"object": NaN}', "body is not valid JSON: NaN is not a JSON value"),
        (
            b'{"object": 1, "entry": [{"id": "\\udc00"}]}',
            "body is not valid JSON: a string holds an unpaired surrogate escape",
        ),
    ],
)
def test_malformed_json_is_refused_with_where(body: bytes, message: str) -> None:
    assert refusal(lambda: parse_tiktok(body)) == (400, "malformed_json", message)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the body must be a JSON object"),
        ({"entry": []}, "object is missing"),
        ({"object": [1], "entry": []}, "object must be a number"),
        ({"object": 1}, "entry is missing"),
        ({"object": 1, "entry": "nope"}, "entry must be a list"),
        ({"object": 1, "entry": [lead(), lead(), lead(), 7]}, "entry[3] must be an object"),
        (
            {"object": 1, "entry": [lead(), lead(), lead(), {"changes": []}]},
            "entry[3].id is missing",
        ),
        ({"object": 1, "entry": [{"id": None}]}, "entry[0].id is missing"),
        ({"object": 1, "entry": [{"id": {"n": 1}}]}, "entry[0].id must be a number or text"),
        ({"object": 1, "entry": [{"id": True}]}, "entry[0].id must be a number or text"),
        ({"object": 1, "entry": [{"id": " "}]}, "entry[0].id is empty"),
        ({"object": 1, "entry": [{"id": 1, "changes": {}}]}, "entry[0].changes must be a list"),
        (
            {"object": 1, "entry": [{"id": 1, "changes": ["name"]}]},
            "entry[0].changes[0] must be an object",
        ),
        (
            {"object": 1, "entry": [lead(), {"id": 2, "changes": [{"value": "x"}]}]},
            "entry[1].changes[0].field is missing",
        ),
        (
            {"object": 1, "entry": [{"id": 2, "changes": [{"field": ["a"], "value": "x"}]}]},
            "entry[0].changes[0].field must be text",
        ),
        (
            {"object": 1, "entry": [], "deep": json.loads("[" * 64 + "]" * 64)},
            "the JSON is nested more than 64 levels deep",
        ),
    ],
)
def test_a_payload_of_the_wrong_shape_names_the_path(document: object, message: str) -> None:
    body = json.dumps(document).encode()
    assert refusal(lambda: parse_tiktok(body)) == (400, "invalid_payload", message)


def test_json_nested_past_the_parsers_own_limit_is_refused_the_same_way() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert refusal(lambda: parse_tiktok(body)) == (
        400,
        "invalid_payload",
        "the JSON is nested more than 64 levels deep",
    )


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
    | st.integers(min_value=2**53, max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Mostly well-formed, with any JSON value anywhere: most examples reach the per-field code.
CHANGES = st.lists(
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(["name", "email", "phone_number", "Budget?"]) | st.text(),
            "value": JSON_VALUES,
        }
    )
    | st.fixed_dictionaries({}, optional={"field": JSON_VALUES, "value": JSON_VALUES}),
    max_size=4,
)
ENTRIES = st.fixed_dictionaries(
    {"id": st.integers(min_value=0, max_value=2**64), "changes": CHANGES},
    optional={
        "page_id": JSON_VALUES,
        "campaign_name": JSON_VALUES,
        "create_time": st.integers() | st.text(max_size=30) | JSON_VALUES,
    },
) | st.fixed_dictionaries({}, optional={"id": JSON_VALUES, "changes": JSON_VALUES})
DELIVERIES = st.fixed_dictionaries(
    {"object": st.sampled_from([1, "1", 2]), "entry": st.lists(ENTRIES, max_size=4)},
    optional={"time": JSON_VALUES},
) | st.fixed_dictionaries({}, optional={"object": JSON_VALUES, "entry": JSON_VALUES})


def parses_or_refuses(body: bytes) -> None:
    submissions = attempt(lambda: parse_tiktok(body))
    if isinstance(submissions, IntakeError):
        assert (submissions.status, submissions.code) in (
            (400, "malformed_json"),
            (400, "invalid_payload"),
            (413, "too_many_leads"),
        )
        assert submissions.message
        return
    for submission in submissions:
        assert submission.source == "tiktok"
        assert isinstance(submission.external_id, str)
        assert submission.external_id.strip()
        for mapping in (submission.fields, submission.attribution):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
        assert all(len(key) <= 48 for key in submission.fields)
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


HEADER_NAMES = st.sampled_from(
    ["X-Open-Signature", "x-open-signature", "TikTok-Signature", "tiktok-signature", "Other"]
)
HEADER_VALUES = st.text() | st.builds(
    lambda t, s: f"t={t},s={s}", st.text(max_size=15), st.text(max_size=70)
)


@SETTINGS
@given(st.binary(), st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3))
def test_any_headers_verify_or_are_refused(body: bytes, headers: dict[str, str]) -> None:
    outcome = attempt(lambda: verify(body, headers))
    if isinstance(outcome, IntakeError):
        assert (outcome.status, outcome.code) == (401, "bad_signature")
        assert outcome.message
