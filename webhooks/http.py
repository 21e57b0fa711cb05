"""JSON errors and the middleware that turns every failure into one: never a traceback."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from webhooks.keys import SETTINGS

log = logging.getLogger("leadbot.http")

REQUEST_ID = web.RequestKey("request_id", str)
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def json_error(status: int, code: str, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def new_request_id() -> str:
    """16 hex digits. An id only has to be unique, not secret (a caller may even choose its
    own), so it comes from `random`, seeded from the system once, rather than from `secrets`:
    a system call per request, during which the SQLite thread took the GIL from the event
    loop (bench.intake)."""
    return f"{random.getrandbits(64):016x}"


def request_id(request: web.Request) -> str:
    return str(request.get(REQUEST_ID, "-"))


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id; answer every error with `{"error": {"code", "message"}}`."""
    given = request.headers.get("X-Request-Id", "")
    # A caller's id is kept only when it is plain: it goes into logs and headers.
    request[REQUEST_ID] = given if _SAFE_ID.fullmatch(given) else new_request_id()
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects are answers, not errors
        if error.content_type == "application/json":
            raise  # already ours
        message = error.text or error.reason
        if error.status == 413:
            limit = request.app[SETTINGS].max_body_bytes
            message = f"the body is larger than this server accepts ({limit} bytes)"
        elif message.startswith(f"{error.status}:"):  # aiohttp's default text
            message = error.reason
        response = json_error(error.status, _CODES.get(error.status, "error"), message)
    except HttpProcessingError as error:  # a malformed multipart body or framing
        response = json_error(400, "bad_request", f"malformed request: {error.message}")
    except Exception:
        log.exception("unhandled error", extra={"request_id": request[REQUEST_ID]})
        response = json_error(
            500, "internal", f"something went wrong on our side (request {request[REQUEST_ID]})"
        )
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    return response


async def read_json_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The raw body of a JSON request, checked for type and size before anyone parses it."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=f"send Content-Type: application/json, not {request.content_type or 'nothing'}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
    return await request.read()
