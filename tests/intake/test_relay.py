"""Relays and custom APIs: API keys, bearer tokens, HMAC, and flat objects mapped by config."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhooks.intake.common import IntakeError, Submission
from webhooks.intake.fieldkeys import FieldCollector, slug
from webhooks.intake.relay import parse_relay, verify_relay

KEYS = ["relay-key-old", "relay-key-abc"]
HMAC_SECRET = "relay-hmac-secret"
MAPPING = {"phone": "Phone Number", "first_name": "First Name"}
BODY = b'{"id": "zap-1", "First Name": "Ana"}'


def sign(body: bytes, secret: str = HMAC_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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


def verify(
    headers: Mapping[str, str], body: bytes = BODY, hmac_secret: str | None = HMAC_SECRET
) -> None:
    verify_relay(body, headers, api_keys=KEYS, hmac_secret=hmac_secret)


def parse(
    document: object, mapping: Mapping[str, str] = MAPPING, id_field: str = "id"
) -> Submission:
    body = json.dumps(document).encode()
    return parse_relay(body, source="api:zapier", mapping=mapping, id_field=id_field)


# --- verify_relay -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "relay-key-abc"},
        {"X-Api-Key": "relay-key-old"},
        {"x-api-key": " relay-key-abc "},
        {"Authorization": "Bearer relay-key-abc"},
        {"authorization": "bearer  relay-key-abc"},
        {"Authorization": "BEARER\trelay-key-abc"},
        {"X-Leadbot-Signature": sign(BODY)},
        {"x-leadbot-signature": sign(BODY).upper().replace("SHA256", "sha256")},
        {"X-Api-Key": "relay-key-abc", "X-Leadbot-Signature": sign(b"something else")},
        {"X-Api-Key": "wrong", "X-Leadbot-Signature": sign(BODY)},
    ],
)
def test_a_known_key_or_a_good_signature_is_accepted(headers: dict[str, str]) -> None:
    verify(headers)


def test_aiohttps_case_insensitive_headers_work() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDictProxy(multidict.CIMultiDict({"X-API-KEY": "relay-key-abc"}))
    verify_relay(BODY, headers, api_keys=KEYS, hmac_secret=None)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"X-Api-Key": ""},
        {"X-Api-Key": "  "},
        {"Authorization": "Basic cmVsYXk6a2V5"},
        {"Authorization": "Bearer"},
        {"X-Leadbot-Signature": ""},
    ],
)
def test_no_credentials_are_refused(headers: dict[str, str]) -> None:
    assert refusal(lambda: verify(headers)) == (
        401,
        "unauthorized",
        "missing X-Api-Key or X-Leadbot-Signature header",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "relay-key"},
        {"X-Api-Key": "relay-key-abcd"},
        {"X-Api-Key": "RELAY-KEY-ABC"},
        {"X-Api-Key": "clé-東京"},
        {"X-Api-Key": "\udcff"},  # what aiohttp makes of an undecodable byte
        {"Authorization": "Bearer relay-key-ab"},
        {"X-Api-Key": "nope", "X-Leadbot-Signature": sign(b"other")},
    ],
)
def test_an_unknown_key_is_refused(headers: dict[str, str]) -> None:
    assert refusal(lambda: verify(headers)) == (401, "unauthorized", "API key not recognised")


@pytest.mark.parametrize(
    "signature",
    [
        sign(BODY, "another-secret"),
        sign(b'{"id": "zap-1", "First Name": "Eve"}'),
        sign(BODY + b"\n"),
    ],
)
def test_a_wrong_signature_is_refused_without_showing_the_right_one(signature: str) -> None:
    status, code, message = refusal(lambda: verify({"X-Leadbot-Signature": signature}))
    assert (status, code, message) == (401, "bad_signature", "signature does not match")
    assert sign(BODY).removeprefix("sha256=") not in message


@pytest.mark.parametrize(
    "signature",
    ["abc", "sha256=abc", "sha1=" + "0" * 64, "0" * 64, "sha256=" + "x" * 64, "sha256:" + "0" * 64],
)
def test_a_malformed_signature_is_refused(signature: str) -> None:
    assert refusal(lambda: verify({"X-Leadbot-Signature": signature})) == (
        401,
        "bad_signature",
        "X-Leadbot-Signature is not in the form sha256=<hex>",
    )


def test_a_signature_is_refused_where_no_hmac_secret_is_set() -> None:
    assert refusal(lambda: verify({"X-Leadbot-Signature": sign(BODY)}, hmac_secret=None)) == (
        401,
        "unauthorized",
        "this source takes X-Api-Key, not X-Leadbot-Signature",
    )


def test_hmac_alone_is_enough_configuration() -> None:
    verify_relay(BODY, {"X-Leadbot-Signature": sign(BODY)}, api_keys=[], hmac_secret=HMAC_SECRET)
    assert refusal(
        lambda: verify_relay(BODY, {"X-Api-Key": "x"}, api_keys=[], hmac_secret=HMAC_SECRET)
    ) == (401, "unauthorized", "API key not recognised")


def test_configuration_that_would_let_anyone_in_is_an_error() -> None:
    with pytest.raises(TypeError, match="not one string"):
        verify_relay(BODY, {"X-Api-Key": "r"}, api_keys="relay-key-abc", hmac_secret=None)
    with pytest.raises(ValueError, match="empty API key"):
        verify_relay(BODY, {"X-Api-Key": ""}, api_keys=["k", ""], hmac_secret=None)
    with pytest.raises(ValueError, match="empty API key or HMAC secret"):
        verify_relay(BODY, {}, api_keys=["k"], hmac_secret="")
    with pytest.raises(ValueError, match="neither"):
        verify_relay(BODY, {}, api_keys=[], hmac_secret=None)


# --- parse_relay --------------------------------------------------------------------------


def test_mapped_keys_become_fields_and_the_rest_keep_a_slug() -> None:
    submission = parse(
        {
            "id": "zap-1",
            "First Name": "Ana",
            "Phone Number": "612 345 678",
            "email": "ana@example.com",
            "Favourite Colour": "blue",
            "Age": 42,
            "Deposit": 99.5,
            "Opt In": True,
            "Comment": None,
            "Notes": " ",
            "campaign_name": "Spring",
            "UTM Source": "facebook",
            "utm_medium": "paid",
        }
    )
    assert submission.source == "api:zapier"
    assert submission.external_id == "zap-1"
    assert submission.fields == {
        "first_name": "Ana",
        "phone": "612 345 678",
        "email": "ana@example.com",
        "favourite_colour": "blue",
        "age": "42",
        "deposit": "99.5",
        "opt_in": "true",
    }
    assert submission.attribution == {
        "campaign_name": "Spring",
        "utm_source": "facebook",
        "utm_medium": "paid",
    }
    assert submission.raw["Phone Number"] == "612 345 678"
    assert submission.submitted_at is None
    assert submission.is_test is False


def test_a_mapping_may_name_attribution_keys() -> None:
    mapping = {"campaign_id": "Campaign", "ad_name": "Creative", "email": "E-mail"}
    submission = parse(
        {"id": 1, "Campaign": 120210000000000001, "Creative": "Video A", "E-mail": "a@b.c"},
        mapping,
    )
    assert submission.attribution == {"campaign_id": "120210000000000001", "ad_name": "Video A"}
    assert submission.fields == {"email": "a@b.c"}


def test_an_unmapped_key_that_collides_keeps_both_answers() -> None:
    submission = parse(
        {"id": 1, "Phone Number": "1", "phone": "2", "Email": "a@x", "email": "b@x"},
        {"phone": "Phone Number"},
    )
    assert submission.fields == {"phone": "1", "phone_2": "2", "email": "a@x", "email_2": "b@x"}


def test_a_repeated_attribution_key_goes_to_fields_rather_than_being_lost() -> None:
    submission = parse({"id": 1, "Campaign Name": "A", "campaign_name": "B"}, {})
    assert submission.attribution == {"campaign_name": "A"}
    assert submission.fields == {"campaign_name": "B"}


def test_a_mapped_key_the_sender_left_out_is_simply_absent() -> None:
    assert parse({"id": 1, "First Name": "Ana"}).fields == {"first_name": "Ana"}


@pytest.mark.parametrize(
    ("document", "mapping", "id_field", "expected"),
    [
        ({"id": "zap-1"}, {}, "id", "zap-1"),
        ({"id": 7126711421177430274}, {}, "id", "7126711421177430274"),
        ({"Lead ID": "L-9", "id": "other"}, {}, "Lead ID", "L-9"),
        ({"Lead ID": "L-9"}, {"external_id": "Lead ID"}, "id", "L-9"),
        ({"Lead ID": "L-9"}, {"lead_ref": "Lead ID"}, "lead_ref", "L-9"),
        ({"external_id": "E-1", "id": "I-1"}, {}, "id", "I-1"),
        ({"external_id": "E-1", "lead_id": "L-1"}, {}, "ref", "E-1"),
        ({"lead_id": "L-1"}, {}, "id", "L-1"),
        ({"id": "", "lead_id": "L-1"}, {}, "id", "L-1"),
    ],
)
def test_the_lead_id_is_found_by_its_field_its_mapping_or_a_usual_name(
    document: dict[str, Any], mapping: dict[str, str], id_field: str, expected: str
) -> None:
    assert parse(document, mapping, id_field).external_id == expected


def test_the_id_is_not_repeated_among_the_fields() -> None:
    assert parse({"Lead ID": "L-9", "x": 1}, {"external_id": "Lead ID"}).fields == {"x": "1"}
    assert parse({"id": "zap-1", "x": 1}).fields == {"x": "1"}


@pytest.mark.parametrize(
    ("document", "id_field", "message"),
    [
        ({"First Name": "Ana"}, "id", "the lead has no 'id'; say which field identifies it"),
        ({"id": None}, "id", "the lead has no 'id'; say which field identifies it"),
        ({"id": "  "}, "id", "the lead has no 'id'; say which field identifies it"),
        ({"ID": "x"}, "Lead ID", "the lead has no 'Lead ID'; say which field identifies it"),
    ],
)
def test_a_lead_without_an_id_is_refused(document: object, id_field: str, message: str) -> None:
    assert refusal(lambda: parse(document, id_field=id_field)) == (
        400,
        "invalid_payload",
        message,
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"id": "1", "address": {"city": "Madrid"}},
            "field 'address' must be text, a number or true/false",
        ),
        ({"id": "1", "Tags": ["a", "b"]}, "field 'Tags' must be text, a number or true/false"),
        ({"id": ["1"]}, "field 'id' must be text, a number or true/false"),
        ({"id": "1", "it's": []}, 'field "it\'s" must be text, a number or true/false'),
    ],
)
def test_nested_values_are_refused(document: object, message: str) -> None:
    assert refusal(lambda: parse(document)) == (400, "invalid_payload", message)


@pytest.mark.parametrize("document", [[{"id": "1"}], [], "lead", 5, None, True])
def test_anything_but_one_object_is_refused(document: object) -> None:
    assert refusal(lambda: parse(document)) == (
        400,
        "invalid_payload",
        "expected one JSON object per request",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            b'{"id": 1 "x": 2}',
            "body is not valid JSON: Expecting ',' delimiter: line 1 column 10 (char 9)",
        ),
        (b'{"id": "\xc3"}', "body is not valid JSON: invalid UTF-8 at byte 8"),
    ],
)
def test_malformed_json_is_refused(body: bytes, message: str) -> None:
    refused = refusal(lambda: parse_relay(body, source="api:x", mapping={}))
    assert refused == (400, "malformed_json", message)


def test_a_byte_order_mark_is_tolerated() -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"id": "1"}).encode()
    assert parse_relay(body, source="api:x", mapping={}).external_id == "1"


# --- keys for unmapped labels -------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("What is your budget?", "what_is_your_budget"),
        ("  First   Name ", "first_name"),
        ("ZIP/Postal code", "zip_postal_code"),
        ("phone_number", "phone_number"),
        ("__private__", "private"),
        ("José's e-mail", "josé_s_e_mail"),
        ("東京の住所", "東京の住所"),
        ("ＦＵＬＬ　ＮＡＭＥ", "full_name"),  # full-width letters and space
        ("नमस्ते", "नमस्ते"),  # vowel signs are marks, and stay
        ("???", "field"),
        ("", "field"),
        ("a" * 47 + " b", "a" * 47),  # cut at 48, then trimmed
        ("x" * 60, "x" * 48),
    ],
)
def test_labels_slug_to_short_lowercase_keys(label: str, key: str) -> None:
    assert slug(label) == key


def test_colliding_keys_are_numbered_within_48_characters() -> None:
    collector = FieldCollector()
    long_key = "k" * 48
    assert [collector.add(key, "v") for key in ["a", "a", "a_2", "a", long_key, long_key]] == [
        "a",
        "a_2",
        "a_2_2",
        "a_3",
        long_key,
        "k" * 46 + "_2",
    ]


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
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
KEYS_SEEN = st.sampled_from(["id", "lead_id", "Phone Number", "First Name", "campaign_id"])
FLAT_OBJECTS = st.dictionaries(KEYS_SEEN | st.text(max_size=60), SCALARS, max_size=8)


def parses_or_refuses(body: bytes) -> None:
    submission = attempt(lambda: parse_relay(body, source="api:zapier", mapping=MAPPING))
    if isinstance(submission, IntakeError):
        assert (submission.status, submission.code) in (
            (400, "malformed_json"),
            (400, "invalid_payload"),
        )
        assert submission.message
        return
    assert submission.external_id.strip()
    for mapping in (submission.fields, submission.attribution):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    assert all(len(key) <= 48 for key in submission.fields if key not in MAPPING)


@SETTINGS
@given(st.binary())
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    parses_or_refuses(body)


@SETTINGS
@given(JSON_VALUES, st.booleans())
def test_any_json_value_parses_or_is_refused(value: object, ascii_only: bool) -> None:
    parses_or_refuses(json.dumps(value, ensure_ascii=ascii_only).encode())


@SETTINGS
@given(FLAT_OBJECTS, st.booleans())
def test_any_flat_object_parses_or_is_refused(value: object, ascii_only: bool) -> None:
    parses_or_refuses(json.dumps(value, ensure_ascii=ascii_only).encode())


HEADER_NAMES = st.sampled_from(
    ["X-Api-Key", "x-api-key", "Authorization", "X-Leadbot-Signature", "Other"]
)
HEADER_VALUES = (
    st.text()
    | st.builds(lambda key: f"Bearer {key}", st.text())
    | st.builds(lambda digest: f"sha256={digest}", st.text(max_size=70))
)


@SETTINGS
@given(
    st.binary(),
    st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3),
    st.none() | st.just(HMAC_SECRET),
)
def test_any_headers_verify_or_are_refused(
    body: bytes, headers: dict[str, str], hmac_secret: str | None
) -> None:
    outcome = attempt(lambda: verify(headers, body, hmac_secret))
    if isinstance(outcome, IntakeError):
        assert outcome.status == 401
        assert outcome.code in ("unauthorized", "bad_signature")
        assert outcome.message
