"""Speed to lead: from `POST /leads` to the first SMS at (a fake of) Twilio's API.

Run: `python -m bench.speed_to_lead [--rate 100] [--seconds 20]`. Leads with a phone number and
consent arrive at a steady rate (an open loop: a slow server does not slow the arrivals down),
each with its own number; a fake Twilio Messages API in this process timestamps each message it
receives. Both servers run in a child process of their own on 127.0.0.1:

- leadbot: the real `create_app(settings)` on SQLite, the car test-drive example script (it
  writes first by SMS), Twilio pointed at the fake through the twilio library's async client,
  JSON logs to a file as `leadbot serve` writes them. The lead and its first-contact row are
  committed before the 201; the outbox dispatcher, woken by the commit, sends it. Pacing is off
  (the fake has no limits) and quiet hours too (the run must not depend on the time of day).
- baseline: an aiohttp handler that reads the lead and sends the SMS straight from the request
  (one aiohttp call to the same fake) before answering, storing nothing: the least time a
  "POST, then text the prospect" costs, with nothing durable and no retry if Twilio is down.

Target (issue 6): leadbot's p99 under 1 second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.telegram import _free_port, _wait_until_up

HOST = "127.0.0.1"  # the only address this benchmark ever sends to
API_KEY = "bench-key"
ACCOUNT = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"
FROM = "+34600000000"
WARMUP_SECONDS = 2.0
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


# -- the fake Twilio API (this process) -------------------------------------------------------


class FakeTwilio:
    """Answers the Messages API like Twilio and notes when each number got its first text."""

    def __init__(self) -> None:
        self.first_text: dict[str, float] = {}
        self.texts = 0
        self.app = web.Application()
        self.app.router.add_post(MESSAGES_PATH, self._create)

    async def _create(self, request: web.Request) -> web.Response:
        received = time.perf_counter()
        form = await request.post()
        to = str(form.get("To", ""))
        self.texts += 1
        self.first_text.setdefault(to, received)
        sid = f"SM{self.texts:032x}"
        return web.json_response({"sid": sid, "status": "queued", "to": to}, status=201)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


# -- the servers (each in a child process) ----------------------------------------------------


def leadbot_app(folder: Path, api_url: str) -> web.Application:
    from webhooks.app import create_app  # noqa: PLC0415 (only the leadbot child needs it)
    from webhooks.logs import configure_logging  # noqa: PLC0415
    from webhooks.settings import Settings  # noqa: PLC0415

    configure_logging("INFO", "json", stream=(folder / "leadbot.log").open("a"))
    settings = Settings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{folder / 'leadbot.db'}",
            "secret_key": "bench-secret-key-0123456789",
            "relays": {"bench": {"api_keys": [API_KEY], "script": "car-test-drive"}},
            "twilio": {
                "account_sid": ACCOUNT,
                "auth_token": AUTH_TOKEN,
                "api_url": api_url,
                "sms_number": FROM,
                "per_chat_seconds": 0,
                "per_second": 0,
            },
            "first_contact": {"quiet_hours": {"start": "00:00", "end": "00:00"}},
        }
    )
    return create_app(settings)


CLIENT = web.AppKey("client", aiohttp.ClientSession)


def baseline_app(api_url: str) -> web.Application:
    async def submit(request: web.Request) -> web.Response:
        lead = json.loads(await request.read())
        body = f"Hi {lead['first_name']}, thanks for asking about a test drive! Reply to book."
        form = {"To": lead["phone"], "From": FROM, "Body": body}
        async with request.app[CLIENT].post(api_url + MESSAGES_PATH, data=form) as response:
            await response.read()
        return web.json_response({"accepted": 1}, status=201)

    async def client(app: web.Application) -> AsyncIterator[None]:
        basic = aiohttp.encode_basic_auth(ACCOUNT, AUTH_TOKEN)
        app[CLIENT] = aiohttp.ClientSession(headers={"Authorization": basic})
        yield
        await app[CLIENT].close()

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_post("/leads", submit)
    app.router.add_get("/healthz", _ok)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serve(kind: str, port: int, folder: Path, api_url: str) -> None:
    app = leadbot_app(folder, api_url) if kind == "leadbot" else baseline_app(api_url)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


# -- the load (this process) ------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    to_first_text_ms: list[float]  # POST sent -> first SMS received by the fake
    answered_ms: list[float]  # POST sent -> 201 received
    missing: int  # measured leads that never got a first text
    statuses: dict[int, int]

    def percentile(self, values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def _lead(number: int) -> tuple[str, bytes]:
    phone = f"+346{10000000 + number}"  # a Spanish mobile number, one per lead
    body = {
        "id": f"stl-{number}",
        "first_name": "Ana",
        "phone": phone,
        "email": "ana@example.com",
        "consent": "I agree that Acme Motors contacts me about my test drive.",
    }
    return phone, json.dumps(body).encode()


async def load(port: int, fake: FakeTwilio, rate: float, seconds: float, name: str) -> Result:
    url = f"http://{HOST}:{port}/leads"
    headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY}
    warmup = int(rate * WARMUP_SECONDS)
    total = warmup + int(rate * seconds)
    sent_at: dict[str, float] = {}
    answered: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def post(number: int) -> None:
            phone, body = _lead(number)
            started = time.perf_counter()
            async with session.post(url, data=body) as response:
                await response.read()
            if number >= warmup:
                sent_at[phone] = started
                answered.append((time.perf_counter() - started) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        begin = time.perf_counter()
        posts = []
        for number in range(total):
            delay = begin + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(post(number)))
        await asyncio.gather(*posts)
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and not all(p in fake.first_text for p in sent_at):
            await asyncio.sleep(0.05)
    latencies = [
        (fake.first_text[p] - t) * 1000 for p, t in sent_at.items() if p in fake.first_text
    ]
    missing = sum(1 for p in sent_at if p not in fake.first_text)
    return Result(name, latencies, answered, missing, statuses)


async def measure(kind: str, folder: Path, rate: float, seconds: float) -> Result:
    fake = FakeTwilio()
    async with serving(fake.app) as fake_port:
        api_url = f"http://{HOST}:{fake_port}"
        port = _free_port()
        command = [sys.executable, "-m", "bench.speed_to_lead", "--serve", kind]
        command += ["--port", str(port), "--dir", str(folder), "--api-url", api_url]
        child = subprocess.Popen(command)
        try:
            await _wait_until_up(port, child)
            return await load(port, fake, rate, seconds, kind)
        finally:
            child.send_signal(signal.SIGINT)
            child.wait(timeout=30)


def _warnings_in(log: Path) -> list[str]:
    if not log.exists():
        return []
    markers = ('"level": "WARNING"', '"level": "ERROR"')
    return [line for line in log.read_text().splitlines() if any(m in line for m in markers)]


def report(results: list[Result], rate: float, seconds: float) -> str:
    leadbot, baseline = results
    lines = [
        f"{int(rate * seconds)} leads at {rate:g}/s ({seconds:g} s, after {WARMUP_SECONDS:g} s "
        "of warm-up), each with its own number and consent",
        "",
        "| server | POST to first SMS p50 | p99 | max | p99 vs baseline | 201 p50 / p99 "
        "| leads without a first SMS | non-201 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base_p99 = baseline.percentile(baseline.to_first_text_ms, 0.99)
    for result in results:
        first = result.to_first_text_ms
        p99 = result.percentile(first, 0.99)
        errors = {s: n for s, n in result.statuses.items() if s != 201}
        lines.append(
            f"| {result.name} | {result.percentile(first, 0.5):.1f} ms | {p99:.1f} ms "
            f"| {max(first, default=0):.1f} ms | {p99 / base_p99:.2f}x "
            f"| {result.percentile(result.answered_ms, 0.5):.1f} / "
            f"{result.percentile(result.answered_ms, 0.99):.1f} ms "
            f"| {result.missing} | {errors or 'none'} |"
        )
    p99 = leadbot.percentile(leadbot.to_first_text_ms, 0.99)
    verdict = "met" if p99 < 1000 and leadbot.missing == 0 else "MISSED"
    lines += ["", f"Target: leadbot p99 under 1 s: {verdict} ({p99:.1f} ms)."]
    return "\n".join(lines)


async def main(rate: float, seconds: float) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="leadbot-bench-") as folder:
        for kind in ("leadbot", "baseline"):
            results.append(await measure(kind, Path(folder), rate, seconds))
        warnings = _warnings_in(Path(folder) / "leadbot.log")
    print(report(results, rate, seconds))
    if warnings:
        print(f"\nleadbot logged {len(warnings)} warnings or errors, the first: {warnings[0]}")
        return 1
    return 0 if all(r.missing == 0 for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="leads per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--serve", choices=("leadbot", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, arguments.port, arguments.dir, arguments.api_url)
    else:
        sys.exit(asyncio.run(main(arguments.rate, arguments.seconds)))
