"""TikTok-Signature on DM webhooks: t=<unix seconds>,s=<hex HMAC-SHA256 of "<t>.<body>">."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from webhooks.channels.tiktok_dm_signature import InvalidSignatureError, verify_signature

SECRET = "tiktok-app-secret-0123456789"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BODY = b'{"event":"im_receive_msg","content":"{\\"text\\":{\\"body\\":\\"caf\\u00e9\\"}}"}'


def signed(body: bytes = BODY, *, at: datetime = NOW, secret: str = SECRET) -> str:
    t = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},s={digest}"


def test_tiktoks_own_signature_is_accepted() -> None:
    verify_signature(BODY, {"TikTok-Signature": signed()}, SECRET, NOW)


def test_the_header_name_is_case_insensitive_and_spaces_are_tolerated() -> None:
    t, s = signed().split(",")
    verify_signature(BODY, {"tiktok-signature": f" {t} , {s.upper()} "}, SECRET, NOW)


def test_a_body_with_raw_utf8_is_signed_as_sent() -> None:
    body = '{"text":"¡Hola! ¿Qué tal? 🚗"}'.encode()
    verify_signature(body, {"TikTok-Signature": signed(body)}, SECRET, NOW)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "missing TikTok-Signature"),
        ({"TikTok-Signature": "  "}, "missing TikTok-Signature"),
        ({"TikTok-Signature": "s=abc"}, "not in the form"),
        ({"TikTok-Signature": "t=now,s=" + "0" * 64}, "not in the form"),
        ({"TikTok-Signature": f"t={int(NOW.timestamp())},s=" + "0" * 64}, "does not match"),
        ({"TikTok-Signature": signed(secret="another-app's-secret")}, "does not match"),
        ({"TikTok-Signature": signed(BODY + b" ")}, "does not match"),
        # The lead webhook's other scheme does not count on the DM webhook.
        ({"X-Open-Signature": hmac.new(SECRET.encode(), BODY, "sha256").hexdigest()}, "missing"),
    ],
)
def test_anything_but_a_good_signature_is_refused(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidSignatureError, match=problem):
        verify_signature(BODY, headers, SECRET, NOW)


@pytest.mark.parametrize(
    ("skew", "problem"),
    [
        (timedelta(minutes=-6), "6 minutes old"),
        (timedelta(hours=-3), "3 hours old"),
        (timedelta(minutes=6), "6 minutes in the future"),
    ],
)
def test_a_stale_or_future_timestamp_is_refused(skew: timedelta, problem: str) -> None:
    header = {"TikTok-Signature": signed(at=NOW + skew)}
    with pytest.raises(InvalidSignatureError, match=problem):
        verify_signature(BODY, header, SECRET, NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-4), timedelta(minutes=4)])
def test_a_few_minutes_of_clock_skew_either_way_is_fine(skew: timedelta) -> None:
    verify_signature(BODY, {"TikTok-Signature": signed(at=NOW + skew)}, SECRET, NOW)


def test_a_forged_signature_learns_nothing_about_the_clock() -> None:
    # Only an authentic delivery is told that it is stale.
    old = int((NOW - timedelta(days=2)).timestamp())
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify_signature(BODY, {"TikTok-Signature": f"t={old},s={'a' * 64}"}, SECRET, NOW)
