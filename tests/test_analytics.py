"""The funnel on a known data set (tests/analytics_data.py), on SQLite and PostgreSQL: the
summaries' refresh, grouping, date ranges, drop-off and medians, the CLI and the dashboard."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_aiohttp import AiohttpClient
from sqlalchemy import text, update

from bot.catalog import LoadedScript, ScriptCatalog
from bot.funnel import Filters, FunnelCounts
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.records import NewLead
from bot.scheduler import TimerRunner
from bot.service import ConversationService
from storage.analytics import report
from storage.analytics_refresh import refresh
from storage.db import Database, connect
from storage.migrate import upgrade
from storage.transactions import SqlStorage
from tests.analytics_data import DAY1, DAY2, L, at, write_known_funnel
from tests.conftest import NOW, FakeClock
from tests.console_support import Browser, database_url_sync, running_console
from webhooks.cli import main
from webhooks.keys import DATABASE


async def _known(database: Database) -> None:
    await write_known_funnel(database)
    await refresh(database, NOW)


def _expected_total() -> FunnelCounts:
    return FunnelCounts(
        submitted=6,
        reached=5,
        started=4,
        completed=2,
        qualified=1,
        handed_off=2,
        booked=1,
        reminded=2,
        came_back=1,
    )


async def test_the_funnel_counts_each_stage_and_leaves_test_leads_out(database: Database) -> None:
    await _known(database)
    found = await report(database, Filters())
    assert found.total == _expected_total()
    assert found.groups == ()


async def test_a_booked_appointment_counts_at_the_last_stage(database: Database) -> None:
    await _known(database)
    assert (await report(database, Filters())).total.booked == 1


async def test_the_funnel_splits_by_campaign_name_or_id_and_by_channel(database: Database) -> None:
    await _known(database)
    by_campaign = await report(database, Filters(), "campaign")
    assert {group.key: group.counts.submitted for group in by_campaign.groups} == {
        "Spring": 4,
        "123": 1,  # Google gives ids only
        "": 1,
    }
    spring = next(group for group in by_campaign.groups if group.key == "Spring")
    assert (spring.counts.started, spring.counts.completed, spring.counts.handed_off) == (4, 2, 2)
    by_channel = await report(database, Filters(), "channel")
    assert {group.key: group.counts.submitted for group in by_channel.groups} == {
        "telegram": 2,
        "whatsapp": 1,
        "web": 1,
        "": 2,  # never chatted
    }
    by_adgroup = await report(database, Filters(campaign="Spring"), "adgroup")
    assert {group.key: group.counts.submitted for group in by_adgroup.groups} == {"A": 3, "B": 1}


async def test_a_date_range_counts_the_leads_submitted_in_it(database: Database) -> None:
    await _known(database)
    second = await report(database, Filters(since=DAY2))
    assert (second.total.submitted, second.total.reached, second.total.came_back) == (3, 2, 1)
    first = await report(database, Filters(until=DAY1))
    assert (first.total.submitted, first.total.completed) == (3, 2)
    assert (await report(database, Filters(since=DAY2, until=DAY1))).total.submitted == 0
    days = (await report(database, Filters(), "day")).days
    assert [(day.day, day.submitted, day.qualified) for day in days] == [
        (DAY1, 3, 1),
        (DAY2, 3, 0),
    ]


async def test_drop_off_and_the_median_time_to_answer_per_question(database: Database) -> None:
    await _known(database)
    questions = {stat.question: stat for stat in (await report(database, Filters())).questions}
    budget, email = questions["budget"], questions["email"]
    assert (budget.asked, budget.answered, budget.abandoned) == (4, 4, 0)
    assert (email.asked, email.answered, email.abandoned) == (2, 1, 1)
    # budget: 8 s, 17 s, 20 s and 5,398 s; halfway lies in the 10-20 s bucket (two answers).
    assert budget.answer_histogram[1:3] == (1, 2)
    assert budget.median_seconds == 15.0
    assert email.median_seconds == 45.0  # the one answer, 60 s, read off the 30-60 s bucket
    # A channel filter applies to the conversation's own channel.
    whatsapp = (await report(database, Filters(channel="whatsapp"))).questions
    assert {stat.question: stat.abandoned for stat in whatsapp} == {"budget": 0, "email": 1}


async def test_speed_to_lead_is_counted_by_bucket(database: Database) -> None:
    await _known(database)
    found = await report(database, Filters())
    # 2 s and 3 s; 8 s; 40 s; 600 s. Lead 4 was never contacted.
    assert found.speed_histogram == (2, 1, 0, 1, 0, 1, 0, 0, 0)
    assert found.median_speed_seconds == 7.5


async def test_a_refresh_sums_again_only_the_days_that_changed(database: Database) -> None:
    await _known(database)
    again = await refresh(database, NOW)
    assert not again.rebuilt
    # Lead 4 (day 2) is contacted much later: only its day is summed again, and it shows.
    later = at(DAY2, 23)
    async with database.writing() as connection:
        await connection.execute(
            update(L)
            .where(L.c.source == "form")
            .values(first_contact_at=later, updated_at=later + timedelta(hours=1))
        )
        await connection.commit()
    done = await refresh(database, NOW)
    assert (done.days, done.rebuilt) == (1, False)
    found = await report(database, Filters())
    assert found.total.reached == 6
    assert found.speed_histogram[-2] == 1  # 11 hours: within a day
    rebuilt = await refresh(database, NOW, rebuild=True)
    assert rebuilt.rebuilt
    assert await report(database, Filters()) == found


async def test_a_split_by_an_unknown_dimension_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="cannot split"):
        await report(database, Filters(), "colour")


# -- the command line -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def known_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_sync(request.param, tmp_path) as url:

        async def load() -> None:
            database = connect(url)
            try:
                await upgrade(database)
                await write_known_funnel(database)
            finally:
                await database.dispose()

        asyncio.run(load())
        monkeypatch.setenv("LEADBOT_DATABASE_URL", url)
        yield url


def test_leadbot_stats_prints_the_funnel_split_by_campaign(known_url: str) -> None:
    result = CliRunner().invoke(main, ["stats", "--by", "campaign", "--since", "2026-01-05"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Funnel"
    assert lines[3].split() == ["submitted", "6", "100%", "100%"]
    assert "completed                    2           33%          50%" in result.output
    spring = next(line for line in lines if line.startswith("Spring"))
    assert spring.split()[:4] == ["Spring", "4", "4", "4"]
    email = next(line for line in lines if line.startswith("email"))
    assert email.split() == ["email", "2", "1", "1", "50%", "45", "s"]
    assert "median: 7.5 s" in result.output
    assert "Reminders: 2 silent lead(s) reminded, 1 came back (50%)" in result.output


def test_leadbot_stats_refuses_a_bad_filter(known_url: str) -> None:
    result = CliRunner().invoke(main, ["stats", "--where", "colour=red"])
    assert result.exit_code == 2
    assert "KEY one of source, campaign" in result.output


def test_leadbot_forecast_prints_each_ad_group_and_warns(known_url: str) -> None:
    result = CliRunner().invoke(main, ["forecast", "--budget", "50", "--cost-per-lead", "4.2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Daily budget 50.00 at 4.20 per submission (entered)")
    everything = next(line for line in lines if line.startswith("all"))
    assert everything.split()[:3] == ["all", "50.00", "11.9"]
    # Ad group A had half the submissions: half the budget, below 10 x 4.20.
    assert "warning: ad group A: a daily budget of 25.00 is below 10 times" in result.output
    assert "the whole budget" not in result.output
    low = CliRunner().invoke(main, ["forecast", "--budget", "30", "--spend", "25.2"])
    assert low.exit_code == 0, low.output
    assert "at 4.20 per submission (observed" in low.output
    assert "warning: the whole budget: a daily budget of 30.00 is below" in low.output
    missing = CliRunner().invoke(main, ["forecast", "--budget", "30"])
    assert missing.exit_code == 2
    assert "give the cost per lead" in missing.output


# -- the dashboard ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_dashboard_draws_the_funnel_and_offers_csv(
    aiohttp_client: AiohttpClient, tmp_path: Path, kind: str
) -> None:
    async with running_console(aiohttp_client, tmp_path, kind) as console:
        await write_known_funnel(console.client.app[DATABASE])
        nobody = await console.request("GET", "/console/stats", Browser())
        assert nobody.status == 303
        assert nobody.headers["Location"].startswith("/console/login?next=")
        await console.add_rep("ana@example.com")
        ana = await console.logged_in("ana@example.com")
        page = await console.request(
            "GET", "/console/stats?by=campaign&budget=50&cost_per_lead=4.2", ana
        )
        assert page.status == 200, await page.text()
        html = await page.text()
        assert html.count("<svg") == 4  # funnel, days, drop-off, speed to lead
        assert "<title>Leads at each stage</title>" in html
        assert 'href="/console/stats"' in html  # the navigation
        assert "below 10 times the cost per lead" in html
        assert "2 silent lead(s) got a reminder; 1 wrote again after it (50%)" in html
        assert "src=" not in html  # nothing loaded from anywhere
        funnel = await console.request("GET", "/console/stats.csv?by=campaign", ana)
        assert funnel.status == 200
        assert funnel.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await funnel.text())))
        assert {row["campaign"]: row["submitted"] for row in rows} == {
            "Spring": "4",
            "123": "1",
            "": "1",
            "(all)": "6",
        }
        questions = await console.request("GET", "/console/stats.csv?table=questions", ana)
        parsed = list(csv.DictReader(io.StringIO(await questions.text())))
        assert [(row["question"], row["went_silent"]) for row in parsed] == [
            ("budget", "0"),
            ("email", "1"),
        ]
        bad = await console.request("GET", "/console/stats?since=yesterday", ana)
        assert bad.status == 400
        assert "since must be a day" in await bad.text()


async def test_a_cancelled_booking_leaves_the_funnel_at_the_next_refresh(
    database: Database,
) -> None:
    await _known(database)
    cancelled = at(DAY2, 23)
    async with database.writing() as connection:
        await connection.execute(
            text(
                "UPDATE appointments SET status = 'cancelled', seat = NULL, cancelled_at = :at "
                "WHERE status = 'booked'"
            ),
            {"at": cancelled},
        )
        await connection.commit()
    done = await refresh(database, NOW)
    assert done.days >= 1
    assert (await report(database, Filters())).total.booked == 0


HANDOFF_SCRIPT = """\
id: quote
name: Quote
languages: [en]
questions:
  - id: budget
    type: text
    prompt: Your budget?
outcomes:
  - id: done
handoff:
  timeout: 1m
"""


async def test_a_handoff_nobody_took_in_time_still_counts_as_handed_off(
    database: Database,
) -> None:
    # A real conversation, not rows written by hand: the prospect asks for a person, no rep
    # comes, the bot goes on. The funnel must still see the handoff.
    storage = SqlStorage(database)
    clock = FakeClock()
    catalog = ScriptCatalog([LoadedScript(load_script(HANDOFF_SCRIPT), HANDOFF_SCRIPT)])
    service = ConversationService(storage, catalog, clock)
    new = NewLead("api", "h-1", "quote", NOW, {"first_name": "Kim"})
    lead = await storage.run(lambda tx: tx.leads.add(new, "RHAND1", NOW)[0].id)
    started = await service.start(lead, channel="telegram", channel_user_id="5")
    await service.handle(started.conversation_id, TextReceived("agent"))
    clock.advance(minutes=2)
    assert await TimerRunner(storage, service, clock).run_once() == 1
    await storage.close()
    await refresh(database, clock())
    assert (await report(database, Filters())).total.handed_off == 1
