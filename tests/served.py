"""`leadbot serve` in a real process, as an operator runs it, for the drills: start it on a port,
wait until it answers, stop it (gracefully or with SIGKILL), and read what it printed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).parent.parent
SCRIPT = """\
id: drill
name: Drill
greeting: Hi!
questions:
{questions}
outcomes: [{{id: done, message: "Thanks, all done!"}}]
"""
QUESTIONS = 8


def drill_script(questions: int = QUESTIONS) -> str:
    """Text questions only: every message is a turn that gets exactly one reply, so that the
    messages a chat receives are known in advance, in order."""
    lines = "\n".join(
        f"  - {{id: q{n}, type: text, prompt: Question {n}?}}" for n in range(1, 1 + questions)
    )
    return SCRIPT.format(questions=lines)


def expected_texts(questions: int = QUESTIONS) -> list[str]:
    return ["Hi!", *(f"Question {n}?" for n in range(1, 1 + questions)), "Thanks, all done!"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, number: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(number)
        return await asyncio.wait_for(self.process.wait(), timeout)


async def start(env: dict[str, str], cwd: Path, *options: str, port: int | None = None) -> Served:
    """`leadbot serve` on 127.0.0.1 with these LEADBOT_... variables, answering /healthz."""
    port = port or free_port()
    log = cwd / f"serve-{port}-{len(list(cwd.glob('serve-*.log')))}.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOT_")}
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from webhooks.cli import main; main()",
            "serve",
            "--port",
            str(port),
            *options,
            cwd=cwd,
            env={**clean, "PYTHONPATH": str(ROOT), **env},
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    served = Served(process, port, log)
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"leadbot serve exited early:\n{served.output()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{served.url}/healthz") as health:
                    if health.status == 200:
                        return served
            await asyncio.sleep(0.05)
    await served.stop(signal.SIGKILL)
    raise AssertionError(f"leadbot serve did not answer within 15 s:\n{served.output()[-3000:]}")


def telegram_env(api_url: str, token: str, secret: str, username: str) -> dict[str, str]:
    """Telegram on a fake Bot API, with no pacing (the fake has no limits) and quick retries."""
    return {
        "LEADBOT_SECRET_KEY": "drill-secret-key-0123456789",
        "LEADBOT_TELEGRAM__TOKEN": token,
        "LEADBOT_TELEGRAM__WEBHOOK_SECRET": secret,
        "LEADBOT_TELEGRAM__API_URL": api_url,
        "LEADBOT_TELEGRAM__BOT_USERNAME": username,
        "LEADBOT_TELEGRAM__PER_CHAT_SECONDS": "0",
        "LEADBOT_TELEGRAM__PER_SECOND": "0",
        "LEADBOT_TELEGRAM__TIMEOUT": "2",
        "LEADBOT_DISPATCHER_FIRST_RETRY_SECONDS": "0.05",
        "LEADBOT_LOG_LEVEL": "WARNING",
    }
