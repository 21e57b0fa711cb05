"""Analytics: the console's dashboard over 1,000,000 leads on PostgreSQL.

Run: `python -m bench.analytics --postgres URL [--leads 1000000]`. In a schema of its own
(dropped afterwards) it loads synthetic leads spread over 90 days with INSERT ... SELECT
generate_series: 5 campaigns, 20 ad groups, 60 ads, 4 channels; 90% contacted, 60% chatting,
40% completed, 20% qualified; two questions with their answers in the transcript, a reminder
in every fifth conversation. Then it times, median of several runs each:

- the summaries' full rebuild (once, as after an upgrade);
- the dashboard as /console/stats runs it (refresh, then the report split by campaign) when
  nothing changed, and after 1,000 leads of the last day changed (a busy minute);
- the report alone (the summaries' reads).

Baseline, in the same run on the same database: `SELECT count(*) FROM leads`, the least any
dashboard over these leads costs without summaries. Target (issue 10): the dashboard within a
second.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import text

from bot.funnel import Filters
from storage.analytics import report
from storage.analytics_refresh import refresh
from storage.db import Database, connect
from storage.migrate import upgrade

RUNS = 5
CHANGED = 1000  # leads touched before each "busy minute" dashboard
START = "2026-01-01"
SPAN_SECONDS = 90 * 86400

LEADS = """
INSERT INTO leads (source, external_id, reference, script_id, is_test, fields, raw, attribution,
    answers, reasons, submitted_at, first_contact_at, conversation_started_at, completed_at,
    outcome, qualified, updated_at)
SELECT 'tiktok', 'b' || g, 'R' || g, 'quote', false, '{{}}', '{{}}',
    jsonb_build_object('campaign_name', 'Campaign ' || (g % 5), 'adgroup_name',
        'Ad group ' || (g % 20), 'ad_name', 'Ad ' || (g % 60), 'form_name', 'Form ' || (g % 2)),
    '{{}}', '[]', ts,
    CASE WHEN g % 10 < 9 THEN ts + make_interval(secs => g % 97) END,
    CASE WHEN g % 10 < 6 THEN ts + make_interval(secs => g % 97) END,
    CASE WHEN g % 10 < 4 THEN ts + interval '5 minutes' END,
    CASE WHEN g % 10 < 4 THEN 'done' END,
    CASE WHEN g % 10 < 4 THEN g % 10 < 2 END,
    ts + interval '5 minutes'
FROM (SELECT g, timestamptz '{start}' + g * make_interval(secs => {step}) AS ts
      FROM generate_series(1, {count}) AS g) AS s
"""
CONVERSATIONS = """
INSERT INTO conversations (lead_id, channel, channel_user_id, script_id, script_version, status,
    mode, version, sent_since_inbound, abandoned_question, abandoned_at, created_at, updated_at)
SELECT id, (ARRAY['telegram', 'whatsapp', 'sms', 'web'])[id % 4 + 1], 'u' || id, 'quote', 'v1',
    CASE WHEN completed_at IS NOT NULL THEN 'completed' WHEN id % 7 = 0 THEN 'handed_off'
         ELSE 'expired' END,
    'bot', 0, 0,
    CASE WHEN completed_at IS NULL AND id % 7 <> 0 THEN 'email' END,
    CASE WHEN completed_at IS NULL AND id % 7 <> 0 THEN submitted_at + interval '1 day' END,
    conversation_started_at, updated_at
FROM leads WHERE conversation_started_at IS NOT NULL
"""
# Ask budget, reply; ask email; a reminder in every fifth; reply if completed. In time order.
MESSAGES = """
INSERT INTO messages (conversation_id, author, text, options, question_id, status, created_at)
SELECT c.id, m.author, m.text, '[]', m.question, m.status, c.created_at + m.after
FROM conversations c JOIN leads l ON l.id = c.lead_id
CROSS JOIN LATERAL (VALUES
    (1, 'bot', 'Budget?', 'budget', 'sent', interval '0 s', true),
    (2, 'prospect', '20k', NULL, 'received', make_interval(secs => 5 + c.id % 50), true),
    (3, 'bot', 'Email?', 'email', 'sent', make_interval(secs => 5 + c.id % 50), true),
    (4, 'bot', 'Still there?', NULL, 'sent', interval '1 hour', c.id % 5 = 0),
    (5, 'prospect', 'a@b.c', NULL, 'received', interval '2 hours', l.completed_at IS NOT NULL)
) AS m(seq, author, text, question, status, after, wanted)
WHERE m.wanted
ORDER BY c.id, m.seq
"""
NUDGES = """
INSERT INTO outbox (kind, idempotency_key, conversation_id, message_id, payload, status, due_at,
    attempts, created_at)
SELECT 'send_text', 'message-' || id, conversation_id, id, '{"reminder": "nudge"}', 'sent',
    created_at, 1, created_at
FROM messages WHERE text = 'Still there?'
"""
TOUCH = """
UPDATE leads SET first_contact_at = coalesce(first_contact_at, submitted_at),
    updated_at = updated_at + interval '1 second'
WHERE id IN (SELECT id FROM leads ORDER BY id DESC LIMIT {count})
"""


async def _timed(work: Callable[[], Awaitable[object]], runs: int = RUNS) -> float:
    """The median of `runs` runs, in seconds."""
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        took.append(time.perf_counter() - start)
    return statistics.median(took)


async def _execute(database: Database, *statements: str) -> None:
    async with database.engine.connect() as connection:
        for statement in statements:
            await connection.execute(text(statement))
        await connection.commit()


async def _load(database: Database, count: int) -> None:
    step = SPAN_SECONDS / count
    await _execute(
        database,
        "INSERT INTO script_versions (version, script_id, source, created_at) "
        "VALUES ('v1', 'quote', '', now())",
        LEADS.format(start=START, step=step, count=count),
        CONVERSATIONS,
        MESSAGES,
        NUDGES,
    )
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


async def run(url: str, count: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = connect(url)
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = connect(url, schema=schema)
    try:
        await upgrade(database)
        started = time.perf_counter()
        await _load(database, count)
        loaded = time.perf_counter() - started
        async with database.engine.connect() as connection:
            sizes = {
                name: (await connection.execute(text(f"SELECT count(*) FROM {name}"))).scalar()
                for name in ("leads", "conversations", "messages", "outbox")
            }
        print(f"loaded in {loaded:.1f} s: " + ", ".join(f"{n:,} {t}" for t, n in sizes.items()))

        async def baseline() -> None:
            async with database.reading() as connection:
                await connection.execute(text("SELECT count(*) FROM leads"))

        now = datetime.now(UTC)
        build_start = time.perf_counter()
        built = await refresh(database, now, rebuild=True)
        build = time.perf_counter() - build_start

        async def dashboard() -> None:
            await refresh(database, now)
            await report(database, Filters(), "campaign")

        async def busy_dashboard() -> None:
            await _execute(database, TOUCH.format(count=CHANGED))
            await dashboard()

        async def touch() -> None:
            await _execute(database, TOUCH.format(count=CHANGED))

        async def report_only() -> None:
            await report(database, Filters(), "campaign")

        base = await _timed(baseline)
        quiet = await _timed(dashboard)
        # A busy minute: the touch itself is timed apart and taken off.
        busy = await _timed(busy_dashboard) - await _timed(touch)
        reads = await _timed(report_only)
        async with database.engine.connect() as connection:
            rows = (await connection.execute(text("SELECT count(*) FROM funnel_days"))).scalar()
        print(f"summary: {rows:,} rows over {built.days} days")
        print()
        print("| figure | leadbot | baseline: count(*) of leads | ratio |")
        print("| --- | --- | --- | --- |")
        for name, took in [
            ("dashboard, nothing new (refresh + report by campaign)", quiet),
            (f"dashboard after {CHANGED:,} leads of the last day changed", busy),
            ("report alone (summary reads)", reads),
            ("full rebuild of the summaries (once)", build),
        ]:
            print(
                f"| {name} | {took * 1000:,.1f} ms | {base * 1000:,.1f} ms | {took / base:.2f}x |"
            )
    finally:
        await database.dispose()
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="postgresql://... (a schema is made)")
    parser.add_argument("--leads", type=int, default=1_000_000)
    options = parser.parse_args()
    asyncio.run(run(options.postgres, options.leads))


if __name__ == "__main__":
    main()
