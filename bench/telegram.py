"""Telegram turns: 50 prospects chatting at once through `/webhooks/telegram`, on SQLite.

Run: `python -m bench.telegram [--conversations N] [--concurrency C] [--only NAME]`. A fake Bot
API runs in this process beside the prospects and timestamps every `sendMessage`; each server
runs in a child process of its own on 127.0.0.1, pinned to a core of its own with this process
on the others (`--no-pin`: both left to the scheduler), and talks to it:

- leadbot: the real `create_app(settings)` on SQLite with a seven-question script (choice,
  number and text questions), pacing off (the fake has no limits), JSON logs to a file;
- peer: the same questions as most Python developers would build the bot, python-telegram-bot's
  `ConversationHandler` with `PicklePersistence` behind an aiohttp webhook
  (`bench/telegram_peer.py`);
- ceiling: an aiohttp webhook that sends each reply straight to the fake with one aiohttp
  client call and stores nothing: what the prospects and the fake can drive at all.

Each prospect is a closed loop: `/start` (no token: a lead from chat), then each answer once
the bot's messages for the previous turn reached the fake and the webhook answered. A turn's
latency runs from posting the update to the fake receiving the bot's first message for that
chat after it. Each server is measured twice:

- saturated: each prospect answers the moment the bot's messages arrive. This finds the most
  turns a second the server can take; its latency is then queueing by construction (with 50
  prospects always waiting, the mean turn takes 50 / throughput seconds, 100 ms at 500 turns/s);
- paced: each prospect answers once every `--concurrency / --rate` seconds (100 ms for 50
  prospects at 500 turns/s), at a random moment of each interval (`--fixed-pace`: at its
  start), or at once when the bot took longer than that. The prospects start spread over one
  interval. This is the latency of a turn at the target load, the one the targets (p99 within
  50 ms at 500 turns/s) are about.

`--rounds` (3) measures the servers in turn that many times, each on a new database: this
machine's speed drifts from minute to minute, so rates are reported as the median and range
of the rounds, and latencies over all the rounds' turns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.telegram_peer import PICKLE, peer_app

HOST = "127.0.0.1"  # the only address this benchmark ever sends to
TOKEN = "123456:BENCH"
BOT_ID = 123456
SECRET = "bench-webhook-secret"
WAIT = 10.0  # seconds a prospect waits for a reply before the run is called broken

SCRIPT = """\
id: solar-quote
name: Solar panel quote
description: Qualifies homeowners from a lead ad for a solar installation quote.
languages: [en]
region: ES
lead_fields: [first_name]
greeting: >-
  Hi {{ lead.first_name or 'there' }}! Thanks for asking about solar panels.
  A few quick questions and we'll prepare your quote.
questions:
  - id: property
    type: choice
    prompt: What kind of property is it?
    options:
      - {value: house, label: Detached house, synonyms: [house, detached, villa], score: 10}
      - {value: semi, label: Semi-detached or terraced, synonyms: [semi, terraced], score: 5}
      - {value: flat, label: Flat, synonyms: [apartment]}
      - {value: business, label: Business premises, synonyms: [office, shop], score: 10}
  - id: ownership
    type: choice
    prompt: Do you own the property?
    options:
      - {value: own, label: I own it, synonyms: ["yes", owner, mine], score: 10}
      - {value: rent, label: I rent it, synonyms: ["no", tenant, renting]}
  - id: bill
    type: number
    integer: true
    min: 0
    prompt: Roughly how much is your monthly electricity bill, in euros?
    retry: Just a rough number is fine, like 120.
  - id: roof
    type: choice
    prompt: Which way does your roof face?
    options:
      - {value: south, label: South, score: 10}
      - {value: east_west, label: East or west, synonyms: [east, west], score: 5}
      - {value: flat_roof, label: It's a flat roof, synonyms: [flat roof], score: 5}
      - {value: not_sure, label: Not sure, synonyms: [dunno, "don't know"]}
  - id: timeline
    type: choice
    prompt: When would you like the panels installed?
    options:
      - {value: soon, label: In the next 3 months, synonyms: [asap, soon, now], score: 20}
      - {value: year, label: This year, score: 10}
      - {value: later, label: Just looking, synonyms: [later, browsing]}
  - id: postcode
    type: text
    prompt: What is the postcode of the property?
  - id: notes
    type: text
    prompt: Anything else we should know? (shading, a battery, an EV charger...)
scoring:
  - if: answers.bill >= 100
    points: 20
    reason: bill of 100 or more
outcomes:
  - id: hot
    min_score: 40
    qualified: true
    message: >-
      Thanks {{ lead.first_name or 'there' }}! Your answers look great for solar:
      an installer will call you within a day.
  - id: cold
    message: Thanks {{ lead.first_name or 'there' }}! We'll email you a first estimate.
"""
# What each prospect types, turn by turn; and how many messages the bot sends back each turn.
TURNS = (
    "/start",
    "a detached house",
    "yes",
    "about 150",
    "south",
    "asap",
    "28013",
    "There's a tree on the east side; a battery would be nice too.",
)
REPLIES = (2, 1, 1, 1, 1, 1, 1, 1)  # greeting and first question, then one message a turn
LAST_REPLY = "installer will call you"  # the hot outcome: every answer was understood


# -- the fake Bot API (this process) ----------------------------------------------------------


@dataclass
class FakeBotApi:
    """Answers like Telegram and timestamps each sendMessage; prospects wait on their chat."""

    arrivals: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    texts: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    _waiters: dict[int, tuple[int, asyncio.Future[None]]] = field(default_factory=dict)
    _message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        return app

    def reset(self) -> None:
        self.arrivals.clear()
        self.texts.clear()

    def expect(self, chat: int, count: int) -> asyncio.Future[None]:
        """A future done once `count` messages in all have reached `chat`."""
        future = asyncio.get_running_loop().create_future()
        if len(self.arrivals[chat]) >= count:
            future.set_result(None)
        else:
            self._waiters[chat] = (count, future)
        return future

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            return web.json_response(body, status=401)
        method = request.match_info["method"]
        params = await _params(request)
        if method == "sendMessage":
            return web.json_response({"ok": True, "result": self._sent(params)})
        if method == "getMe":
            me = {"id": BOT_ID, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
            return web.json_response({"ok": True, "result": me})
        return web.json_response({"ok": True, "result": True})

    def _sent(self, params: dict[str, str]) -> dict[str, Any]:
        at = time.perf_counter()
        chat = int(params["chat_id"])
        text = params.get("text", "")
        self.arrivals[chat].append(at)
        self.texts[chat].append(text)
        waiter = self._waiters.get(chat)
        if waiter is not None and len(self.arrivals[chat]) >= waiter[0]:
            del self._waiters[chat]
            if not waiter[1].done():
                waiter[1].set_result(None)
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Ana"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bench"},
            "text": text,
        }


async def _params(request: web.Request) -> dict[str, str]:
    """PTB posts form fields (markup JSON-encoded); the ceiling posts JSON."""
    if request.content_type == "application/json":
        data = await request.json()
        return {key: str(value) for key, value in data.items()}
    form = await request.post()
    return {key: value for key, value in form.items() if isinstance(value, str)}


@contextlib.asynccontextmanager
async def serving(app: web.Application, port: int = 0) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


# -- the servers (each in a child process) ----------------------------------------------------


def leadbot_app(folder: Path, api_url: str) -> web.Application:
    from pydantic import AnyHttpUrl, SecretStr  # noqa: PLC0415 (only this child needs them)

    from webhooks.app import create_app  # noqa: PLC0415
    from webhooks.logs import configure_logging  # noqa: PLC0415
    from webhooks.settings import Settings, TelegramSettings  # noqa: PLC0415

    script = folder / "solar_quote.yaml"
    script.write_text(SCRIPT)
    configure_logging("INFO", "json", stream=(folder / "leadbot.log").open("a"))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'leadbot.db'}",
        secret_key=SecretStr("bench-secret-key-0123456789"),
        scripts=[script],
        telegram=TelegramSettings(
            token=SecretStr(TOKEN),
            webhook_secret=SecretStr(SECRET),
            api_url=AnyHttpUrl(api_url),
            bot_username="bench_bot",
            per_chat_seconds=0,  # production keeps Telegram's 1 message/s per chat
            per_second=0,  # and 30/s per bot; the fake has no limits
        ),
    )
    return create_app(settings)


CLIENT = web.AppKey("client", aiohttp.ClientSession)


def ceiling_app(api_url: str) -> web.Application:
    """Reads the update and sends its replies with one aiohttp call each; stores nothing."""
    app = web.Application()

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[CLIENT] = session
            yield

    async def webhook(request: web.Request) -> web.Response:
        update = await request.json()
        message = update["message"]
        chat, text = message["chat"]["id"], message["text"]
        replies = REPLIES[0] if text.startswith("/start") else 1
        for _ in range(replies):
            body = {"chat_id": chat, "text": "Next question?"}
            url = f"{api_url}/bot{TOKEN}/sendMessage"
            async with request.app[CLIENT].post(url, json=body) as response:
                await response.read()
        return web.Response()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.cleanup_ctx.append(client)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", health)
    return app


def serve(kind: str, port: int, folder: Path, api_url: str) -> None:
    async def run() -> None:
        if kind == "leadbot":
            from webhooks.serve import settle_heap  # noqa: PLC0415 (only this child needs it)

            app = leadbot_app(folder, api_url)
            settle_heap()  # as `leadbot serve` does before it serves
        elif kind == "peer":
            app = peer_app(folder, api_url, TOKEN, SECRET)
        else:
            app = ceiling_app(api_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        async with serving(app, port):
            await stop.wait()

    asyncio.run(run())


# -- the prospects (this process) -------------------------------------------------------------


@dataclass
class Result:
    name: str
    turns: int
    seconds: float
    reply_ms: list[float]  # update posted -> first reply at the fake
    answer_ms: list[float]  # update posted -> webhook's 200
    cpu_seconds: float | None  # the server's, all threads, over the measured turns
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.turns / self.seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass
class Prospects:
    session: aiohttp.ClientSession
    fake: FakeBotApi
    url: str
    jitter: bool = True  # paced: each turn at a random moment of its interval (see Pace)
    update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    chats: Iterator[int] = field(default_factory=lambda: itertools.count(10_000_001))

    async def converse(
        self, reply_ms: list[float], answer_ms: list[float], pace: Pace | None = None
    ) -> None:
        """One whole conversation, in a new chat."""
        chat = next(self.chats)
        seen = 0
        for text, replies in zip(TURNS, REPLIES, strict=True):
            if pace is not None:
                await pace.next_turn()
            update = _update(next(self.update_ids), chat, text)
            arrived = self.fake.expect(chat, seen + replies)
            posted = time.perf_counter()
            async with self.session.post(self.url, data=update) as response:
                await response.read()
                answered = time.perf_counter()
                if response.status != 200:
                    raise SystemExit(f"the webhook answered {response.status} to {text!r}")
            try:
                await asyncio.wait_for(arrived, WAIT)
            except TimeoutError:
                raise SystemExit(f"no reply in chat {chat} to {text!r} within {WAIT} s") from None
            reply_ms.append((self.fake.arrivals[chat][seen] - posted) * 1000)
            answer_ms.append((answered - posted) * 1000)
            seen += replies

    async def run(
        self, concurrency: int, conversations: int, interval: float | None = None
    ) -> tuple[list[float], list[float]]:
        """`concurrency` prospects at once, each having `conversations` conversations in turn;
        with an `interval`, each sends a turn every `interval` seconds at most."""
        reply_ms: list[float] = []
        answer_ms: list[float] = []
        started = time.perf_counter()

        async def prospect(number: int) -> None:
            pace = None
            if interval is not None:  # spread over one interval, not all at once
                if self.jitter:  # at random moments of the first interval too
                    pace = Pace(interval, started, random.Random(number))
                else:
                    pace = Pace(interval, started + interval * number / concurrency)
            for _ in range(conversations):
                await self.converse(reply_ms, answer_ms, pace)

        await asyncio.gather(*(prospect(number) for number in range(concurrency)))
        return reply_ms, answer_ms


@dataclass
class Pace:
    """A prospect's schedule: one turn in each `interval`, at a random moment of it (with
    `jitter`; at its start without). A turn whose reply came late goes at once, and the
    schedule goes on from there (no burst to catch up).

    Without jitter, prospects fall into step: a stall makes many late at once, they all answer
    the moment the stall ends, and from then on they answer together every interval, in one
    burst, for the rest of the run. Real prospects think for different times."""

    interval: float
    slot: float  # when the current interval began
    rng: random.Random | None = None

    async def next_turn(self) -> None:
        now = time.perf_counter()
        due = self.slot + (self.rng.uniform(0, self.interval) if self.rng else 0)
        if due > now:
            await asyncio.sleep(due - now)
        self.slot = max(self.slot + self.interval, now)


def _update(update_id: int, chat: int, text: str) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private", "first_name": "Ana"},
                "from": {"id": chat, "is_bot": False, "first_name": "Ana", "language_code": "en"},
                "text": text,
                **(
                    {"entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
                    if text.startswith("/")
                    else {}
                ),
            },
        }
    ).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


async def _wait_until_up(port: int, child: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if child.poll() is not None:
                raise SystemExit(f"the server exited with {child.returncode} before answering")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://{HOST}:{port}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise SystemExit("the server did not answer /healthz within 15 s")


def _cpu_seconds(pid: int) -> float | None:
    """User and system time of a process so far (Linux), all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check(fake: FakeBotApi, conversations: int, outcome: bool) -> list[str]:
    """Every conversation got all its messages, and (for the bots) ended on the outcome of
    answers all understood."""
    problems = []
    expected = sum(REPLIES)
    if len(fake.texts) != conversations:
        problems.append(f"{len(fake.texts)} chats got messages, {conversations} expected")
    wrong = [chat for chat, texts in fake.texts.items() if len(texts) != expected]
    if wrong:
        problems.append(f"{len(wrong)} chats did not get exactly {expected} messages")
    unfinished = [chat for chat, texts in fake.texts.items() if LAST_REPLY not in texts[-1]]
    if outcome and unfinished:
        problems.append(f"{len(unfinished)} chats did not end on the expected outcome")
    return problems


@dataclass
class Measured:
    """One server's two phases, and what was noticed about the server itself."""

    saturated: Result
    paced: Result
    notes: list[str]


async def measure(
    kind: str,
    folder: Path,
    fake: FakeBotApi,
    api_url: str,
    concurrency: int,
    conversations: int,
    rate: float,
    jitter: bool,
    server_cores: set[int] | None = None,
) -> Measured:
    port = _free_port()
    command = [sys.executable, "-m", "bench.telegram", "--serve", kind, "--port", str(port)]
    command += ["--dir", str(folder), "--api", api_url]
    child = subprocess.Popen(command)
    if server_cores is not None:
        os.sched_setaffinity(child.pid, server_cores)  # its threads, started later, inherit it
    notes: list[str] = []
    try:
        await _wait_until_up(port, child)
        path = "/webhooks/telegram" if kind == "leadbot" else "/webhook"
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            prospects = Prospects(session, fake, f"http://{HOST}:{port}{path}", jitter)
            fake.reset()
            await prospects.run(concurrency, 1)  # warm-up: one conversation each
            phase = Phase(kind, prospects, fake, child.pid, concurrency, conversations)
            saturated = await phase.run(None)
            paced = await phase.run(concurrency / rate)
        if kind == "peer":  # still running: anything on disk was written during the turns
            notes.append(f"pickle file after the run: {_describe(folder / PICKLE)}")
    finally:
        stopping = time.perf_counter()
        child.send_signal(signal.SIGTERM)  # a graceful stop: the peer flushes its pickle
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        stopped = time.perf_counter() - stopping
    notes += _log_problems(folder)
    if kind == "peer":
        written = _describe(folder / PICKLE)
        notes.append(f"pickle file after stop(): {written}; the child took {stopped:.1f} s to exit")
    return Measured(saturated, paced, notes)


@dataclass
class Phase:
    kind: str
    prospects: Prospects
    fake: FakeBotApi
    pid: int
    concurrency: int
    conversations: int

    async def run(self, interval: float | None) -> Result:
        """Every prospect's conversations, saturated (no interval) or paced."""
        self.fake.reset()
        cpu_before = _cpu_seconds(self.pid)
        started = time.perf_counter()
        reply_ms, answer_ms = await self.prospects.run(
            self.concurrency, self.conversations, interval
        )
        seconds = time.perf_counter() - started
        cpu_after = _cpu_seconds(self.pid)
        await asyncio.sleep(0.2)  # anything sent late would show in the check
        notes = _check(
            self.fake, self.concurrency * self.conversations, outcome=self.kind != "ceiling"
        )
        cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        return Result(self.kind, len(reply_ms), seconds, reply_ms, answer_ms, cpu, notes)


LOG_MARKERS = ('"level": "WARNING"', '"level": "ERROR"', " - WARNING - ", " - ERROR - ")


def _log_problems(folder: Path) -> list[str]:
    """Warnings and errors the server logged: a benchmark of a failing bot measures nothing."""
    found = [
        line.strip()
        for log in sorted(folder.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if any(marker in line for marker in LOG_MARKERS)
    ]
    return [f"{len(found)} warning(s) or error(s) logged, first: {found[0][:300]}"] if found else []


def _describe(path: Path) -> str:
    return f"{path.stat().st_size:,} bytes" if path.exists() else "not written"


SERVERS = ("leadbot", "peer", "ceiling")


async def main(
    concurrency: int,
    conversations: int,
    rate: float,
    rounds: int,
    only: str | None,
    jitter: bool = True,
    pin: bool = True,
) -> None:
    cores = split_cores() if pin else None
    if cores is not None:
        os.sched_setaffinity(0, cores[0])
    fake = FakeBotApi()
    results: dict[str, list[Measured]] = {}
    async with serving(fake.app()) as fake_port:
        api_url = f"http://{HOST}:{fake_port}"
        with tempfile.TemporaryDirectory() as folder:
            # Round after round of each server in turn, each on a new database: the machine's
            # speed drifts, and a ratio holds best between runs minutes apart.
            for number in range(1, rounds + 1):
                for name in [only] if only else SERVERS:
                    where = Path(folder) / f"{name}-{number}"
                    where.mkdir()
                    measured = await measure(
                        name,
                        where,
                        fake,
                        api_url,
                        concurrency,
                        conversations,
                        rate,
                        jitter,
                        cores[1] if cores else None,
                    )
                    results.setdefault(name, []).append(measured)
    turns = concurrency * conversations * len(TURNS)
    interval = concurrency / rate * 1000
    print(
        f"{concurrency} conversations at once, {conversations} each in turn: {turns:,} turns "
        f"measured in each phase, after {concurrency} conversations of warm-up; {rounds} "
        f"round(s) of each server in turn (rates: median and range; latencies: over all "
        "rounds' turns). Saturated: each prospect answers as soon as the bot's messages "
        f"arrive. Paced: {rate:,.0f} turns/s offered, each prospect answering once every "
        f"{interval:.0f} ms, {'at a random moment of it' if jitter else 'at its start'} (at "
        "once when the bot was slower than that). "
        + (
            f"Each server pinned to core {min(cores[1])}, the prospects and the fake to "
            f"{', '.join(map(str, sorted(cores[0])))}."
            if cores
            else "Not pinned to cores (--no-pin)."
        )
    )
    print(report(results, rate))


def split_cores() -> tuple[set[int], set[int]] | None:
    """The cores for the load generator (prospects and fake) and for the server: the last
    core this process may use goes to the server, the others to the load generator. Left to
    the scheduler, the server's loop moved between the cores and shared them with the load
    generator: 15% more CPU a turn for leadbot in three pairs of runs, and more noise. None with
    fewer than two cores, or without sched_setaffinity (not Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None
    return set(usable[:-1]), {usable[-1]}


def _spread(values: list[float], pattern: str = "{:,.0f}") -> str:
    """The median, and the range when there are several."""
    middle = pattern.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({pattern.format(min(values))}-{pattern.format(max(values))})"


def _pooled(results: list[Result], samples: str) -> list[float]:
    return [value for result in results for value in getattr(result, samples)]


def report(results: dict[str, list[Measured]], rate: float) -> str:
    peer = results.get("peer")
    lines = [
        "| server | saturated turns/s | vs peer | reply p50 | reply p99 | server CPU per turn "
        f"| paced at {rate:,.0f}/s: turns/s | reply p50 | reply p99 | p99 vs peer "
        "| 200 p50 / p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in results.items():
        full = [measured.saturated for measured in runs]
        paced = [measured.paced for measured in runs]
        vs_peer = tail = ""
        p99 = percentile(_pooled(paced, "reply_ms"), 0.99)
        if peer:
            ratios = [m.saturated.rate / p.saturated.rate for m, p in zip(runs, peer, strict=True)]
            vs_peer = _spread(ratios, "{:.2f}x")
            tail = f"{p99 / percentile(_pooled([p.paced for p in peer], 'reply_ms'), 0.99):.2f}x"
        answered = [percentile(_pooled(paced, "answer_ms"), f) for f in (0.5, 0.99)]
        cpus = [r.cpu_seconds / r.turns * 1000 for r in full if r.cpu_seconds is not None]
        cpu = _spread(cpus, "{:.2f}") + " ms" if cpus else ""
        saturated_ms = _pooled(full, "reply_ms")
        lines.append(
            f"| {name} | {_spread([r.rate for r in full])} | {vs_peer} "
            f"| {percentile(saturated_ms, 0.5):.1f} ms | {percentile(saturated_ms, 0.99):.1f} ms "
            f"| {cpu} | {_spread([r.rate for r in paced])} "
            f"| {percentile(_pooled(paced, 'reply_ms'), 0.5):.1f} ms | {p99:.1f} ms | {tail} "
            f"| {answered[0]:.1f} / {answered[1]:.1f} ms |"
        )
    for name, runs in results.items():
        for number, measured in enumerate(runs, start=1):
            where = f"{name}, round {number}" if len(runs) > 1 else name
            lines += [f"- {where}: {note}" for note in measured.notes]
            lines += [f"- {where}, saturated: {note}" for note in measured.saturated.notes]
            lines += [f"- {where}, paced: {note}" for note in measured.paced.notes]
    if "leadbot" in results:
        runs = results["leadbot"]
        p99 = percentile(_pooled([m.paced for m in runs], "reply_ms"), 0.99)
        most = statistics.median(m.saturated.rate for m in runs)
        achieved = statistics.median(m.paced.rate for m in runs)
        kept_up = rate >= 500 and achieved >= 0.95 * 500  # the target's load, sustained
        lines.append(
            f"target (>= 500 turns/s; p99 <= 50 ms at 500 turns/s): throughput "
            f"{'met' if most >= 500 else 'missed'} ({most:,.0f} turns/s saturated), p99 "
            f"{'met' if p99 <= 50 and kept_up else 'missed'} ({p99:.1f} ms at "
            f"{achieved:,.0f} turns/s)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=6, help="per prospect, measured")
    parser.add_argument(
        "--rate", type=float, default=500, help="turns/s offered in all in the paced phase"
    )
    parser.add_argument("--rounds", type=int, default=3, help="of each server in turn")
    parser.add_argument("--only", choices=SERVERS, help="measure one server alone")
    parser.add_argument(
        "--fixed-pace",
        action="store_true",
        help="paced prospects answer at the start of each interval, not at a random moment",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave the server and the load generator to the scheduler, not one core each",
    )
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, arguments.port, arguments.dir, arguments.api)
    else:
        asyncio.run(
            main(
                arguments.concurrency,
                arguments.conversations,
                arguments.rate,
                arguments.rounds,
                arguments.only,
                jitter=not arguments.fixed_pace,
                pin=not arguments.no_pin,
            )
        )
