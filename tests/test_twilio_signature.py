"""X-Twilio-Signature on its own: Twilio's official test vectors, and the inputs that must fail;
then the webhook parameters read into messages and delivery reports."""

from __future__ import annotations

import hashlib
import json

import pytest
from multidict import MultiDict

from webhooks.channels.twilio_inbound import (
    IncomingMessage,
    MalformedWebhookError,
    StatusReport,
    Unanswerable,
    parse_message,
    parse_status,
    read_params,
)
from webhooks.channels.twilio_signature import SignedRequest, is_signed, signed_url

# twilio-python's tests/unit/test_request_validator.py (see ../shared/reference/twilio.md).
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
FORM_BODY = (
    b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234"
    b"&From=%2B14158675309&To=%2B18005551212"
)
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SIGNATURE_WITH_PORT = "kvajT1Ptam85bY51eRf/AJRuM3w="
JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="
FORM = "application/x-www-form-urlencoded"


def test_the_official_form_vector() -> None:
    assert is_signed(TOKEN, URL, FORM_BODY, FORM, SIGNATURE)


def test_the_form_vector_signed_with_the_default_port() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert is_signed(TOKEN, URL, FORM_BODY, FORM, SIGNATURE_WITH_PORT)
    assert is_signed(TOKEN, with_port, FORM_BODY, FORM, SIGNATURE)  # either way round


def test_the_official_json_vector() -> None:
    assert hashlib.sha256(JSON_BODY).hexdigest() == JSON_HASH
    url = f"{URL}&bodySHA256={JSON_HASH}"
    assert is_signed(TOKEN, url, JSON_BODY, "application/json", JSON_SIGNATURE)


def test_the_parameter_order_in_the_body_does_not_matter() -> None:
    reordered = b"&".join(reversed(FORM_BODY.split(b"&")))
    assert is_signed(TOKEN, URL, reordered, FORM, SIGNATURE)


@pytest.mark.parametrize(
    ("url", "body", "content_type", "signature"),
    [
        (URL, FORM_BODY, FORM, ""),
        (URL, FORM_BODY, FORM, SIGNATURE.lower()),
        (URL, FORM_BODY, FORM, SIGNATURE[:-1]),
        (URL, FORM_BODY + b"&Digits=1", FORM, SIGNATURE),  # a parameter added
        (URL, FORM_BODY.replace(b"1234", b"1235"), FORM, SIGNATURE),  # a value changed
        (URL.replace("foo=1", "foo=2"), FORM_BODY, FORM, SIGNATURE),  # the query changed
        (URL.replace("https", "http"), FORM_BODY, FORM, SIGNATURE),  # another URL
        (URL, FORM_BODY + b"&x=%ff", FORM, SIGNATURE),  # not UTF-8 once decoded
        (URL, b"\xff\xfe", FORM, SIGNATURE),  # not text at all
        # JSON: a changed body, a body without its hash in the URL, a hash of another body.
        (f"{URL}&bodySHA256={JSON_HASH}", JSON_BODY + b" ", "application/json", JSON_SIGNATURE),
        (URL, JSON_BODY, "application/json", SIGNATURE),
        (f"{URL}&bodySHA256={'0' * 64}", JSON_BODY, "application/json", JSON_SIGNATURE),
        (f"{URL}&bodySHA256={JSON_HASH}", b"\xff", "application/json", JSON_SIGNATURE),
    ],
)
def test_anything_else_fails(url: str, body: bytes, content_type: str, signature: str) -> None:
    assert not is_signed(TOKEN, url, body, content_type, signature)


def test_another_token_fails() -> None:
    assert not is_signed("54321", URL, FORM_BODY, FORM, SIGNATURE)


def test_the_signed_url_is_the_public_url_and_the_raw_path() -> None:
    raw = "/webhooks/twilio?a=%2F&b=c+d"
    assert signed_url("https://leads.example.com/", raw) == f"https://leads.example.com{raw}"
    assert signed_url("https://x.example/bot", "/webhooks/twilio") == (
        "https://x.example/bot/webhooks/twilio"
    )


# -- reading the parameters ---------------------------------------------------------------


def sms(**fields: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "a" * 32,
        "From": "+14155550100",
        "To": "+15005550006",
        "Body": "Hi! My reference is K7M2QX",
        "NumMedia": "0",
        **fields,
    }


def test_an_sms() -> None:
    assert parse_message(sms()) == IncomingMessage(
        sid="SM" + "a" * 32, channel="sms", sender="+14155550100", text="Hi! My reference is K7M2QX"
    )


def test_a_whatsapp_quick_reply() -> None:
    message = parse_message(
        sms(
            From="whatsapp:+447911123456",
            To="whatsapp:+14155238886",
            Body="SUV X",
            ButtonText="SUV X",
            ButtonPayload="suv_x",
            OriginalRepliedMessageSid="MM" + "b" * 32,
            ProfileName="  Ana   María López ",
        )
    )
    assert isinstance(message, IncomingMessage)
    assert (message.channel, message.sender, message.text) == ("whatsapp", "+447911123456", "SUV X")
    assert (message.button_payload, message.button_text) == ("suv_x", "SUV X")
    assert message.replied_to == "MM" + "b" * 32
    assert message.profile == {"name": "Ana María López", "first_name": "Ana"}


def test_a_profile_name_without_letters_is_not_a_first_name() -> None:
    message = parse_message(
        sms(From="whatsapp:+447911123456", To="whatsapp:+1415", ProfileName="🌸")
    )
    assert isinstance(message, IncomingMessage)
    assert message.profile == {"name": "🌸"}


def test_sms_has_no_buttons_even_if_a_field_says_so() -> None:
    message = parse_message(sms(ButtonPayload="suv_x", ProfileName="Ana"))
    assert isinstance(message, IncomingMessage)
    assert (message.button_payload, message.profile) == (None, {})


def test_media_is_counted() -> None:
    message = parse_message(
        sms(Body="", NumMedia="2", MediaUrl0="https://x", MediaUrl1="https://y")
    )
    assert isinstance(message, IncomingMessage)
    assert (message.text, message.media) == ("", 2)


@pytest.mark.parametrize(
    "sender", ["12345", "Twilio", "messenger:1234567890", "rcs:+14155550100", "+0123456789"]
)
def test_senders_that_are_not_phone_numbers_are_not_answered(sender: str) -> None:
    assert isinstance(parse_message(sms(From=sender, To="x")), Unanswerable)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageSid": "SM123"}, "MessageSid"),
        ({"From": None}, "From is missing"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
        ({"To": "whatsapp:+15005550006"}, "different channels"),
    ],
)
def test_malformed_messages_say_what_is_wrong(fields: dict[str, str | None], says: str) -> None:
    params = {key: value for key, value in {**sms(), **fields}.items() if value is not None}
    with pytest.raises(MalformedWebhookError, match=says):
        parse_message(params)


def test_json_parameters_are_read_and_checked() -> None:
    body = json.dumps({**sms(), "NumMedia": 1}).encode()
    params = read_params(SignedRequest(body, "application/json"))
    message = parse_message(params)
    assert isinstance(message, IncomingMessage)
    assert message.media == 1
    with pytest.raises(MalformedWebhookError, match="Body must be text"):
        parse_message({**sms(), "Body": ["hi"]})
    with pytest.raises(MalformedWebhookError, match="JSON object"):
        read_params(SignedRequest(b"[1]", "application/json"))
    with pytest.raises(MalformedWebhookError, match="not valid JSON"):
        read_params(SignedRequest(b"{", "application/json"))


def test_a_repeated_form_parameter_reads_as_its_first() -> None:
    params = read_params(SignedRequest(b"Body=one&Body=two&From=%2B1", FORM))
    assert isinstance(params, MultiDict)
    assert params["Body"] == "one"


def test_status_reports() -> None:
    sid = "SM" + "c" * 32
    delivered = {"MessageSid": sid, "MessageStatus": "delivered", "To": "whatsapp:+447911123456"}
    assert parse_status(delivered) == StatusReport(sid, "whatsapp", "delivered", None)
    failed = {"MessageSid": sid, "MessageStatus": "undelivered", "To": "+1", "ErrorCode": "30007"}
    assert parse_status(failed) == StatusReport(
        sid, "sms", "undelivered", "30007 filtered by the carrier"
    )
    odd = {**failed, "ErrorCode": "12345", "ErrorMessage": "Some\nnew   error"}
    assert parse_status(odd) == StatusReport(sid, "sms", "undelivered", "12345 Some new error")
    assert parse_status({**failed, "ErrorCode": "0"}) == StatusReport(
        sid, "sms", "undelivered", None
    )
    assert parse_status({"MessageSid": sid, "MessageStatus": "a_new_one"}) is None
    with pytest.raises(MalformedWebhookError, match="MessageStatus"):
        parse_status({"MessageSid": sid})
    with pytest.raises(MalformedWebhookError, match="ErrorCode"):
        parse_status({**failed, "ErrorCode": "30007; drop table"})
