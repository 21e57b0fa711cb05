"""Reading TikTok DM webhook events: what each means, and a clear refusal for anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.channels.tiktok_dm_inbound import (
    Arrival,
    Ignored,
    Incoming,
    MalformedEventError,
    parse_event,
)

BUSINESS = "-000bUsInEsS0pEnId"
CONVERSATION = "Mi4w+Y29udi/Lj0=="


def content(**fields: Any) -> dict[str, Any]:
    return {
        "conversation_id": CONVERSATION,
        "from": "ana.garcia_92",
        "from_user": {"id": "-000uSeR", "role": "personal_account"},
        "to": "leadbot_motors",
        "to_user": {"id": BUSINESS, "role": "business_account"},
        "timestamp": 1767607200000,
        **fields,
    }


def event(name: str, body: dict[str, Any] | None, **envelope: Any) -> bytes:
    document: dict[str, Any] = {
        "client_key": "7350000000000000001",
        "event": name,
        "create_time": 1767607200,
        "user_openid": BUSINESS,
        **envelope,
    }
    if body is not None:
        document["content"] = json.dumps(body)
    return json.dumps(document).encode()


def text_message(
    text: str = "hello", envelope: dict[str, Any] | None = None, **fields: Any
) -> bytes:
    return event(
        "im_receive_msg",
        content(message_id="v2.0001", type="text", text={"body": text}, **fields),
        **(envelope or {}),
    )


def test_a_text_message() -> None:
    parsed = parse_event(text_message("I'd like a test drive"), BUSINESS)
    assert parsed == Incoming(
        CONVERSATION, "v2.0001", "I'd like a test drive", username="ana.garcia_92"
    )
    assert isinstance(parsed, Incoming)
    assert parsed.profile == {"tiktok_username": "ana.garcia_92"}


def test_a_button_tap_names_the_card_and_the_button() -> None:
    source = {"reply_source_msg_id": "v2.card-7", "reply_source_unique_id": "suv_x"}
    parsed = parse_event(text_message("SUV X", reply_source_payload=source), BUSINESS)
    assert isinstance(parsed, Incoming)
    assert (parsed.text, parsed.reply_to, parsed.button) == ("SUV X", "v2.card-7", "suv_x")


def test_a_reply_source_that_is_not_one_of_ours_reads_as_typed_text() -> None:
    source = {"reply_source_msg_id": "", "reply_source_unique_id": "x"}
    parsed = parse_event(text_message("Yes", reply_source_payload=source), BUSINESS)
    assert isinstance(parsed, Incoming)
    assert (parsed.reply_to, parsed.button, parsed.text) == (None, None, "Yes")


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("image", {"image": {"media_id": "m1"}}),
        ("sticker", {"sticker": {"url": "https://p16.tiktokcdn.com/s.png"}}),
        ("share_post", {"share_post": {"embed_url": "https://www.tiktok.com/embed/1"}}),
        ("video", {"video": {"media_id": "m2"}}),
        ("something_new", {}),
    ],
)
def test_media_is_a_message_without_text(kind: str, fields: dict[str, Any]) -> None:
    parsed = parse_event(
        event("im_receive_msg", content(message_id="v2.9", type=kind, **fields)), BUSINESS
    )
    assert parsed == Incoming(CONVERSATION, "v2.9", "", True, username="ana.garcia_92")


def test_ids_written_as_numbers_are_kept_to_the_digit() -> None:
    raw = json.dumps(content(type="text", text={"body": "hi"})).replace(
        '"type"', '"message_id": 7247303576418566913, "type"'
    )
    body = json.dumps({"event": "im_receive_msg", "user_openid": BUSINESS, "content": raw})
    parsed = parse_event(body.encode(), BUSINESS)
    assert isinstance(parsed, Incoming)
    assert parsed.message_id == "7247303576418566913"


def test_a_referral_from_a_link_carries_its_ref() -> None:
    referral = {
        "source": "short_link",
        "short_link": {"ref": "AbC-12_x=", "prefilled_message": "Hi!"},
    }
    parsed = parse_event(event("im_referral_msg", content(referral=referral)), BUSINESS)
    assert isinstance(parsed, Arrival)
    assert (parsed.conversation_id, parsed.ref) == (CONVERSATION, "AbC-12_x=")
    assert parsed.receipt.startswith("referral:")
    # The same delivery, again, is recognised by its receipt; another one is not.
    again = parse_event(event("im_referral_msg", content(referral=referral)), BUSINESS)
    later = parse_event(
        event("im_referral_msg", content(referral=referral, timestamp=1767607299000)), BUSINESS
    )
    assert isinstance(again, Arrival)
    assert isinstance(later, Arrival)
    assert again.receipt == parsed.receipt != later.receipt


@pytest.mark.parametrize(
    "referral",
    [
        {"source": "ad", "ad": {"ad_id": "1800000000000000001", "ad_name": "Spring"}},
        {"source": "short_link", "short_link": {"ref": "not a ref: spaces & symbols"}},
        {"source": "short_link", "short_link": {"ref": "x" * 129}},
        {"source": "short_link", "short_link": {"prefilled_message": "no ref"}},
    ],
)
def test_a_referral_without_a_usable_ref_carries_none(referral: dict[str, Any]) -> None:
    parsed = parse_event(event("im_referral_msg", content(referral=referral)), BUSINESS)
    assert isinstance(parsed, Arrival)
    assert parsed.ref == ""


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (event("tiktok.ping", None), "tiktok.ping"),
        (event("im_send_msg", content(message_id="v2.1", type="text")), "im_send_msg"),
        (event("im_mark_read_msg", content(read={"last_read_timestamp": 1})), "im_mark_read"),
        (event("im_receive_msg_eu", {"to": "x", "timestamp": 1}), "im_receive_msg_eu"),
        (event("im_auto_message_audit_update", {}), "im_auto_message"),
        (text_message(envelope={"user_openid": "-000AnOtHeR"}), "another business account"),
        (
            event("im_receive_msg", content(message_id="v2.2", type="reaction", reaction=[])),
            "reaction",
        ),
        (
            event(
                "im_receive_msg",
                content(
                    message_id="v2.3",
                    type="text",
                    text={"body": "typed in the TikTok app"},
                    from_user={"id": BUSINESS, "role": "business_account"},
                ),
            ),
            "own message",
        ),
    ],
)
def test_events_that_need_no_answer_are_ignored(body: bytes, reason: str) -> None:
    parsed = parse_event(body, BUSINESS)
    assert isinstance(parsed, Ignored)
    assert reason in parsed.reason


def test_without_a_configured_business_the_envelopes_account_is_ours() -> None:
    own = event(
        "im_receive_msg",
        content(message_id="v2.4", type="text", text={"body": "hi"}, from_user={"id": BUSINESS}),
    )
    assert isinstance(parse_event(own, None), Ignored)
    assert isinstance(
        parse_event(text_message(envelope={"user_openid": "-0AnOtHeR"}), None), Incoming
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "invalid UTF-8"),
        (b"[]", "the body must be an object"),
        (b'{"event": ["im_receive_msg"]}', "event must be text"),
        (b'{"event": "im receive"}', "not an event name"),
        (b'{"event": "im_receive_msg"}', "user_openid is missing"),
        (text_message(envelope={"user_openid": "has space"}), "user_openid is not an id"),
        (text_message(envelope={"create_time": "yesterday"}), "create_time must be a whole number"),
        (event("im_receive_msg", None), "content is missing"),
        (
            json.dumps(
                {"event": "im_receive_msg", "user_openid": BUSINESS, "content": "{"}
            ).encode(),
            "content: body is not valid JSON",
        ),
        (
            json.dumps(
                {"event": "im_receive_msg", "user_openid": BUSINESS, "content": "[1]"}
            ).encode(),
            "content must be an object",
        ),
        (event("im_receive_msg", content(conversation_id="")), "conversation_id is not an id"),
        (event("im_receive_msg", content(conversation_id=None)), "conversation_id is missing"),
        (event("im_receive_msg", content(from_user=None)), "from_user is missing"),
        (event("im_receive_msg", content(from_user={"id": ["x"]})), "from_user.id must be text"),
        (event("im_receive_msg", content(type="text")), "message_id is missing"),
        (event("im_receive_msg", content(message_id="v2.1")), "type is missing"),
        (event("im_receive_msg", content(message_id="v2.1", type="text")), "text is missing"),
        (
            event("im_receive_msg", content(message_id="v2.1", type="text", text={"body": True})),
            "text.body must be text",
        ),
        (
            event(
                "im_receive_msg",
                content(
                    message_id="v2.1",
                    type="text",
                    text={"body": "x"},
                    reply_source_payload="v2.card",
                ),
            ),
            "reply_source_payload must be an object",
        ),
        (event("im_referral_msg", content()), "referral is missing"),
        (
            event("im_referral_msg", content(referral={"short_link": []})),
            "short_link must be an object",
        ),
    ],
)
def test_what_is_not_an_event_is_refused_with_the_field_named(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedEventError, match=problem):
        parse_event(body, BUSINESS)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "conversation_id",
        "message_id",
        "type",
        "text",
        "from_user",
        "referral",
        "from",
        "reply_source_payload",
    ]
)


@given(st.binary(max_size=200))
def test_no_bytes_make_it_raise_anything_else(body: bytes) -> None:
    with contextlib.suppress(MalformedEventError):
        parse_event(body, BUSINESS)


@given(
    st.sampled_from(["im_receive_msg", "im_referral_msg", "im_send_msg"]),
    st.dictionaries(KEYS, JSON, max_size=8),
)
def test_no_content_makes_it_raise_anything_else(name: str, fields: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedEventError):
        parse_event(event(name, content(**fields)), BUSINESS)
