"""Shared helpers: scripts from text, a fixed clock, and a guard against real network access."""

from __future__ import annotations

import ipaddress
import socket
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.compiled import CompiledScript
from bot.loader import load_script

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday


def script_from(source: str) -> CompiledScript:
    return load_script(textwrap.dedent(source), "test.yaml")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach a non-loopback address."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            raise RuntimeError(f"test tried to reach {address[0]!r}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return
