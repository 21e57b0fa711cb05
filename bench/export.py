"""Export memory: peak RSS exporting 200,000 leads beside exporting 20,000 (the baseline).

Run: `python -m bench.export [--leads N]` (the baseline exports a tenth of N). Each export runs
in a fresh process, so its peak RSS is its own; constant memory means a ratio near 1.0 for ten
times the leads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from storage.db import connect
from storage.migrate import upgrade
from storage.tables import LeadRow

NOW = datetime(2026, 1, 5, 10, tzinfo=UTC)


async def _seed(path: Path, count: int) -> None:
    database = connect(f"sqlite+aiosqlite:///{path}")
    await upgrade(database)
    batch = 10_000
    async with database.writing() as connection:
        for start in range(0, count, batch):
            rows = [
                {
                    "source": "tiktok",
                    "external_id": f"lead-{n}",
                    "reference": f"R{n}",
                    "script_id": "car-test-drive",
                    "is_test": False,
                    "fields": {"first_name": "Ana", "email": f"a{n}@example.com", "city": "Madrid"},
                    "raw": {"payload": "x" * 300},
                    "attribution": {"campaign_id": "1784", "campaign_name": "Spring", "ad": n % 40},
                    "answers": {"model": "suv_x", "budget": 25_000 + n, "visit": "2026-01-10"},
                    "reasons": ["model = SUV X: +10", "budget of 20k or more: +20"],
                    "outcome": "booked",
                    "score": 30,
                    "submitted_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(start, min(start + batch, count))
            ]
            await connection.execute(insert(LeadRow.__table__), rows)  # type: ignore[attr-defined]
        await connection.commit()
    await database.dispose()


def _export(path: Path, fmt: str) -> tuple[float, float]:
    """Run `leadbot export` in a fresh process; return (peak RSS in MB, seconds)."""
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, fmt],
        env={**os.environ, "LEADBOT_DATABASE_URL": f"sqlite:///{path}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(child.stdout.strip().splitlines()[-1]), time.perf_counter() - started


_CHILD = """
import io, resource, sys
from click.testing import CliRunner
from webhooks.cli import main
result = CliRunner().invoke(main, ["export", "--format", sys.argv[1], "-o", "/dev/null"])
assert result.exit_code == 0, result.output
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main(leads: int) -> None:
    print(f"| export | {leads // 10:,} leads (baseline) | {leads:,} leads | ratio |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder) / "small.db", Path(folder) / "large.db"
        asyncio.run(_seed(small, leads // 10))
        asyncio.run(_seed(large, leads))
        for fmt in ("jsonl", "csv"):
            small_rss, small_seconds = _export(small, fmt)
            large_rss, large_seconds = _export(large, fmt)
            print(
                f"| {fmt}: peak RSS | {small_rss:.0f} MB ({small_seconds:.1f} s) "
                f"| {large_rss:.0f} MB ({large_seconds:.1f} s) | {large_rss / small_rss:.2f}x |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="the large export")
    main(parser.parse_args().leads)
