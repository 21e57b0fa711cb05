"""Prometheus metrics, in a registry of the application's own (no module-level globals)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy import text

from storage.db import Database
from storage.types import UTCDateTime

# The classic text format, which `generate_latest` writes (names escaped to underscores).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From 1 ms (a cached page) to 10 s (a stuck database): SQLite intake sits around 5-50 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # the route label of requests no route matched: never the raw path
# Any token is a valid HTTP method, so the label keeps the standard ones and folds the rest.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# One query for both outbox gauges; `oldest` is typed so SQLite's text comes back a datetime.
_OUTBOX_QUERY = text(
    "SELECT count(*) AS depth, min(created_at) AS oldest FROM outbox WHERE status = 'pending'"
).columns(oldest=UTCDateTime)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    intake: Counter
    requests: Histogram
    turns: Counter
    outbox_depth: Gauge
    outbox_oldest_age: Gauge


def new_metrics() -> Metrics:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # CPU, memory, open files: read at scrape time
    GCCollector(registry=registry)
    return Metrics(
        registry=registry,
        intake=Counter(
            "leadbot_intake",
            "Leads received, by source and result (created, duplicate or an error code)",
            ["source", "result"],
            registry=registry,
        ),
        requests=Histogram(
            "leadbot_http_request_duration_seconds",
            "HTTP request latency, by route pattern, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        turns=Counter(
            "leadbot_turns",
            "Conversation turns applied, by channel",
            ["channel"],
            registry=registry,
        ),
        outbox_depth=Gauge(
            "leadbot_outbox_pending",
            "Outbox rows waiting to be sent (read from the database at scrape time)",
            registry=registry,
        ),
        outbox_oldest_age=Gauge(
            "leadbot_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row; 0 when none is pending (read at scrape time)",
            registry=registry,
        ),
    )


METRICS = web.AppKey("metrics", Metrics)


def count_intake(app: web.Application, source: str, result: str) -> None:
    app[METRICS].intake.labels(source=source, result=result).inc()


def count_turn(app: web.Application, channel: str) -> None:
    app[METRICS].turns.labels(channel=channel).inc()


def route_label(request: web.Request) -> str:
    """The pattern of the route that matched ("/r/{token}"): bounded, and free of tokens."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def method_label(request: web.Request) -> str:
    return request.method if request.method in METHODS else "other"


def observe_request(
    app: web.Application, request: web.Request, status: int, seconds: float
) -> None:
    app[METRICS].requests.labels(
        route=route_label(request), method=method_label(request), status=str(status)
    ).observe(seconds)


async def refresh_outbox(metrics: Metrics, database: Database, now: datetime) -> None:
    """Set the outbox gauges from one query (the caller calls `outbox_unknown` if it fails)."""
    async with database.reading() as connection:
        row = (await connection.execute(_OUTBOX_QUERY)).one()
    metrics.outbox_depth.set(row.depth)
    oldest: datetime | None = row.oldest
    metrics.outbox_oldest_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def outbox_unknown(metrics: Metrics) -> None:
    """NaN when the database does not answer: a dashboard shows a gap, not a stale number."""
    metrics.outbox_depth.set(math.nan)
    metrics.outbox_oldest_age.set(math.nan)


def exposition(metrics: Metrics) -> bytes:
    return generate_latest(metrics.registry)
