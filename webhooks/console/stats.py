"""The console's dashboard (GET /console/stats): the funnel, drop-off per question, speed to
lead, reminders and the lead forecast, with SVG charts and CSV downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.forecast import Forecast, ForecastError, forecast, observed_from
from bot.funnel import (
    ANSWER_BOUNDS,
    DIMENSIONS,
    NESTED,
    SPEED_BOUNDS,
    STAGES,
    Filters,
    FunnelReport,
    bucket_labels,
    duration,
    rate,
)
from storage.analytics import report
from storage.analytics_refresh import refresh
from webhooks.console.auth import current_rep, login_required, refuse
from webhooks.console.csrf import csrf_token
from webhooks.console.pages import console_page
from webhooks.console.stats_svg import Bar, columns, horizontal_bars
from webhooks.keys import CONSOLE_CLOCK, DATABASE

KEYS = tuple(name for name in DIMENSIONS if name != "day")
TABLES = ("funnel", "questions", "speed")
MAX_TEXT = 200


class BadQueryError(ValueError):
    pass


def _day(query: Any, name: str) -> date | None:
    text = query.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a day like 2026-01-31, not {text[:20]!r}") from None


def _amount(query: Any, name: str) -> float | None:
    text = query.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a number, not {text[:20]!r}") from None
    if not 0 < value < 1e9:
        raise BadQueryError(f"{name} must be more than 0")
    return value


def _read(query: Any) -> tuple[Filters, str | None]:
    by = query.get("by", "") or None
    if by is not None and by not in DIMENSIONS:
        raise BadQueryError(f"by must be one of {', '.join(DIMENSIONS)}")
    chosen = {key: query[key][:MAX_TEXT] for key in KEYS if query.get(key, "")}
    filters = Filters(since=_day(query, "since"), until=_day(query, "until"), **chosen)
    return filters, by


async def _current(request: web.Request, filters: Filters, by: str | None) -> FunnelReport:
    database = request.app[DATABASE]
    await refresh(database, request.app[CONSOLE_CLOCK]())
    return await report(database, filters, by)


def _pct(part: int, whole: int) -> str:
    share = rate(part, whole)
    return "" if share is None else f"{share:.0%}"


def _charts(found: FunnelReport) -> dict[str, Any]:
    total = found.total
    funnel = [
        Bar(label, total.stage(name), _pct(total.stage(name), total.submitted))
        for name, label in STAGES
    ]
    silent = [
        Bar(stat.question, stat.abandoned, _pct(stat.abandoned, stat.asked))
        for stat in found.questions
    ]
    speed = [
        Bar(label, count)
        for label, count in zip(bucket_labels(SPEED_BOUNDS), found.speed_histogram, strict=True)
    ]
    days = [Bar(day.day.isoformat()[5:], day.submitted) for day in found.days[-90:]]
    return {
        "funnel_chart": horizontal_bars("Leads at each stage", funnel),
        "dropoff_chart": horizontal_bars("Conversations that went silent at each question", silent)
        if silent
        else None,
        "speed_chart": columns("Speed to lead", speed),
        "days_chart": columns("Submissions per day", days, every=max(len(days) // 8, 1))
        if days
        else None,
    }


def _forecast(request: web.Request, found: FunnelReport) -> tuple[Forecast | None, str | None]:
    query = request.query
    budget = _amount(query, "budget")
    if budget is None:
        return None, None
    try:
        return (
            forecast(
                budget,
                observed_from(found.groups),
                cost_per_lead=_amount(query, "cost_per_lead"),
                spend=_amount(query, "spend"),
            ),
            None,
        )
    except ForecastError as error:
        return None, str(error)


@login_required
async def stats_page(request: web.Request) -> web.StreamResponse:
    try:
        filters, by = _read(request.query)
        # The forecast is per ad group unless the page is split otherwise.
        wanted_budget = bool(request.query.get("budget", "").strip())
        split = by or ("adgroup" if wanted_budget else None)
        if split == "day" and wanted_budget:
            split = "adgroup"
        found = await _current(request, filters, split)
        planned, problem = _forecast(request, found)
    except BadQueryError as error:
        return refuse(request, 400, "bad_request", str(error))
    total = found.total
    stages = []
    previous = total.submitted
    for name, label in STAGES:
        count = total.stage(name)
        stages.append(
            {
                "label": label,
                "count": count,
                "of_submitted": _pct(count, total.submitted),
                "of_previous": _pct(count, previous) if name in NESTED else "",
            }
        )
        previous = count
    questions = [
        {
            "question": stat.question,
            "asked": stat.asked,
            "answered": stat.answered,
            "abandoned": stat.abandoned,
            "dropoff": _pct(stat.abandoned, stat.asked),
            "median": duration(round(stat.median_seconds, 1))
            if stat.median_seconds is not None
            else "",
        }
        for stat in found.questions
    ]
    kept = {key: value for key, value in request.query.items() if value}
    median = found.median_speed_seconds
    return console_page(
        request,
        "console_stats.html",
        title="Stats",
        rep=await current_rep(request),
        csrf_token=csrf_token(request),
        query=kept,
        dimensions=DIMENSIONS,
        keys=KEYS,
        by=split,
        stages=stages,
        groups=found.groups,
        stage_names=[name for name, _ in STAGES],
        stage_labels=[label for _, label in STAGES],
        questions=questions,
        total=total,
        came_back_share=_pct(total.came_back, total.reminded),
        median_speed=duration(round(median, 1)) if median is not None else "",
        forecast=planned,
        forecast_problem=problem,
        csv_links={
            table: "/console/stats.csv?" + urlencode({**kept, "table": table}) for table in TABLES
        },
        **_charts(found),
    )


def _csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def report_csv(found: FunnelReport, table: str) -> str:
    if table == "questions":
        labels = bucket_labels(ANSWER_BOUNDS)
        return _csv(
            ["question", "asked", "answered", "went_silent", "median_seconds", *labels],
            [
                [
                    stat.question,
                    stat.asked,
                    stat.answered,
                    stat.abandoned,
                    "" if stat.median_seconds is None else round(stat.median_seconds, 1),
                    *stat.answer_histogram,
                ]
                for stat in found.questions
            ],
        )
    if table == "speed":
        return _csv(
            ["within", "leads"],
            list(zip(bucket_labels(SPEED_BOUNDS), found.speed_histogram, strict=True)),
        )
    names = [name for name, _ in STAGES] + ["reminded", "came_back"]
    rows: list[list[Any]] = [
        [group.key, *(group.counts.stage(name) for name in names)] for group in found.groups
    ]
    rows.append(["(all)", *(found.total.stage(name) for name in names)])
    return _csv([found.by or "group", *names], rows)


@login_required
async def stats_csv(request: web.Request) -> web.StreamResponse:
    table = request.query.get("table", "funnel")
    if table not in TABLES:
        return refuse(request, 400, "bad_request", f"table must be one of {', '.join(TABLES)}")
    try:
        filters, by = _read(request.query)
    except BadQueryError as error:
        return refuse(request, 400, "bad_request", str(error))
    found = await _current(request, filters, by)
    return web.Response(
        text=report_csv(found, table),
        content_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="leadbot-{table}.csv"',
            "Cache-Control": "no-store",
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/console/stats", stats_page)
    app.router.add_get("/console/stats.csv", stats_csv)
