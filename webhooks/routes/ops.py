"""Operations: liveness, readiness, metrics, the OpenAPI description, and the observation of
every request (latency histogram, access line, request id in the logs)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from storage.migrate import current_revision, head_revision
from webhooks.http import REQUEST_ID, Handler, json_error
from webhooks.keys import DATABASE, SETTINGS
from webhooks.logs import CURRENT_REQUEST_ID, log_request
from webhooks.metrics import (
    CONTENT_TYPE,
    METRICS,
    exposition,
    method_label,
    new_metrics,
    observe_request,
    outbox_unknown,
    refresh_outbox,
    route_label,
)
from webhooks.openapi import build_spec

log = logging.getLogger("leadbot.ops")

HEAD_REVISION = web.AppKey("head_revision", str)
OPENAPI = web.AppKey("openapi", bytes)
READY_TIMEOUT = 2.0  # seconds: a probe that hangs is as bad as a failing one
CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer"


def setup(app: web.Application) -> None:
    app[METRICS] = new_metrics()
    # Read once at start: the migrations folder does not change while the process runs.
    app[HEAD_REVISION] = head_revision() or ""
    app[OPENAPI] = build_spec(app[SETTINGS]).encode()
    # Innermost, after errors_as_json: the request id is assigned by then, and every handler's
    # log records run inside the context it binds.
    app.middlewares.append(observe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request; record it in the latency histogram and write its access line."""
    started = time.perf_counter()
    request_id = request.get(REQUEST_ID)
    token = CURRENT_REQUEST_ID.set(request_id)
    status = 500  # what errors_as_json answers for an exception that is not an HTTP error
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        elapsed = time.perf_counter() - started
        observe_request(request.app, request, status, elapsed)
        log_request(method_label(request), route_label(request), status, elapsed, request_id)
        CURRENT_REQUEST_ID.reset(token)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Nothing else is checked, so a slow database never gets
    a healthy process restarted."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and its schema is the one this code needs."""
    database = request.app.get(DATABASE)
    if database is None:
        return json_error(503, "database_unreachable", "database unreachable: not opened yet")
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with database.reading() as connection:
                await connection.exec_driver_sql("SELECT 1")
            revision = await current_revision(database)
    except TimeoutError:
        return json_error(
            503,
            "database_unreachable",
            f"database unreachable: no answer within {READY_TIMEOUT:g} s",
        )
    except Exception as error:
        log.warning("readiness: database unreachable", exc_info=True)
        return json_error(
            503, "database_unreachable", f"database unreachable: {_first_line(error)}"
        )
    head = request.app[HEAD_REVISION]
    if revision != head:
        return json_error(
            503,
            "schema_outdated",
            f"schema at {revision or 'nothing'}, needs {head}: run `leadbot db upgrade`",
        )
    return web.json_response({"status": "ready", "schema": revision})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, from this application's registry; the outbox gauges are read
    from the database now, in one query."""
    app_metrics = request.app[METRICS]
    database = request.app.get(DATABASE)
    if database is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await refresh_outbox(app_metrics, database, datetime.now(UTC))
        except Exception:  # the other metrics are still worth serving
            outbox_unknown(app_metrics)
            log.warning("metrics: could not read the outbox", exc_info=True)
    return web.Response(body=exposition(app_metrics), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def _first_line(error: BaseException) -> str:
    """Enough to name the problem, without the SQL or parameters SQLAlchemy appends."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
