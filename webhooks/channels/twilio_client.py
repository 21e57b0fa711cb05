"""The twilio-python REST client leadbot sends through, and its errors in leadbot's terms.

twilio is used for transport only: every vendor error is converted here, once, into a
`DeliveryError`. The client's aiohttp session lives as long as the application (a cleanup
context), on the API root from settings, so tests and staging can point it at a fake.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import ClientError, web
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from bot.errors import DeliveryError
from webhooks.keys import SETTINGS
from webhooks.settings import TwilioSettings

# Names of environment variables, for messages that say what to set.
SID_VARIABLE = "LEADBOT_TWILIO__ACCOUNT_SID"
TOKEN_VARIABLE = "LEADBOT_TWILIO__AUTH_TOKEN"  # noqa: S105 (a variable's name)
NUMBER_VARIABLES = {
    "sms": "LEADBOT_TWILIO__SMS_NUMBER",
    "whatsapp": "LEADBOT_TWILIO__WHATSAPP_NUMBER",
}
TWILIO_CLIENT = web.AppKey("twilio_client", Client)  # only when twilio.enabled

# Error codes (twilio.com/docs/api/errors) that mean something to the outbox.
OPTED_OUT = {21610, 63014}  # replied STOP / blocked the business or opted out
OUTSIDE_WINDOW = {63016}  # WhatsApp free text more than 24 hours after their last message
TOO_MANY_REQUESTS = {20429}
BAD_CREDENTIALS = {20003}
_PREFIXES = ("Unable to create record: ", "Unable to fetch record: ")


def new_client(settings: TwilioSettings) -> Client:
    """A client on the configured API root. Call it inside the running loop: the async HTTP
    client opens its aiohttp session at once."""
    if settings.account_sid is None or settings.auth_token is None:
        raise ValueError(f"twilio.account_sid and auth_token ({SID_VARIABLE}) are not set")
    quiet_transport_logs()
    client = Client(
        settings.account_sid,
        settings.auth_token.get_secret_value(),
        # twilio 9 passes no timeout to aiohttp whatever this says: TwilioSender also bounds
        # each call itself.
        http_client=AsyncTwilioHttpClient(timeout=settings.timeout),
        # Settings come from LEADBOT_TWILIO__..., never from TWILIO_EDGE / TWILIO_REGION in
        # the environment, which would rewrite the API root (and cannot reach a fake).
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.api.base_url = str(settings.api_url).rstrip("/")
    return client


async def client_context(app: web.Application) -> AsyncIterator[None]:
    """The client for the app's life, closed (with its session) on shutdown. Nothing is asked
    of Twilio at start: an unreachable Twilio only delays sends, which the outbox retries."""
    client = new_client(app[SETTINGS].twilio)
    app[TWILIO_CLIENT] = client
    try:
        yield
    finally:
        await client.http_client.close()


def quiet_transport_logs() -> None:
    """twilio's HTTP client logs every request and its headers at INFO: noise at best."""
    transport = logging.getLogger("twilio.async_http_client")
    if transport.getEffectiveLevel() < logging.WARNING:
        transport.setLevel(logging.WARNING)


def delivery_error(error: BaseException) -> DeliveryError:
    """What a failed API call means for the outbox row."""
    match error:
        case TwilioRestException():
            return _refused(error.status, error.code, str(error.msg or ""))
        case TwilioServiceException():
            return _refused(error.status, error.code, str(error.detail or error.title or ""))
        case TimeoutError():
            return DeliveryError("Twilio did not answer in time")
        case ClientError():
            return DeliveryError(f"Twilio is unavailable: {type(error).__name__}")
        case TwilioException():
            return DeliveryError(f"Twilio error: {type(error).__name__}")
        case _:
            raise TypeError(f"not a Twilio error: {type(error).__name__}")


def _refused(status: object, code: object, message: str) -> DeliveryError:
    status = status if isinstance(status, int) else 0
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    reason = (
        f"Twilio error {code}: {message}" if code is not None else f"Twilio {status}: {message}"
    )
    reason = reason.rstrip(": ")
    if code in OPTED_OUT:
        return DeliveryError(reason, suppress=True)
    if code in OUTSIDE_WINDOW:
        return DeliveryError(reason, held=True)
    if status == 429 or code in TOO_MANY_REQUESTS:
        return DeliveryError(reason)  # Twilio gives no Retry-After: back off and retry
    if status >= 500 or status == 0:
        return DeliveryError(reason)
    if status == 401 or code in BAD_CREDENTIALS:
        return DeliveryError(
            f"{reason} (check {SID_VARIABLE} and {TOKEN_VARIABLE})", permanent=True
        )
    return DeliveryError(reason, permanent=True)
