"""The OpenAPI 3.1 description of every public endpoint, served at /openapi.json."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from webhooks.crm.openapi import crm_paths
from webhooks.hosted_form import ATTRIBUTION_KEYS
from webhooks.settings import Settings

Json = dict[str, Any]

ERROR = {"$ref": "#/components/schemas/Error"}
TEXT = {"type": "string"}
APPS = ["telegram", "whatsapp", "sms", "tiktok", "messenger", "web"]
MESSAGE = {"$ref": "#/components/schemas/ChatMessage"}
FORM_FIELDS: Json = {
    "type": "object",
    "description": (
        "The script's form fields by name (first_name, phone, email...), `_consent=yes` when "
        "the script asks for consent, and the hidden `_nonce`, `_lang` and `_<attribution>`."
    ),
    "additionalProperties": {"type": "string"},
    "properties": {
        "first_name": TEXT,
        "phone": TEXT,
        "email": TEXT,
        "_consent": {"type": "string", "enum": ["yes"]},
        "_nonce": TEXT,
        "_lang": TEXT,
    },
}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _html(description: str) -> Json:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _error(description: str, *, html: bool = False) -> Json:
    content = _json(ERROR)
    if html:  # pages answer people with a page, programs with JSON
        content["text/html"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def _errors(*statuses: int, html: bool = False) -> Json:
    descriptions = {
        400: "The request is malformed or names something invalid (the message says what)",
        401: "Missing or wrong credentials or signature",
        403: "Missing or wrong secret header",
        404: "Not found, or not enabled on this server",
        410: "The link has expired",
        413: "The body is larger than this server accepts",
        415: "The body is not of the content type this endpoint reads",
        429: "Too many requests from this client: try again later",
    }
    return {str(status): _error(descriptions[status], html=html) for status in statuses}


def _param(name: str, where: str, schema: Json, description: str = "") -> Json:
    parameter: Json = {"name": name, "in": where, "schema": schema}
    if where == "path":
        parameter["required"] = True
    if description:
        parameter["description"] = description
    return parameter


AFTER = {
    "name": "after",
    "in": "query",
    "description": "The id of the last message already shown",
    "schema": {"type": "integer", "minimum": 0, "default": 0},
}


def _token() -> Json:
    text = {"type": "string", "minLength": 1}
    return _param("token", "path", text, "The signed link token of a lead")


SCHEMAS: Json = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["bad_signature"]},
                    "message": {"type": "string", "examples": ["signature does not match"]},
                },
            }
        },
    },
    "AcceptedLeads": {
        "type": "object",
        "required": ["accepted", "leads"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "leads": {"type": "array", "items": {"$ref": "#/components/schemas/AcceptedLead"}},
        },
    },
    "AcceptedLead": {
        "type": "object",
        "required": ["id", "reference", "created", "script", "chooser_url", "links"],
        "properties": {
            "id": {"type": "integer"},
            "reference": {"type": "string", "description": "Short code the prospect may quote"},
            "created": {"type": "boolean", "description": "false: a repeated delivery"},
            "script": {"type": "string"},
            "chooser_url": {"type": "string", "format": "uri"},
            "links": {
                "type": "object",
                "description": "Chat app -> deep link that opens the conversation",
                "additionalProperties": {"type": "string"},
            },
        },
    },
    "TikTokDelivery": {
        "type": "object",
        "required": ["object"],
        "properties": {
            "request_id": {"type": ["integer", "string"]},
            "object": {
                "type": ["integer", "string"],
                "description": "1 = leads; other kinds are acknowledged and ignored",
            },
            "time": {"type": ["integer", "string"]},
            "entry": {
                "type": "array",
                "maxItems": 1000,
                "items": {"$ref": "#/components/schemas/TikTokLead"},
            },
        },
    },
    "TikTokLead": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": ["integer", "string"], "description": "The lead id (dedupe key)"},
            "lead_source": {"type": "string"},
            "page_id": {"type": ["integer", "string"]},
            "page_name": {"type": "string"},
            "advertiser_id": {"type": ["integer", "string"]},
            "campaign_id": {"type": ["integer", "string"]},
            "adgroup_id": {"type": ["integer", "string"]},
            "ad_id": {"type": ["integer", "string"]},
            "create_time": {"type": ["integer", "string"]},
            "changes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field"],
                    "properties": {"field": {"type": "string"}, "value": {}},
                },
            },
        },
    },
    "GoogleLead": {
        "type": "object",
        "required": ["google_key", "lead_id"],
        "properties": {
            "google_key": {"type": "string", "description": "The secret configured for the form"},
            "lead_id": {"type": ["string", "integer"]},
            "user_column_data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "column_id": {"type": "string", "examples": ["PHONE_NUMBER"]},
                        "column_name": {"type": "string"},
                        "string_value": {"type": "string"},
                    },
                },
            },
            "form_id": {"type": ["string", "integer"]},
            "campaign_id": {"type": ["string", "integer"]},
            "adgroup_id": {"type": ["string", "integer"]},
            "creative_id": {"type": ["string", "integer"]},
            "gcl_id": {"type": "string"},
            "api_version": {"type": "string"},
            "lead_submit_time": {"type": "string"},
            "is_test": {"type": ["boolean", "string"]},
        },
    },
    "RelayLead": {
        "type": "object",
        "description": (
            "One flat lead. Keys are the sender's; the relay's `mapping` setting names which "
            "key is the phone, the email and so on. The id is `id` (or the relay's `id_field`, "
            "`external_id`, `lead_id`)."
        ),
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "examples": [{"id": "zap-1", "first_name": "Ana", "phone": "+34612345678"}],
    },
    "TelegramUpdate": {
        "type": "object",
        "description": (
            "An Update as the Telegram Bot API posts it. Read: message (text, /start <payload>, "
            "contact; other content gets a request to type) and callback_query (a tapped "
            "button); other kinds are acknowledged and ignored."
        ),
        "required": ["update_id"],
        "properties": {
            "update_id": {"type": "integer", "minimum": 0},
            "message": {"type": "object"},
            "callback_query": {"type": "object"},
        },
    },
    "TikTokEvent": {
        "type": "object",
        "description": (
            "A TikTok Business Messaging webhook event. Read: im_referral_msg (the prospect "
            "arrived from an ad or a tiktok.me link; its ref binds the conversation to a lead) "
            "and im_receive_msg (text, a tapped QA_BUTTON_CARD button, or media, which gets a "
            "request to type). im_send_msg echoes, im_mark_read_msg, tiktok.ping, the "
            "business's own messages and other accounts' events are acknowledged and ignored."
        ),
        "required": ["event"],
        "properties": {
            "event": {"type": "string", "examples": ["im_receive_msg", "im_referral_msg"]},
            "client_key": {"type": "string"},
            "user_openid": {"type": "string", "description": "The business account"},
            "create_time": {"type": "integer", "description": "Unix seconds"},
            "content": {
                "type": "string",
                "description": (
                    "The event's JSON, as a string: conversation_id, message_id (the receipt a "
                    "repeat is recognised by), type, text.body, from_user.id, "
                    "reply_source_payload (a tapped button), referral.short_link.ref"
                ),
            },
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["id", "author", "text", "options", "status"],
        "properties": {
            "id": {"type": "integer"},
            "author": {"type": "string", "enum": ["prospect", "bot", "rep", "system"]},
            "text": {"type": "string"},
            "options": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["value", "label"],
                    "properties": {"value": {"type": "string"}, "label": {"type": "string"}},
                },
            },
            "status": {"type": "string"},
        },
    },
    "ChatReply": {
        "oneOf": [
            {
                "type": "object",
                "required": ["text", "client_id"],
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "client_id": {"type": "string", "description": "Dedupes a resent message"},
                },
            },
            {
                "type": "object",
                "required": ["option", "question_id", "client_id"],
                "properties": {
                    "option": {"type": "string"},
                    "question_id": {"type": "string"},
                    "client_id": {"type": "string"},
                },
            },
        ]
    },
}

SECURITY_SCHEMES: Json = {
    "tiktokOpenSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Open-Signature",
        "description": "Lowercase hex HMAC-SHA256 of the body (non-ASCII escaped), app secret",
    },
    "tiktokSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "TikTok-Signature",
        "description": 't=<unix seconds>,s=<hex HMAC-SHA256 of "<t>.<body>">, app secret',
    },
    "relayApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "telegramSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Telegram-Bot-Api-Secret-Token",
        "description": "telegram.webhook_secret, as leadbot telegram set-webhook registered it",
    },
    "twilioSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": (
            "Base64 HMAC-SHA1, keyed with twilio.auth_token, of the public URL (public_url + "
            "path and query) followed by the sorted form parameters; a JSON body is signed "
            "through the bodySHA256 query parameter"
        ),
    },
    "relayBearer": {"type": "http", "scheme": "bearer", "description": "The API key as a token"},
    "relaySignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Leadbot-Signature",
        "description": "sha256=<hex HMAC-SHA256 of the raw body, keyed with the hmac_secret>",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (leadbot apikey create, or POST /api/v1/keys) as the token",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "repSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "leadbot_session",
        "description": (
            "A rep's console login; POST, PUT, PATCH and DELETE also need the session's token "
            "in the X-CSRF-Token header"
        ),
    },
}


def _intake(summary: str, description: str, body: Json, security: list[Json]) -> Json:
    operation: Json = {
        "tags": ["intake"],
        "summary": summary,
        "description": description,
        "requestBody": {"required": True, "content": _json(body)},
        "responses": {
            "200": {
                "description": "Every lead was already stored (repeated delivery)",
                "content": _json({"$ref": "#/components/schemas/AcceptedLeads"}),
            },
            "201": {
                "description": "Stored; the prospect can now be brought into chat",
                "content": _json({"$ref": "#/components/schemas/AcceptedLeads"}),
            },
            **_errors(400, 401, 404, 413, 415),
        },
    }
    if security:
        operation["security"] = security
    return operation


def _twilio_body(fields: dict[str, str], required: list[str]) -> Json:
    """Twilio's parameters: form-encoded (or JSON, signed through bodySHA256), every value
    text; Twilio adds parameters without notice, so others are allowed."""
    schema: Json = {
        "type": "object",
        "required": required,
        "properties": {
            name: {"type": "string", "description": text, **TWILIO_PATTERNS.get(name, {})}
            for name, text in fields.items()
        },
        "additionalProperties": True,
    }
    return {"application/x-www-form-urlencoded": {"schema": schema}, **_json(schema)}


def _twilio(
    operation_id: str, summary: str, description: str, fields: dict[str, str], ok: Json
) -> Json:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["channels"],
            "summary": summary,
            "description": description,
            "security": [{"twilioSignature": []}],
            "requestBody": {"required": True, "content": _twilio_body(fields, list(fields)[:2])},
            "responses": {**ok, **_errors(400, 403, 413, 415)},
        }
    }


TWILIO_PATTERNS: dict[str, Json] = {
    "MessageSid": {"pattern": "^[A-Z]{2}[0-9a-fA-F]{32}$"},
    "From": {"pattern": "^(whatsapp:)?\\+[1-9][0-9]{6,14}$"},
    "NumMedia": {"pattern": "^[0-9]{1,6}$"},
    "MessageStatus": {"pattern": "^[a-z_]{1,32}$"},
    "ErrorCode": {"pattern": "^[0-9]{0,6}$"},
}
# The first two of each are required.
TWILIO_MESSAGE = {
    "MessageSid": "SM... (34 characters): the receipt a repeat is recognised by",
    "From": "+E.164, or whatsapp:+E.164",
    "To": "the business's number, likewise",
    "Body": "the text",
    "NumMedia": "how many attachments",
    "ButtonPayload": "WhatsApp quick reply: the button's id (an option value)",
    "ButtonText": "WhatsApp quick reply: the button's title",
    "OriginalRepliedMessageSid": "WhatsApp: the message replied to (the one with the buttons)",
    "ProfileName": "WhatsApp: the prospect's display name",
}
TWILIO_STATUS = {
    "MessageSid": "the message leadbot sent",
    "MessageStatus": "queued, sent, delivered, read, undelivered, failed...",
    "ErrorCode": "Twilio's error code, when it failed",
    "To": "the prospect's address (+E.164 or whatsapp:+E.164)",
}


API_KEY_FIELDS: Json = {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "prefix": {"type": "string", "description": "The key's first 8 characters"},
    "created_by": {"type": ["integer", "null"], "description": "The admin; null: the CLI"},
    "created_at": {"type": "string", "format": "date-time"},
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
}
API_KEY: Json = {"type": "object", "required": list(API_KEY_FIELDS), "properties": API_KEY_FIELDS}
NO_LOGIN = _error("Not logged in, or the API key is missing, wrong or revoked")
ADMIN_ONLY = _error("Not an admin's session (API keys never manage keys), or no CSRF token")


def _api_v1() -> Json:
    """/api/v1: for programs with an API key, and for the console with a rep's session."""
    anyone: list[Json] = [{"apiKey": []}, {"apiKeyHeader": []}, {"repSession": []}]
    admins: list[Json] = [{"repSession": []}]
    keys_tag = ["api keys"]
    return {
        "/api/v1/me": {
            "get": {
                "operationId": "whoAmI",
                "tags": ["api"],
                "summary": "Who is calling: a rep (session) or a program (API key)",
                "security": anyone,
                "responses": {
                    "200": {
                        "description": "The caller",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["kind"],
                                "properties": {
                                    "kind": {"enum": ["rep", "api_key"]},
                                    "rep": {"type": "object"},
                                    "csrf_token": {
                                        "type": "string",
                                        "description": "A rep's: send it as X-CSRF-Token",
                                    },
                                    "api_key": {"type": "object"},
                                },
                            }
                        ),
                    },
                    "401": NO_LOGIN,
                },
            }
        },
        "/api/v1/keys": {
            "get": {
                "operationId": "listApiKeys",
                "tags": keys_tag,
                "summary": "Every API key, revoked ones too (never the keys themselves)",
                "security": admins,
                "responses": {
                    "200": {
                        "description": "The keys",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["keys"],
                                "properties": {"keys": {"type": "array", "items": API_KEY}},
                            }
                        ),
                    },
                    "401": NO_LOGIN,
                    "403": ADMIN_ONLY,
                },
            },
            "post": {
                "operationId": "createApiKey",
                "tags": keys_tag,
                "summary": "Make an API key; the answer is the only place the key ever appears",
                "security": admins,
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1, "maxLength": 100}
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {
                        "description": "Made",
                        "content": _json(
                            {
                                "type": "object",
                                "required": [*API_KEY["required"], "key"],
                                "properties": {**API_KEY_FIELDS, "key": {"type": "string"}},
                            }
                        ),
                    },
                    **_errors(400),
                    "401": NO_LOGIN,
                    "403": ADMIN_ONLY,
                    **_errors(413, 415),
                },
            },
        },
        "/api/v1/keys/{id}": {
            "delete": {
                "operationId": "revokeApiKey",
                "tags": keys_tag,
                "summary": "Revoke an API key: it stops working at once",
                "security": admins,
                "parameters": [_param("id", "path", {"type": "integer"}, "The key's id")],
                "responses": {
                    "204": {"description": "Revoked (or it already was)"},
                    "401": NO_LOGIN,
                    "403": ADMIN_ONLY,
                    "404": _error("No key with this id"),
                },
            }
        },
        **_privacy(),
    }


LEAD_EXPORT: Json = {
    "type": "object",
    "description": "Everything held about a lead's person (docs/privacy.md); times in ISO 8601",
    "required": [
        "format",
        "exported_at",
        "lead",
        "consents",
        "conversations",
        "outbox",
        "audit_log",
        "suppressions",
    ],
    "properties": {
        "format": {"const": "leadbot.lead-export/1"},
        "exported_at": {"type": "string", "format": "date-time"},
        "lead": {"type": "object", "description": "The lead's row, every column"},
        "consents": {"type": "array", "items": {"type": "object"}},
        "conversations": {
            "type": "array",
            "items": {"type": "object", "description": "With its transcript"},
        },
        "outbox": {"type": "array", "items": {"type": "object"}},
        "audit_log": {"type": "array", "items": {"type": "object"}},
        "suppressions": {"type": "array", "items": {"type": "object"}},
    },
}
KEY_OR_ADMIN = _error("A rep's session that is not an admin's, or no CSRF token")


def _privacy() -> Json:
    """A lead's export and erasure: programs with an API key, and admins."""
    callers: list[Json] = [{"apiKey": []}, {"apiKeyHeader": []}, {"repSession": []}]
    lead_id = _param("id", "path", {"type": "integer"}, "The lead's id")
    unknown = _error("No lead with this id")
    return {
        "/api/v1/leads/{id}/export": {
            "get": {
                "operationId": "exportLead",
                "tags": ["privacy"],
                "summary": "Everything held about the lead's person, as JSON (it is audited)",
                "security": callers,
                "parameters": [lead_id],
                "responses": {
                    "200": {"description": "The export", "content": _json(LEAD_EXPORT)},
                    "401": NO_LOGIN,
                    "403": KEY_OR_ADMIN,
                    "404": unknown,
                },
            }
        },
        "/api/v1/leads/{id}": {
            "delete": {
                "operationId": "eraseLead",
                "tags": ["privacy"],
                "summary": "Erase the lead's personal data from every table (idempotent)",
                "description": (
                    "The lead stays as an anonymous row for the funnel's counts; an opt-out stays, "
                    "hashed. The erasure is in the audit log, without the personal data."
                ),
                "security": callers,
                "parameters": [lead_id],
                "responses": {
                    "200": {
                        "description": "Erased (now, or already before)",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["lead_id", "erased", "already_erased", "removed"],
                                "properties": {
                                    "lead_id": {"type": "integer"},
                                    "erased": {"const": True},
                                    "already_erased": {"type": "boolean"},
                                    "removed": {
                                        "type": "object",
                                        "description": "Rows removed or emptied, by kind",
                                        "additionalProperties": {"type": "integer"},
                                    },
                                },
                            }
                        ),
                    },
                    "401": NO_LOGIN,
                    "403": KEY_OR_ADMIN,
                    "404": unknown,
                },
            }
        },
    }


def _paths() -> Json:
    redirect = {
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
    return {
        "/leads/tiktok": {
            "post": {
                "operationId": "tiktokLeads",
                **_intake(
                    "TikTok Instant Form leads (lead webhook)",
                    "Enabled by tiktok.app_secret. Up to 1,000 leads a delivery; deduped on "
                    "the lead id. Either signature header is accepted.",
                    {"$ref": "#/components/schemas/TikTokDelivery"},
                    [{"tiktokOpenSignature": []}, {"tiktokSignature": []}],
                ),
            }
        },
        "/leads": {
            "post": {
                "operationId": "relayLeads",
                "parameters": [
                    _param("source", "query", TEXT, "The relay (optional when only one is set)"),
                    _param("script", "query", TEXT, "The script, else routes and default decide"),
                ],
                **_intake(
                    "One lead as flat JSON (Zapier, LeadsBridge, Make, your API)",
                    "Enabled by relays.<name>. Deduped on (source, id).",
                    {"$ref": "#/components/schemas/RelayLead"},
                    [{"relayApiKey": []}, {"relayBearer": []}, {"relaySignature": []}],
                ),
            }
        },
        "/leads/google": {
            "post": {
                "operationId": "googleLeads",
                **_intake(
                    "Google Ads lead form webhook",
                    "Enabled by google.key; authenticated by the google_key in the body.",
                    {"$ref": "#/components/schemas/GoogleLead"},
                    [],
                ),
            }
        },
        "/f/{script}": {
            "parameters": [_param("script", "path", {"type": "string", "minLength": 1})],
            "get": {
                "operationId": "showForm",
                "tags": ["pages"],
                "summary": "The hosted lead form of a script",
                "description": "utm_* and ad ids in the query are kept as the lead's attribution.",
                "parameters": [_param(key, "query", TEXT) for key in ATTRIBUTION_KEYS],
                "responses": {"200": _html("The form"), **_errors(404, html=True)},
            },
            "post": {
                "operationId": "submitForm",
                "tags": ["pages"],
                "summary": "Submit the hosted form",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": FORM_FIELDS},
                        "multipart/form-data": {"schema": FORM_FIELDS},
                    },
                },
                "responses": {
                    "303": {"description": "Stored: on to the chooser of chat apps", **redirect},
                    "400": _error("The form again, saying what to correct", html=True),
                    **_errors(404, 413, 429, html=True),
                },
            },
        },
        "/r/{token}": {
            "get": {
                "operationId": "chooser",
                "tags": ["pages"],
                "summary": "The chooser: which chat app to continue in",
                "parameters": [_token()],
                "responses": {"200": _html("The chooser page"), **_errors(404, 410, html=True)},
            }
        },
        "/r/{token}/{app}": {
            "get": {
                "operationId": "openApp",
                "tags": ["pages"],
                "summary": "Redirect to the chat app's deep link",
                "parameters": [_token(), _param("app", "path", {"type": "string", "enum": APPS})],
                "responses": {
                    "302": {"description": "To the app's deep link", **redirect},
                    **_errors(404, 410, html=True),
                },
            }
        },
        "/a/{token}.ics": {
            "get": {
                "operationId": "appointmentCalendarFile",
                "tags": ["pages"],
                "summary": "A booked appointment as an iCalendar (RFC 5545) file",
                "description": "The link a booking's confirmation carries. No login: the signed "
                "token is the authority. A cancelled booking is STATUS:CANCELLED.",
                "parameters": [
                    _param(
                        "token",
                        "path",
                        {"type": "string", "minLength": 1},
                        "The signed token of an appointment (the link's name without .ics)",
                    )
                ],
                "responses": {
                    "200": {
                        "description": "One VEVENT, in UTC",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {"text/calendar": {"schema": {"type": "string"}}},
                    },
                    **_errors(404, 410),
                },
            }
        },
        "/chat/{token}": {
            "get": {
                "operationId": "webChat",
                "tags": ["web chat"],
                "summary": "The built-in web chat page (opens the conversation)",
                "parameters": [_token()],
                "responses": {"200": _html("The chat page"), **_errors(404, 410, html=True)},
            }
        },
        "/chat/{token}/messages": {
            "parameters": [_token()],
            "get": {
                "operationId": "chatMessages",
                "tags": ["web chat"],
                "summary": "The conversation's messages after a given id",
                "parameters": [AFTER],
                "responses": {
                    "200": {
                        "description": "Messages in order ([] before the chat is opened)",
                        "content": _json({"type": "array", "items": MESSAGE}),
                    },
                    **_errors(400, 404, 410),
                },
            },
            "post": {
                "operationId": "chatReply",
                "tags": ["web chat"],
                "summary": "Send the prospect's reply: text, or a tapped option",
                "requestBody": {
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/ChatReply"}),
                },
                "responses": {
                    "202": {
                        "description": "Taken: the bot's answer arrives as messages",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["ok"],
                                "properties": {"ok": {"const": True}},
                            }
                        ),
                    },
                    **_errors(400, 404, 410, 413, 415),
                },
            },
        },
        "/chat/{token}/events": {
            "get": {
                "operationId": "chatEvents",
                "tags": ["web chat"],
                "summary": "New messages as server-sent events",
                "description": (
                    "Each event has the message id as `id:` and the message (a ChatMessage) "
                    "as JSON `data:`. Resumes after `Last-Event-ID`, else after `after`."
                ),
                "parameters": [
                    _token(),
                    AFTER,
                    _param("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]*$"}),
                ],
                "responses": {
                    "200": {
                        "description": "An event stream that stays open",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 404, 410),
                },
            }
        },
        "/webhooks/telegram": {
            "post": {
                "operationId": "telegramUpdate",
                "tags": ["channels"],
                "summary": "Telegram Bot API webhook: one update",
                "description": (
                    "Enabled by telegram.token and telegram.webhook_secret. Deduped on the bot "
                    "and update_id; answered 200 once the turn is committed."
                ),
                "security": [{"telegramSecret": []}],
                "requestBody": {
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/TelegramUpdate"}),
                },
                "responses": {
                    "200": {
                        "description": "Taken (or a repeated update, ignored)",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["ok"],
                                "properties": {"ok": {"const": True}},
                            }
                        ),
                    },
                    **_errors(400, 403, 404, 413, 415),
                },
            }
        },
        "/webhooks/twilio": _twilio(
            "twilioMessage",
            "Twilio webhook: an SMS or WhatsApp message",
            "Enabled by twilio.account_sid and twilio.auth_token (403 until they are set). "
            "Deduped on MessageSid; answered once the turn is committed, with an empty TwiML "
            "<Response/>: leadbot replies through the REST API.",
            TWILIO_MESSAGE,
            {
                "200": {
                    "description": "Taken (or a repeated message, ignored)",
                    "content": {"text/xml": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/webhooks/twilio/status": _twilio(
            "twilioStatus",
            "Twilio status callback: a sent message's delivery",
            "The StatusCallback of every message leadbot sends. Moves the message's transcript "
            "line forward (queued, sent, delivered, read; failed and undelivered are final, "
            "with the error code); 21610 and 63014 stop all sending to the number.",
            TWILIO_STATUS,
            {"204": {"description": "Recorded (or about a message leadbot did not send)"}},
        ),
        "/webhooks/tiktok": {
            "post": {
                "operationId": "tiktokDirectMessage",
                "tags": ["channels"],
                "summary": "TikTok Business Messaging webhook: one Direct Message event",
                "description": (
                    "Enabled by tiktok.app_secret (404 until it is set), which signs the "
                    "TikTok-Signature header; a missing, wrong or stale signature is a 401. "
                    "Deduped on message_id; answered 200 once the turn is committed. Replies go "
                    "out through the Business Messaging API."
                ),
                "security": [{"tiktokSignature": []}],
                "requestBody": {
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/TikTokEvent"}),
                },
                "responses": {
                    "200": {
                        "description": "Taken (or a repeated or ignored event)",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["ok"],
                                "properties": {"ok": {"const": True}},
                            }
                        ),
                    },
                    **_errors(400, 401, 404, 413),
                },
            }
        },
        **_api_v1(),
        **crm_paths(),  # Zapier REST Hooks and lead polling
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["operations"],
                "summary": "Liveness: the process answers",
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                            }
                        ),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["operations"],
                "summary": "Readiness: the database answers and its schema is current",
                "responses": {
                    "200": {
                        "description": "Ready",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {
                                    "status": {"const": "ready"},
                                    "schema": {"type": "string"},
                                },
                            }
                        ),
                    },
                    "503": _error(
                        "Not ready: code database_unreachable or schema_outdated, and why"
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["operations"],
                "summary": "Prometheus metrics (text format 0.0.4)",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["operations"],
                "summary": "This description",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": _json({"type": "object"}),
                    }
                },
            }
        },
    }


def _version() -> str:
    try:
        return version("leadbot")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def openapi_document(settings: Settings) -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadbot",
            "version": _version(),
            "summary": "Lead-ad webhooks in, chat conversations out",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": settings.base_url}],
        "paths": _paths(),
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


def build_spec(settings: Settings) -> str:
    """The document as JSON text, built once at start."""
    return json.dumps(openapi_document(settings), indent=1)
