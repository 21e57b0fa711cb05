"""`leadbot export`: leads as CSV or JSON lines, written as they are read."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, TextIO

from storage.db import Database
from storage.export import BASE_COLUMNS, extra_columns, stream_leads


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def export_jsonl(
    database: Database, out: TextIO, *, since: datetime | None, outcome: str | None
) -> int:
    count = 0
    async for record in stream_leads(database, since=since, outcome=outcome):
        out.write(json.dumps(record, ensure_ascii=False, default=_cell) + "\n")
        count += 1
    return count


async def export_csv(
    database: Database, out: TextIO, *, since: datetime | None, outcome: str | None
) -> int:
    # Two passes keep memory flat: one for the header's keys, one for the rows.
    fields, answers, attribution = await extra_columns(database, since=since, outcome=outcome)
    writer = csv.writer(out)
    writer.writerow(
        [
            *BASE_COLUMNS,
            *(f"field.{k}" for k in fields),
            *(f"answer.{k}" for k in answers),
            *(f"attribution.{k}" for k in attribution),
        ]
    )
    count = 0
    async for record in stream_leads(database, since=since, outcome=outcome):
        writer.writerow(
            [
                *(_cell(record[c]) for c in BASE_COLUMNS),
                *(_cell(record["fields"].get(k)) for k in fields),
                *(_cell(record["answers"].get(k)) for k in answers),
                *(_cell(record["attribution"].get(k)) for k in attribution),
            ]
        )
        count += 1
    return count
