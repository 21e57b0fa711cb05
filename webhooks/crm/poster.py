"""Posts CRM deliveries with the app's one ClientSession; every failure becomes a PostResult."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

import aiohttp

from bot.crm_delivery import PostResult


def user_agent() -> str:
    try:
        return f"leadbot/{version('leadbot')}"
    except PackageNotFoundError:
        return "leadbot"


class HttpPoster:
    """Implements bot.crm_delivery.Poster."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        sent = {"User-Agent": user_agent(), **headers}
        try:
            async with self._session.post(
                url, data=body, headers=sent, timeout=self._timeout, allow_redirects=False
            ) as response:
                await response.read()  # let the connection go back to the pool
                return PostResult(
                    response.status,
                    None if response.status < 300 else f"HTTP {response.status} {response.reason}",
                    _retry_after(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            return PostResult(None, f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as error:
            return PostResult(None, f"{type(error).__name__}: {error}"[:300])


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (its date form is rare from CRMs, and then backoff serves)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
