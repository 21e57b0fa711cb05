"""The TikTok Business Messaging API as leadbot calls it, and its answers in leadbot's terms.

One aiohttp ClientSession for the application's life (a cleanup context), on the API root from
settings so tests and staging can point it at a fake. TikTok answers `{code, message,
request_id, data}`, code 0 for success, and mostly with HTTP 200 even when it refuses: every
answer is converted here, once, into a message id or a `DeliveryError`.

The access token lasts a day. When TikTok rejects it, the client renews it with the refresh
token (which TikTok may rotate) and tries once more. Renewed tokens are kept in memory only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.errors import DeliveryError
from webhooks.keys import SETTINGS
from webhooks.settings import TikTokSettings

log = logging.getLogger(__name__)

SEND_PATH = "/open_api/v1.3/business/message/send/"
REFRESH_PATH = "/open_api/v1.3/tt_user/oauth2/refresh_token/"
ACCESS_TOKEN_VARIABLE = "LEADBOT_TIKTOK__ACCESS_TOKEN"  # noqa: S105 (a variable's name)
REFRESH_TOKEN_VARIABLE = "LEADBOT_TIKTOK__REFRESH_TOKEN"  # noqa: S105 (a variable's name)

# TikTok's return codes (API for Business; the Business Messaging list as SleekFlow's
# troubleshooting page gives it). Refusals come back with HTTP 200 and one of these.
OK = 0
BAD_TOKEN = frozenset({40102, 40104, 40105})  # access token expired, missing, wrong or revoked
RATE_LIMITED = 40100  # "You've hit the rate limit for this API"
# 40064 is worded two ways in public sources: "You are sending messages too fast. Take a rest."
# (Qiscus) and "Your message was blocked due to messaging restrictions" (SleekFlow). TikTok
# documents no other code for the 48-hour window or the per-window budget, so the first wording
# is retried after a pause and any other is the window or the budget: held, with TikTok's words.
RESTRICTED = 40064
_TOO_FAST = re.compile(r"too fast|too frequent|take a rest", re.IGNORECASE)
SERVER_CODES = 50000  # 5xxxx: trouble on TikTok's side (e.g. 51065 "system error"), retried
TOO_FAST_PAUSE = 60.0  # seconds the whole channel waits after "too fast": TikTok names none
MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class Answer:
    """One API answer: TikTok's code (None when the body held none) and what came with it."""

    status: int
    code: int | None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def token_rejected(self) -> bool:
        return self.status == 401 or self.code in BAD_TOKEN


class TikTokClient:
    """Calls the API for one business account with its tokens. Concurrent sends that meet an
    expired token renew it once between them: the refresh token may rotate, and a second renewal
    with the old one would fail."""

    def __init__(self, session: ClientSession, settings: TikTokSettings) -> None:
        if settings.business_id is None or settings.access_token is None:
            raise ValueError("tiktok.business_id and tiktok.access_token are not set")
        self._session = session
        self._root = str(settings.api_url).rstrip("/")
        self.business_id = settings.business_id
        self._access_token = settings.access_token.get_secret_value()
        self._refresh_token = (
            settings.refresh_token.get_secret_value() if settings.refresh_token else None
        )
        self._app_id = settings.app_id
        self._app_secret = settings.app_secret.get_secret_value() if settings.app_secret else None
        self._renewing = asyncio.Lock()
        self.renewals = 0  # how many times the access token was renewed since start

    async def send(self, message: Mapping[str, Any]) -> str | None:
        """POST one message (business_id is added); TikTok's message id. Raises DeliveryError."""
        body = {"business_id": self.business_id, **message}
        token = self._access_token
        answer = await self._post(SEND_PATH, body, token)
        if answer.token_rejected:
            await self._renew(token, answer)
            answer = await self._post(SEND_PATH, body, self._access_token)
            if answer.token_rejected:
                raise DeliveryError(
                    f"{_describe(answer)} even with a renewed access token "
                    f"(check {ACCESS_TOKEN_VARIABLE})",
                    permanent=True,
                )
        failure = delivery_error(answer)
        if failure is not None:
            raise failure
        sent = answer.data.get("message")
        message_id = sent.get("message_id") if isinstance(sent, dict) else None
        # An empty id cannot be looked up later, but the message went: never send it twice.
        return message_id if isinstance(message_id, str) and message_id else None

    async def _renew(self, rejected: str, answer: Answer) -> None:
        """A new access token, unless another send renewed it meanwhile."""
        async with self._renewing:
            if self._access_token != rejected:
                return
            if not (self._refresh_token and self._app_id and self._app_secret):
                raise DeliveryError(
                    f"{_describe(answer)}: set a new tiktok.access_token ({ACCESS_TOKEN_VARIABLE}),"
                    f" or tiktok.refresh_token ({REFRESH_TOKEN_VARIABLE}), tiktok.app_id and "
                    "tiktok.app_secret so that leadbot renews it itself",
                    permanent=True,
                )
            renewal = await self._post(
                REFRESH_PATH,
                {
                    "client_id": self._app_id,
                    "client_secret": self._app_secret,
                    "grant_type": "refresh_token",
                    "refresh_token": self._refresh_token,
                },
                None,
            )
            if renewal.code != OK:
                failure = delivery_error(renewal)
                reason = f"could not renew the TikTok access token: {_describe(renewal)}"
                if failure is not None and not failure.permanent:
                    raise DeliveryError(reason, retry_after=failure.retry_after)
                raise DeliveryError(
                    f"{reason}; authorise leadbot again and set tiktok.access_token and "
                    f"tiktok.refresh_token ({ACCESS_TOKEN_VARIABLE}, {REFRESH_TOKEN_VARIABLE})",
                    permanent=True,
                )
            access = renewal.data.get("access_token")
            if not isinstance(access, str) or not access:
                raise DeliveryError("TikTok renewed the access token but sent none back")
            refresh = renewal.data.get("refresh_token")
            rotated = isinstance(refresh, str) and bool(refresh) and refresh != self._refresh_token
            self._access_token = access
            if rotated:
                self._refresh_token = str(refresh)
            self.renewals += 1
            # Never the tokens themselves: only that they changed, and what that asks of the
            # operator (these live in memory; a restart starts from the settings again).
            log.warning(
                "TikTok access token renewed%s; the new tokens are kept in memory only, so "
                "update %s%s from TikTok before this server restarts",
                " and refresh token rotated" if rotated else "",
                ACCESS_TOKEN_VARIABLE,
                f" and {REFRESH_TOKEN_VARIABLE}" if rotated else "",
            )

    async def _post(self, path: str, body: Mapping[str, Any], token: str | None) -> Answer:
        headers = {"Access-Token": token} if token is not None else {}
        try:
            async with self._session.post(self._root + path, json=body, headers=headers) as reply:
                status = reply.status
                retry_after = _seconds(reply.headers.get("Retry-After"))
                text = await reply.text(errors="replace")
        except (TimeoutError, ClientError) as error:
            if isinstance(error, TimeoutError):
                raise DeliveryError("TikTok did not answer in time") from None
            raise DeliveryError(f"TikTok is unavailable: {type(error).__name__}") from None
        return read_answer(status, text, retry_after)


def read_answer(status: int, text: str, retry_after: float | None = None) -> Answer:
    """An HTTP answer as TikTok's envelope; `code` None when the body is not one."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return Answer(status, None, " ".join(text.split())[:MAX_ERROR_TEXT], {}, retry_after)
    code = document.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    message = document.get("message")
    data = document.get("data")
    return Answer(
        status,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        " ".join(str(message).split())[:MAX_ERROR_TEXT] if message is not None else "",
        data if isinstance(data, dict) else {},
        retry_after,
    )


def delivery_error(answer: Answer) -> DeliveryError | None:
    """What an answer means for the outbox row; None when TikTok took the message."""
    if answer.code == OK and answer.status < 400:
        return None
    reason = _describe(answer)
    if answer.status >= 500 or (answer.code is not None and answer.code >= SERVER_CODES):
        return DeliveryError(reason)
    if answer.code == RESTRICTED:
        if _TOO_FAST.search(answer.message):
            return DeliveryError(reason, retry_after=TOO_FAST_PAUSE)
        return DeliveryError(
            f"{reason} (outside TikTok's 48-hour window, or over its message budget?)", held=True
        )
    if answer.code == RATE_LIMITED or answer.status == 429:
        return DeliveryError(reason, retry_after=answer.retry_after or TOO_FAST_PAUSE)
    if answer.token_rejected:
        return DeliveryError(f"{reason} (check {ACCESS_TOKEN_VARIABLE})", permanent=True)
    if answer.code is None and answer.status < 400:
        return DeliveryError(f"TikTok answered {answer.status} without a result code")
    return DeliveryError(reason, permanent=True)


def _describe(answer: Answer) -> str:
    if answer.code is not None and answer.code != OK:
        text = f"TikTok error {answer.code}: {answer.message}"
    else:
        text = f"TikTok {answer.status}: {answer.message}"
    return text.rstrip(": ")


def _seconds(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), 3600))


TIKTOK_CLIENT = web.AppKey("tiktok_client", TikTokClient)  # only when tiktok.sends_messages


async def client_context(app: web.Application) -> AsyncIterator[None]:
    """The client (and its one session) for the app's life, closed on shutdown. Nothing is asked
    of TikTok at start: an unreachable TikTok only delays sends, which the outbox retries."""
    settings = app[SETTINGS].tiktok
    session = ClientSession(timeout=ClientTimeout(total=settings.timeout))
    try:
        app[TIKTOK_CLIENT] = TikTokClient(session, settings)
        yield
    finally:
        await session.close()
