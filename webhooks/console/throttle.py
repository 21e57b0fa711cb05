"""Growing delays after failed logins, per email and per client address.

Each attempt is counted before its password is checked. After 3 failures on an email or on an
address, the next attempt must wait 5 seconds after the last one, and each further failure
doubles the wait, up to 15 minutes; an attempt that comes too early is refused (429 with
Retry-After) without a look at its password, and is not counted. A successful login forgets its
email's failures and takes back the attempt counted on its address (so an address that logs in
cannot wipe its own record). Failures an hour old are forgotten."""

from __future__ import annotations

from datetime import timedelta

FREE_FAILURES = 3
FIRST_WAIT = timedelta(seconds=5)
LONGEST_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)


def wait_after(failures: int) -> timedelta:
    """How long after the last of `failures` failed attempts the next one may be made."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    # Past 15 minutes the cap holds anyway: no need for huge powers of two.
    doublings = min(failures - FREE_FAILURES, 20)
    return min(FIRST_WAIT * (1 << doublings), LONGEST_WAIT)


def email_key(email: str) -> str:
    return "email:" + email.strip().lower()[:320]


def address_key(address: str) -> str:
    return "addr:" + address[:128]
