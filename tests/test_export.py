"""`leadbot db` and `leadbot export` against real databases, in constant memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from bot.ports import Transaction
from bot.records import NewLead
from storage.db import Database, connect
from storage.export import stream_leads
from storage.migrate import upgrade
from storage.tables import LeadRow
from storage.transactions import SqlStorage
from tests.conftest import NOW
from webhooks.cli import main
from webhooks.export import export_csv, export_jsonl
from webhooks.settings import load_settings


async def seed(database: Database) -> None:
    def work(tx: Transaction) -> None:
        for number, (outcome, answers) in enumerate(
            [
                ("qualified", {"budget": 25000, "model": "suv"}),
                ("nurture", {"model": "van"}),
                (None, {}),
            ]
        ):
            lead, _ = tx.leads.add(
                NewLead(
                    "tiktok",
                    f"t{number}",
                    "car",
                    NOW + timedelta(days=number),
                    {"first_name": f"N{number}", "city": "Madrid, Spain"},
                    attribution={"campaign_id": "c1", "campaign_name": "Spring"},
                    phone="+34612345678",
                ),
                f"REF{number}",
                NOW,
            )
            tx.leads.update_progress(
                lead.id,
                answers=answers,
                now=NOW,
                outcome=(outcome, 30, ["budget: +30"], outcome == "qualified") if outcome else None,
            )

    storage = SqlStorage(database)
    try:
        await storage.run(work)
    finally:
        await storage.close()


async def test_jsonl_has_answers_and_attribution(database: Database) -> None:
    await seed(database)
    out = io.StringIO()
    assert await export_jsonl(database, out, since=None, outcome=None) == 3
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["answers"] == {"budget": 25000, "model": "suv"}
    assert records[0]["attribution"] == {"campaign_id": "c1", "campaign_name": "Spring"}
    assert records[0]["reasons"] == ["budget: +30"]
    assert records[0]["submitted_at"] == "2026-01-05T10:00:00+00:00"


async def test_csv_has_a_column_per_field_answer_and_attribution(database: Database) -> None:
    await seed(database)
    out = io.StringIO()
    await export_csv(database, out, since=NOW + timedelta(hours=1), outcome=None)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["external_id"] for row in rows] == ["t1", "t2"]
    assert rows[0]["answer.model"] == "van"
    assert rows[1]["answer.model"] == ""  # a lead with no answer to it
    assert "answer.budget" not in rows[0]  # only t0 answered it, and --since left it out
    assert rows[0]["field.city"] == "Madrid, Spain"
    assert rows[0]["attribution.campaign_name"] == "Spring"
    assert rows[0]["outcome"] == "nurture"


async def test_outcome_filter(database: Database) -> None:
    await seed(database)
    found = [r["external_id"] async for r in stream_leads(database, outcome="qualified")]
    assert found == ["t0"]


async def _bulk(database: Database, count: int) -> None:
    rows = [
        {
            "source": "api",
            "external_id": f"bulk-{n}",
            "reference": f"B{n}",
            "script_id": "car",
            "is_test": False,
            "fields": {"first_name": "Ana", "email": f"a{n}@example.com"},
            "raw": {"payload": "x" * 200},
            "attribution": {"campaign_id": "c1"},
            "answers": {"budget": n, "model": "suv"},
            "reasons": ["a", "b"],
            "submitted_at": NOW,
            "updated_at": NOW,
        }
        for n in range(count)
    ]
    async with database.writing() as connection:
        await connection.execute(insert(LeadRow.__table__), rows)  # type: ignore[attr-defined]
        await connection.commit()


async def _peak_while_streaming(database: Database) -> int:
    tracemalloc.start()
    try:
        count = 0
        async for _record in stream_leads(database):
            count += 1
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_export_memory_does_not_grow_with_the_number_of_leads(tmp_path: Path) -> None:
    small = connect(f"sqlite+aiosqlite:///{tmp_path / 'small.db'}")
    large = connect(f"sqlite+aiosqlite:///{tmp_path / 'large.db'}")
    try:
        for database, count in ((small, 2_000), (large, 20_000)):
            await upgrade(database)
            await _bulk(database, count)
        small_peak = await _peak_while_streaming(small)
        large_peak = await _peak_while_streaming(large)
    finally:
        await small.dispose()
        await large.dispose()
    # Ten times the leads may not cost anywhere near ten times the memory.
    assert large_peak < 2 * small_peak, (small_peak, large_peak)


def test_db_upgrade_and_export_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    first = runner.invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "schema upgraded from empty to" in first.output
    assert "already current" in runner.invoke(main, ["db", "upgrade"]).output
    assert runner.invoke(main, ["db", "status"]).exit_code == 0
    exported = runner.invoke(main, ["export", "--format", "jsonl"])
    assert exported.exit_code == 0, exported.output
    assert "0 lead(s) exported" in exported.output


def test_bad_database_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_DATABASE_URL", "mysql://root@localhost/x")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert (
        "database_url (LEADBOT_DATABASE_URL): Value error, unsupported database 'mysql'"
        in result.output
    )


def test_unreachable_database_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_DATABASE_URL", "postgresql://leadbot:secret@127.0.0.1:1/nowhere")
    result = CliRunner().invoke(main, ["db", "status"])
    assert result.exit_code == 1
    assert (
        "cannot use the database postgresql+asyncpg://leadbot:***@127.0.0.1:1/nowhere"
        in result.output
    )
    assert "secret" not in result.output


def test_config_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "leadbot.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'from-file.db'}\n")
    assert load_settings(config).database_url.endswith("from-file.db")
    monkeypatch.setenv("LEADBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert load_settings(config).database_url.endswith("from-env.db")
