"""Lead intake over HTTP: `POST /leads` with 32 connections at once, on SQLite.

Run: `python -m bench.intake [--requests N] [--concurrency C] [--profile FILE]`. Each server
runs in a child process of its own on 127.0.0.1 (the load generator, an aiohttp client, stays in
this one, so the two do not share a core), and gets the same warm-up and the same N requests:

- leadbot: the real `create_app(settings)` with one relay (API key), writing JSON access lines
  to a file as `leadbot serve` writes them to stderr (`--no-logs` leaves logging unconfigured),
  its start-up objects frozen out of the garbage collector's sight as `leadbot serve` does;
- baseline: a bare aiohttp app whose handler reads the JSON body and inserts it as one row
  into SQLite (the stdlib driver, in one thread, WAL and synchronous=FULL as leadbot sets
  them), committing once per request: the least a durable intake costs;
- baseline-aiosqlite: the same with aiosqlite (two trips to its thread: insert, commit), for
  context: what the usual async SQLite driver costs;
- ceiling: a bare aiohttp app answering 201 without touching a database: what the load
  generator itself can drive, so that a ratio is not the client's limit in disguise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
from aiohttp import web

HOST = "127.0.0.1"  # the only address this benchmark ever sends to
API_KEY = "bench-key"
WARMUP = 300


@dataclass(frozen=True)
class Result:
    name: str
    rate: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# -- the servers (each in a child process) ----------------------------------------------------


def leadbot_app(folder: Path, logs: bool) -> web.Application:
    from webhooks.app import create_app  # noqa: PLC0415 (only the leadbot child needs it)
    from webhooks.logs import configure_logging  # noqa: PLC0415
    from webhooks.settings import Settings  # noqa: PLC0415

    if logs:
        configure_logging("INFO", "json", stream=(folder / "leadbot.log").open("a"))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'leadbot.db'}",
        secret_key="bench-secret-key-0123456789",
        relays={"bench": {"api_keys": [API_KEY]}},
    )
    return create_app(settings)


DATABASE = web.AppKey("database", sqlite3.Connection)
WRITER = web.AppKey("writer", ThreadPoolExecutor)


def baseline_app(folder: Path) -> web.Application:
    app = web.Application()

    async def database(app: web.Application) -> Any:
        writer = ThreadPoolExecutor(max_workers=1)
        connection = await asyncio.get_running_loop().run_in_executor(
            writer, _open_sqlite, folder / "baseline.db"
        )
        app[DATABASE], app[WRITER] = connection, writer
        yield
        await asyncio.get_running_loop().run_in_executor(writer, connection.close)
        writer.shutdown()

    async def submit(request: web.Request) -> web.Response:
        body = await request.read()
        lead = json.loads(body)
        connection = request.app[DATABASE]

        def insert() -> int:
            cursor = connection.execute(
                "INSERT INTO leads (external_id, body) VALUES (?, ?)", (str(lead["id"]), body)
            )
            connection.commit()
            return int(cursor.lastrowid or 0)

        lead_id = await asyncio.get_running_loop().run_in_executor(request.app[WRITER], insert)
        return web.json_response({"accepted": 1, "id": lead_id}, status=201)

    app.cleanup_ctx.append(database)
    app.router.add_post("/leads", submit)
    app.router.add_get("/healthz", _ok)
    return app


AIOSQLITE = web.AppKey("aiosqlite", aiosqlite.Connection)


def aiosqlite_app(folder: Path) -> web.Application:
    app = web.Application()

    async def database(app: web.Application) -> Any:
        connection = await aiosqlite.connect(folder / "baseline-aiosqlite.db")
        for statement in _SCHEMA:
            await connection.execute(statement)
        await connection.commit()
        app[AIOSQLITE] = connection
        yield
        await connection.close()

    async def submit(request: web.Request) -> web.Response:
        body = await request.read()
        lead = json.loads(body)
        connection = request.app[AIOSQLITE]
        cursor = await connection.execute(
            "INSERT INTO leads (external_id, body) VALUES (?, ?)", (str(lead["id"]), body)
        )
        await connection.commit()
        return web.json_response({"accepted": 1, "id": cursor.lastrowid}, status=201)

    app.cleanup_ctx.append(database)
    app.router.add_post("/leads", submit)
    app.router.add_get("/healthz", _ok)
    return app


_SCHEMA = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "CREATE TABLE IF NOT EXISTS leads "
    "(id INTEGER PRIMARY KEY, external_id TEXT UNIQUE NOT NULL, body BLOB NOT NULL)",
)


def _open_sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    for statement in _SCHEMA:
        connection.execute(statement)
    connection.commit()
    return connection


def ceiling_app() -> web.Application:
    async def submit(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"accepted": 1}, status=201)

    app = web.Application()
    app.router.add_post("/leads", submit)
    app.router.add_get("/healthz", _ok)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serve(kind: str, port: int, folder: Path, logs: bool, profile: Path | None) -> None:
    factories: dict[str, Callable[[], web.Application]] = {
        "leadbot": lambda: leadbot_app(folder, logs),
        "baseline": lambda: baseline_app(folder),
        "baseline-aiosqlite": lambda: aiosqlite_app(folder),
        "ceiling": ceiling_app,
    }
    app = factories[kind]()
    if kind == "leadbot":
        from webhooks.serve import settle_heap  # noqa: PLC0415 (as `leadbot serve` does)

        settle_heap()

    def run() -> None:
        web.run_app(app, host=HOST, port=port, print=None, access_log=None)

    if profile is None:
        run()
        return
    profiler = cProfile.Profile()
    profiler.runcall(run)
    profiler.dump_stats(profile)


# -- the load generator (this process) --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _lead(number: int, run: str) -> bytes:
    return json.dumps(
        {
            "id": f"{run}-{number}",
            "first_name": "Ana",
            "last_name": "García",
            "phone": "+34612345678",
            "email": "ana.garcia@example.com",
            "utm_source": "tiktok",
            "campaign_id": "1700000000000000001",
            "budget": "10k-20k",
        }
    ).encode()


async def _wait_until_up(session: aiohttp.ClientSession, port: int, child: Any) -> None:
    for _ in range(200):
        if child.poll() is not None:
            raise SystemExit(f"the server exited with {child.returncode} before answering")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"http://{HOST}:{port}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise SystemExit("the server did not answer /healthz within 10 s")


async def load(port: int, requests: int, concurrency: int, run: str) -> Result:
    """`requests` POSTs from `concurrency` workers over as many kept-alive connections."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY}
    url = f"http://{HOST}:{port}/leads"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        next_number = 0

        async def worker(until: int, record: bool) -> None:
            nonlocal next_number
            while next_number < until:
                number = next_number
                next_number += 1
                body = _lead(number, run)
                started = time.perf_counter()
                async with session.post(url, data=body) as response:
                    await response.read()
                if record:
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(worker(WARMUP, False) for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(WARMUP + requests, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(run, len(latencies) / elapsed, latencies, statuses)


async def measure(
    kind: str, folder: Path, requests: int, concurrency: int, logs: bool, profile: Path | None
) -> Result:
    port = _free_port()
    command = [sys.executable, "-m", "bench.intake", "--serve", kind, "--port", str(port)]
    command += ["--dir", str(folder)] + ([] if logs else ["--no-logs"])
    command += ["--profile", str(profile)] if profile is not None else []
    child = subprocess.Popen(command)
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_until_up(session, port, child)
        return await load(port, requests, concurrency, kind)
    finally:
        child.send_signal(signal.SIGINT)  # run_app stops gracefully (and the profile is saved)
        child.wait(timeout=30)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _row(name: str, results: list[Result], baselines: list[Result]) -> str:
    rates = [result.rate for result in results]
    ratios = [r.rate / b.rate for r, b in zip(results, baselines, strict=True)]
    errors: dict[int, int] = {}
    for result in results:
        for status, count in result.statuses.items():
            if status != 201:
                errors[status] = errors.get(status, 0) + count
    return (
        f"| {name} | {_median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) "
        f"| {_median(ratios):.2f}x "
        f"| {_median([r.percentile(0.5) for r in results]):.1f} ms "
        f"| {_median([r.percentile(0.99) for r in results]):.1f} ms "
        f"| {errors or 'none'} |"
    )


SERVERS = ("leadbot", "baseline", "baseline-aiosqlite", "ceiling")


async def main(
    requests: int, concurrency: int, rounds: int, logs: bool, profile: Path | None
) -> None:
    """Rounds interleave the servers, so that a slow moment of the machine (other work on it)
    falls on all of them rather than on one; medians over the rounds are reported."""
    results: dict[str, list[Result]] = {name: [] for name in SERVERS}
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            for name in SERVERS:
                # A fresh database each round: every round inserts the same ids.
                where = Path(folder) / f"{name}-{number}"
                where.mkdir()
                watch = profile if name == "leadbot" and number == 0 else None
                with_logs = logs and name == "leadbot"
                results[name].append(
                    await measure(name, where, requests, concurrency, with_logs, watch)
                )
    print(
        f"{requests:,} requests after {WARMUP} of warm-up, {concurrency} connections, "
        f"median of {rounds} rounds (range of leads/s)"
    )
    print("| server | leads/s | vs baseline | p50 | p99 | non-201 answers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in SERVERS:
        print(_row(name, results[name], results["baseline"]))
    leadbot, baseline = results["leadbot"], results["baseline"]
    ratio = _median([r.rate / b.rate for r, b in zip(leadbot, baseline, strict=True)])
    p99 = _median([r.percentile(0.99) for r in leadbot])
    met = ratio >= 1.0 and p99 <= 50
    print(f"target (>= 1.0x the baseline, p99 <= 50 ms): {'met' if met else 'missed'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-logs", action="store_true", help="leadbot without logging set up")
    parser.add_argument("--profile", type=Path, help="cProfile the leadbot server into FILE")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    logs = not arguments.no_logs
    if arguments.serve:
        serve(arguments.serve, arguments.port, arguments.dir, logs, arguments.profile)
    else:
        rounds = (arguments.requests, arguments.concurrency, arguments.rounds)
        asyncio.run(main(*rounds, logs, arguments.profile))
