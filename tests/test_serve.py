"""`leadbot serve` as an operator runs it: from an empty folder, with no settings at all."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_runs_the_embedded_default_from_any_folder(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from webhooks.cli import main; main()",
        "serve",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            async with session.get(f"http://127.0.0.1:{port}/f/car-test-drive") as form:
                assert form.status == 200
                assert "Book a test drive" in await form.text()
            async with session.get(f"http://127.0.0.1:{port}/readyz") as ready:
                assert ready.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert process.returncode == 0, text  # a clean, graceful stop
    assert f"http://127.0.0.1:{port}/f/car-test-drive" in text  # the banner names the URLs
    assert (tmp_path / "leadbot.db").exists()  # SQLite in the working folder, schema upgraded
    assert (tmp_path / "leadbot.secret").exists()
    assert "Traceback" not in text
