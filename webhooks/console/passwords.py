"""Reps' passwords: argon2id hashes, checked off the event loop."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" is only a way to waste CPU


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    return None


def generated_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


class Passwords:
    """Hashes and checks passwords with argon2-cffi's PasswordHasher (argon2id, its default
    parameters unless told otherwise). A check takes about a quarter of a second of CPU and
    64 MiB: it runs in a thread, at most `concurrency` at once, so a burst of logins neither
    stalls the event loop nor eats the memory."""

    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 4) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        """For the command line; the server uses `new_hash`."""
        return self._hasher.hash(password)

    async def new_hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than the ones in force."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`. With no stored hash (no such rep) a decoy hash
        is checked all the same, so that the answer takes as long whether the rep exists or
        not."""
        if len(password) > MAX_LENGTH:
            return False
        async with self._slots:
            if self._decoy is None:
                self._decoy = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe())
            matches = await asyncio.to_thread(self._check, stored or self._decoy, password)
        return matches and stored is not None

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
