"""The OpenAPI description of /api/v1/hooks and /api/v1/leads (merged into webhooks/openapi)."""

from __future__ import annotations

from typing import Any

from bot.crm_records import EVENTS

Json = dict[str, Any]
ERROR = {"$ref": "#/components/schemas/Error"}
KEYS: list[Json] = [{"apiKey": []}, {"apiKeyHeader": []}, {"repSession": []}]
NULLABLE_TEXT = {"type": ["string", "null"]}


def _error(description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


NO_LOGIN = _error("No API key (or a wrong or revoked one), and no rep logged in")
BAD = _error("The input is invalid: the message names the field and what is wrong")

LEAD: Json = {
    "type": "object",
    "description": "A lead as CRM deliveries show it (docs/crm.md)",
    "required": ["id", "reference", "source", "submitted_at", "fields", "answers"],
    "properties": {
        "id": {"type": "integer"},
        "reference": {"type": "string"},
        "source": {"type": "string"},
        "external_id": {"type": "string"},
        "script": {"type": "string"},
        "is_test": {"type": "boolean"},
        "submitted_at": {"type": "string", "format": "date-time"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "phone": NULLABLE_TEXT,
        "email": NULLABLE_TEXT,
        "language": NULLABLE_TEXT,
        "attribution": {"type": "object", "additionalProperties": {"type": "string"}},
        "answers": {"type": "object"},
        "score": {"type": ["integer", "null"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "outcome": NULLABLE_TEXT,
        "qualified": {"type": ["boolean", "null"]},
        "consent": {"type": ["object", "null"]},
        "conversation_started_at": {"type": ["string", "null"], "format": "date-time"},
        "completed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


def crm_paths() -> Json:
    tags = ["crm"]
    return {
        "/api/v1/hooks": {
            "post": {
                "operationId": "subscribeHook",
                "tags": tags,
                "summary": "Subscribe a URL to one CRM event (Zapier REST Hooks)",
                "description": "Deliveries are signed with the secret in the answer, shown "
                "only there. target_url must be https unless crm.allow_http_hooks.",
                "security": KEYS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["target_url", "event"],
                                "properties": {
                                    "target_url": {"type": "string", "format": "uri"},
                                    "event": {"enum": list(EVENTS)},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Subscribed",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "target_url", "event", "secret"],
                                    "properties": {
                                        "id": {"type": "integer"},
                                        "target_url": {"type": "string"},
                                        "event": {"enum": list(EVENTS)},
                                        "secret": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": BAD,
                    "401": NO_LOGIN,
                    "413": _error("The body is too large"),
                    "415": _error("The body is not JSON"),
                },
            }
        },
        "/api/v1/hooks/{id}": {
            "delete": {
                "operationId": "unsubscribeHook",
                "tags": tags,
                "summary": "Unsubscribe a hook (a key deletes only the hooks it made)",
                "security": KEYS,
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "204": {"description": "Deleted"},
                    "401": NO_LOGIN,
                    "404": _error("No such hook for this caller"),
                },
            }
        },
        "/api/v1/leads": {
            "get": {
                "operationId": "listLeads",
                "tags": tags,
                "summary": "Leads newest first, for polling and Zapier's sample",
                "security": KEYS,
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "description": "Only leads submitted from then (ISO 8601)",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "next_cursor of the page before",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of leads",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["leads", "next_cursor"],
                                    "properties": {
                                        "leads": {"type": "array", "items": LEAD},
                                        "next_cursor": NULLABLE_TEXT,
                                    },
                                }
                            }
                        },
                    },
                    "400": BAD,
                    "401": NO_LOGIN,
                },
            }
        },
    }
