"""Logging: one JSON object a line on stderr (or plain text), secrets and personal data redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

# The id of the request being handled, set by the request middleware (webhooks/routes/ops.py)
# so that every record logged while handling it carries it.
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("leadbot_request_id", default=None)

HANDLER_NAME = "leadbot"
MASK = "***"
access_log = logging.getLogger("leadbot.access")

# Attributes every LogRecord has: anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id"}
)

# Set on records whose every part is safe by construction (log_request): the Redactor skips them.
_BUILT_SAFE = "_leadbot_built_safe"
# json.dumps(payload, default=str, ensure_ascii=False), without building an encoder per line.
_JSON = json.JSONEncoder(default=str, ensure_ascii=False)

# Names whose values are credentials: api_key, X-Api-Key, app_secret, Authorization...
_CREDENTIAL_WORDS = "token|secret|key|passw(?:or)?d|authori[sz]ation|signature|cookie"
_CREDENTIAL_NAME = rf"[\w-]*(?:{_CREDENTIAL_WORDS})[\w-]*"
_CREDENTIAL_NAME_RE = re.compile(rf"(?i)^{_CREDENTIAL_NAME}$")
# `name=value`, `name: value`, `"name": "value"`, `Authorization: Bearer value`.
_SECRET_PAIR_RE = re.compile(
    rf"(?i)(\b{_CREDENTIAL_NAME}[\"']?\s*[:=]\s*[\"'\[]*)((?:bearer|basic|token)\s+)?[^\s\"'&,;}}\]]+"
)
_EMAIL_RE = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# E.164-looking: "+", then 7 to 15 digits, maybe grouped by spaces, dots, dashes or brackets.
_PHONE_RE = re.compile(r"(?<![\w+])\+[1-9](?:[ .()-]{0,2}\d){6,14}(?!\d)")


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"+{digits[:2]}******{digits[-2:]}"


def redact_text(text: str) -> str:
    """Mask secrets in `name=value` pairs, email addresses and E.164 phone numbers."""
    # Each pattern needs a character most log lines lack: `in` is far cheaper than a regex.
    if "=" in text or ":" in text:
        text = _SECRET_PAIR_RE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    if "@" in text:
        text = _EMAIL_RE.sub(r"\1***@\2", text)
    if "+" in text:
        text = _PHONE_RE.sub(_mask_phone, text)
    return text


def is_secret_name(name: str) -> bool:
    return bool(_CREDENTIAL_NAME_RE.match(name))


def redact_value(value: Any) -> Any:
    """A copy of `value` safe to log: secrets under secret-looking keys masked, text redacted,
    and anything else turned into redacted text (its str() might carry personal data)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            str(key): MASK if is_secret_name(str(key)) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


class RequestContext(logging.Filter):
    """Adds `request_id` to records logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = CURRENT_REQUEST_ID.get()
        return True


class Redactor(logging.Filter):
    """Rewrites each record in place before any formatter sees it: the message (with its
    arguments merged in), every extra field, and the traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _BUILT_SAFE, False):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: log the template alone
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        for key, value in extra_fields(record).items():
            setattr(record, key, MASK if is_secret_name(key) else redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id (when there is one), then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = extra_fields(record)
        payload.update(
            time=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
        )
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            payload["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return _JSON.encode(payload)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message [request_id=...] key=value ...` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        fields = extra_fields(record)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            fields = {"request_id": request_id, **fields}
        return " ".join([line, *(f"{key}={value}" for key, value in fields.items())])


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Send every logger's records through one redacting handler on stderr (`stream` in
    tests). Calling it again replaces that handler, never doubles it."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be json or text, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestContext())
    handler.addFilter(Redactor())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # leadbot writes its own access line (log_request): aiohttp's carries the raw request
    # line, query string included, and the Referer, where personal data travels.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx logs each request URL at INFO, and a Bot API URL holds the bot's token: leadbot's
    # Bot sends through aiohttp (webhooks/channels/telegram_http.py), but python-telegram-bot
    # still builds an httpx client of its own for getUpdates.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def log_request(
    method: str, route: str, status: int, seconds: float, request_id: str | None
) -> None:
    """The access line: the route pattern, never the path or query (tokens, emails).

    Written on every request, so it skips what the line does not need: the caller's file and
    line (logging walks the stack for them) and the Redactor, which could change nothing here:
    the method is a fixed label, the route a pattern of ours, the status and duration numbers,
    and the request id plain characters (`[A-Za-z0-9_.-]`, webhooks/http.py)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 2)
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        "(access)",
        0,
        "%s %s %d %.1f ms",
        (method, route, status, duration_ms),
        None,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
            _BUILT_SAFE: True,
        },
    )
    access_log.handle(record)
