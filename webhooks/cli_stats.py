"""`leadbot stats` and `leadbot forecast`: the funnel and the lead forecast, as terminal tables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from bot.forecast import Forecast, ForecastError, Interval, forecast, observed_from
from bot.funnel import (
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
from storage.db import Database, is_sqlite
from storage.errors import StorageError
from storage.migrate import ensure_current
from webhooks.cli_data import CONFIG, _with_database

T = TypeVar("T")
KEYS = tuple(name for name in DIMENSIONS if name != "day")
DAY = click.DateTime(formats=["%Y-%m-%d"])


def _with_summaries(config: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` once the summaries are current (the schema too, on SQLite)."""

    async def run(database: Database) -> T:
        await ensure_current(database, auto_upgrade=is_sqlite(database.url))
        await refresh(database, datetime.now(UTC))
        return await work(database)

    try:
        return _with_database(config, run)
    except StorageError as error:
        raise click.ClickException(str(error)) from None


def _filters(since: datetime | None, until: datetime | None, where: Sequence[str]) -> Filters:
    chosen: dict[str, str] = {}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise click.BadParameter(
                f"{item!r}: use KEY=VALUE with KEY one of {', '.join(KEYS)}", param_hint="--where"
            )
        chosen[key] = value
    return Filters(
        since=since.date() if since else None,
        until=until.date() if until else None,
        **chosen,
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; numbers (all but the first column) to the right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def percent(part: int, whole: int) -> str:
    share = rate(part, whole)
    return "-" if share is None else f"{share:.0%}"


def render_stats(found: FunnelReport) -> str:
    total = found.total
    blocks = []
    stage_rows = []
    previous = total.submitted
    for name, label in STAGES:
        count = total.stage(name)
        # Stages up to "qualified" nest; a handoff or a booking can come at any point.
        step = percent(count, previous) if name in NESTED else "-"
        stage_rows.append([label, str(count), percent(count, total.submitted), step])
        previous = count
    blocks.append("Funnel\n" + table(["stage", "leads", "of submitted", "of previous"], stage_rows))
    if found.by is not None:
        headers = [found.by, *(label for _, label in STAGES)]
        rows = [
            [group.key or "(none)", *(str(group.counts.stage(name)) for name, _ in STAGES)]
            for group in found.groups
        ]
        blocks.append(f"By {found.by}\n" + table(headers, rows))
    question_rows = [
        [
            stat.question,
            str(stat.asked),
            str(stat.answered),
            str(stat.abandoned),
            percent(stat.abandoned, stat.asked),
            duration(round(stat.median_seconds, 1)) if stat.median_seconds is not None else "-",
        ]
        for stat in found.questions
    ]
    headers = ["question", "asked", "answered", "went silent", "drop-off", "median answer"]
    blocks.append("Questions\n" + table(headers, question_rows))
    contacted = sum(found.speed_histogram)
    speed_rows = [
        [label, str(count), percent(count, contacted)]
        for label, count in zip(bucket_labels(SPEED_BOUNDS), found.speed_histogram, strict=True)
    ]
    median = found.median_speed_seconds
    blocks.append(
        "Speed to lead (form submitted to first bot message)\n"
        + table(["within", "leads", "share"], speed_rows)
        + f"\nmedian: {duration(round(median, 1)) if median is not None else '-'}"
    )
    blocks.append(
        f"Reminders: {total.reminded} silent lead(s) reminded, {total.came_back} came back "
        f"({percent(total.came_back, total.reminded)})"
    )
    return "\n\n".join(blocks)


@click.command("stats")
@CONFIG
@click.option("--by", type=click.Choice(DIMENSIONS), default=None, help="Split the funnel.")
@click.option("--since", type=DAY, default=None, help="Leads submitted from this day (UTC).")
@click.option("--until", type=DAY, default=None, help="Leads submitted up to this day (UTC).")
@click.option(
    "--where", multiple=True, metavar="KEY=VALUE", help="Only these leads, e.g. campaign=Spring."
)
def stats(
    config: Path | None,
    by: str | None,
    since: datetime | None,
    until: datetime | None,
    where: tuple[str, ...],
) -> None:
    """The funnel, drop-off per question, speed to lead and reminders (docs/analytics.md)."""
    filters = _filters(since, until, where)

    async def work(database: Database) -> FunnelReport:
        return await report(database, filters, by)

    click.echo(render_stats(_with_summaries(config, work)))


def _interval(value: Interval) -> str:
    return f"{value.point:.1f} ({value.low:g}-{value.high:g})"


def render_forecast(found: Forecast, by: str) -> str:
    where = "observed: spend / submissions" if found.cost_observed else "entered"
    lines = [
        f"Daily budget {found.budget:.2f} at {found.cost_per_lead:.2f} per submission ({where}); "
        "a day's forecast with its 90% interval",
    ]
    rows = [
        [
            group.key or "(none)",
            f"{group.budget:.2f}",
            _interval(group.submissions),
            _interval(group.completed),
            _interval(group.qualified),
        ]
        for group in found.groups
    ]
    rows.append(
        [
            "all",
            f"{found.budget:.2f}",
            _interval(found.submissions),
            _interval(found.completed),
            _interval(found.qualified),
        ]
    )
    headers = [by, "budget", "submissions", "completed", "qualified"]
    lines.append(table(headers, rows))
    lines += [f"warning: {warning}" for warning in found.warnings]
    return "\n".join(lines)


@click.command("forecast")
@CONFIG
@click.option("--budget", type=float, required=True, help="The daily budget.")
@click.option("--cost-per-lead", type=float, default=None, help="Cost per form submission.")
@click.option("--spend", type=float, default=None, help="Or: the ad spend of the period.")
@click.option("--by", type=click.Choice(KEYS), default="adgroup", show_default=True)
@click.option("--since", type=DAY, default=None, help="Learn from leads from this day (UTC).")
@click.option("--until", type=DAY, default=None, help="Learn from leads up to this day (UTC).")
@click.option("--where", multiple=True, metavar="KEY=VALUE", help="Only these leads.")
def forecast_command(
    *,
    config: Path | None,
    budget: float,
    cost_per_lead: float | None,
    spend: float | None,
    by: str,
    since: datetime | None,
    until: datetime | None,
    where: tuple[str, ...],
) -> None:
    """Forecast a day's submissions, completed and qualified leads for a daily budget."""
    filters = _filters(since, until, where)

    async def work(database: Database) -> FunnelReport:
        return await report(database, filters, by)

    found = _with_summaries(config, work)
    try:
        result = forecast(
            budget, observed_from(found.groups), cost_per_lead=cost_per_lead, spend=spend
        )
    except ForecastError as error:
        raise click.UsageError(str(error)) from None
    click.echo(render_forecast(result, by))
