"""X-Twilio-Signature: a Twilio webhook read and verified before anything trusts it.

Twilio signs the public URL it requested (query included) followed by the sorted form
parameters, with HMAC-SHA1 keyed by the account's Auth Token. A JSON body is signed through its
SHA-256, carried in the URL's `bodySHA256` parameter. twilio's own RequestValidator does the
arithmetic (and tries the URL with and without its default port); behind a proxy the URL is
rebuilt from the configured public URL, since aiohttp sees the inner address.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlsplit

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import (  # type: ignore[import-untyped]
    SIGNATURE_HEADER,
    RequestValidator,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
BODY_HASH = "bodySHA256"
# An inbound message is a few kilobytes: 4,096 characters of WhatsApp text, percent-encoded,
# plus ten media URLs and the referral fields of a click-to-WhatsApp ad.
MAX_BODY = 128 * 1024


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A body Twilio signed: form-encoded (the usual) or JSON; it decodes as UTF-8."""

    body: bytes
    content_type: str


class InvalidSignatureError(Exception):
    """The request is not Twilio's: no signature, a wrong one, or a body it cannot be for."""


def signed_url(base_url: str, raw_path: str) -> str:
    """The URL Twilio requested: the public base URL and the path as it came, query included."""
    return base_url.rstrip("/") + raw_path


def is_signed(token: str, url: str, body: bytes, content_type: str, signature: str) -> bool:
    """Whether `signature` is Twilio's for this request. Never raises on hostile input."""
    if not signature:
        return False
    validator = RequestValidator(token)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False  # Twilio signs text; these bytes are not what it sent
    if content_type == JSON:
        # Twilio always puts the body's hash in the URL of a JSON request; without it the
        # validator would take the body for parameters.
        if BODY_HASH not in parse_qs(urlsplit(url).query):
            return False
        return bool(validator.validate(url, text, signature))
    try:
        params = MultiDict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except (ValueError, UnicodeDecodeError):
        return False
    return bool(validator.validate(url, params, signature))


async def read_signed(request: web.Request, token: str, base_url: str) -> SignedRequest:
    """The request's body, verified. Raises InvalidSignatureError (answer 403), or aiohttp's
    413/415 for a body of the wrong size or type (answered as JSON errors)."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise InvalidSignatureError(f"missing {SIGNATURE_HEADER}")
    content_type = request.content_type
    if content_type not in (FORM, JSON):
        raise web.HTTPUnsupportedMediaType(
            text=f"Twilio posts {FORM} (or {JSON}), not {content_type or 'nothing'}"
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.read()
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    url = signed_url(base_url, request.raw_path)
    if not is_signed(token, url, body, content_type, signature):
        raise InvalidSignatureError(f"wrong {SIGNATURE_HEADER}")
    return SignedRequest(body, content_type)
