"""Console logins end to end on the real app (SQLite and PostgreSQL): passwords, session
cookies and their expiry, CSRF, growing delays after failed logins, API keys and roles."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import update
from yarl import URL

from storage.tables import RepRow
from tests.console_support import CHEAP, PASSWORD, Browser, Console, running_console
from webhooks.console.passwords import Passwords
from webhooks.console.tokens import stored_hash
from webhooks.keys import DATABASE

REPS = RepRow.__table__  # type: ignore[attr-defined]
WRONG = "The email or password is wrong, or this login is disabled."


@pytest.fixture(params=["sqlite", "postgresql"])
async def console(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Console]:
    # Behind a "load balancer" on loopback: tests pick each login's address (X-Forwarded-For).
    proxied = {"trusted_proxies": ["127.0.0.1"]}
    async with running_console(aiohttp_client, tmp_path, request.param, form=proxied) as running:
        yield running


def set_cookie(response: Any, name: str) -> str:
    """The raw Set-Cookie header for `name`, attributes and all."""
    for header in response.headers.getall("Set-Cookie", []):
        if header.startswith(f"{name}="):
            return str(header)
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.getall('Set-Cookie', [])}")


def attributes(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


async def alert(response: Any) -> str:
    found = re.search(r'role="alert">([^<]*)<', await response.text())
    return found.group(1) if found else ""


# -- logging in --------------------------------------------------------------------------------


async def test_a_rep_logs_in_and_sees_the_console(console: Console) -> None:
    await console.add_rep("ana@example.com", name="Ana Ruiz")
    browser = Browser()
    page = await console.request("GET", "/console/login", browser)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    login_cookie = set_cookie(page, "leadbot_login_csrf")
    assert {"httponly", "samesite=strict", "path=/console/login"} <= attributes(login_cookie)

    response = await console.post_login(browser, "Ana@Example.com ", PASSWORD)
    assert response.status == 303
    assert response.headers["Location"] == "/console"
    session_cookie = set_cookie(response, "leadbot_session")
    assert {"httponly", "samesite=lax", "path=/", "max-age=604800"} <= attributes(session_cookie)
    assert "secure" not in attributes(session_cookie)  # http://127.0.0.1: no TLS to ask for
    assert "leadbot_login_csrf" not in browser.cookies  # its work is done

    inbox = await console.request("GET", "/console", browser)
    assert inbox.status == 200
    text = await inbox.text()
    assert "Inbox" in text
    assert "Ana Ruiz" in text
    assert 'name="csrf_token"' in text
    me = await (await console.request("GET", "/api/v1/me", browser)).json()
    assert me["rep"]["email"] == "ana@example.com"
    session = await console.reps.session(stored_hash(browser.cookies["leadbot_session"]))
    assert session is not None
    assert me["csrf_token"] == session.csrf_token  # what scripts send as X-CSRF-Token
    assert session.id != browser.cookies["leadbot_session"]  # only the token's hash is kept


async def test_session_cookie_is_secure_when_the_public_url_is_https(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(
        aiohttp_client, tmp_path, public_url="https://leads.example.com"
    ) as console:
        await console.add_rep("ana@example.com")
        browser = Browser()
        page = await console.request("GET", "/console/login", browser)
        assert "secure" in attributes(set_cookie(page, "leadbot_login_csrf"))
        response = await console.post_login(browser, "ana@example.com")
        assert response.status == 303
        assert "secure" in attributes(set_cookie(response, "leadbot_session"))


async def test_login_goes_on_to_the_page_asked_for_and_only_to_a_console_page(
    console: Console,
) -> None:
    await console.add_rep("ana@example.com")
    redirect = await console.request("GET", "/console?view=waiting")
    assert redirect.status == 303
    location = URL(redirect.headers["Location"])
    assert (location.path, location.query["next"]) == ("/console/login", "/console?view=waiting")
    token = await console.login_form(Browser(), redirect.headers["Location"])
    assert token
    for wanted, landing in [
        ("/console?view=waiting", "/console?view=waiting"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/console\\@evil.example", "/console"),
        ("/healthz", "/console"),
    ]:
        response = await console.post_login(Browser(), "ana@example.com", next=wanted)
        assert response.status == 303
        assert response.headers["Location"] == landing, wanted


async def test_wrong_password_unknown_email_and_disabled_rep_get_one_answer(
    console: Console,
) -> None:
    await console.add_rep("ana@example.com")
    await console.add_rep("old@example.com")
    await console.reps.set_disabled("old@example.com", True)
    for email, password in [
        ("ana@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
        ("old@example.com", PASSWORD),
    ]:
        browser = Browser()
        response = await console.post_login(browser, email, password)
        assert response.status == 401, email
        assert await alert(response) == WRONG
        assert "leadbot_session" not in browser.cookies


async def test_a_login_form_not_from_this_site_is_refused(console: Console) -> None:
    await console.add_rep("ana@example.com")
    no_cookie = Browser()
    response = await console.post_login(no_cookie, "ana@example.com", token="x" * 43)
    assert response.status == 403
    assert "leadbot_session" not in no_cookie.cookies
    browser = Browser()
    await console.login_form(browser)  # the cookie is set, but the form says otherwise
    response = await console.post_login(browser, "ana@example.com", token="y" * 43)
    assert response.status == 403
    assert "leadbot_session" not in browser.cookies
    assert "expired" in await alert(response)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_stronger_hash_replaces_an_old_one_at_login(
    aiohttp_client: AiohttpClient, tmp_path: Path, kind: str
) -> None:
    # The app with argon2-cffi's default parameters; the rep's hash has the cheapest ones.
    async with running_console(aiohttp_client, tmp_path, kind, passwords=Passwords()) as console:
        rep = await console.add_rep("ana@example.com")
        assert (await console.post_login(Browser(), "ana@example.com", "wrong!")).status == 401
        await console.logged_in("ana@example.com")
        found = await console.reps.credentials("ana@example.com")
        assert found is not None
        assert found[0].id == rep.id
        assert "m=65536,t=3,p=4" in found[1]
        assert not Passwords().needs_rehash(found[1])
        assert Passwords(CHEAP).needs_rehash(found[1])
        await console.logged_in("ana@example.com")  # and the new hash lets the rep in


# -- sessions ----------------------------------------------------------------------------------


async def test_logging_in_again_ends_the_browsers_previous_session(console: Console) -> None:
    await console.add_rep("ana@example.com")
    await console.add_rep("bea@example.com")
    anas = (await console.logged_in("ana@example.com")).cookies["leadbot_session"]
    # The login page sends a logged-in rep on; a form opened before still posts.
    logged_in = Browser({"leadbot_session": anas})
    assert (await console.request("GET", "/console/login", logged_in)).status == 303
    browser = Browser()
    token = await console.login_form(browser)
    browser.cookies["leadbot_session"] = anas
    response = await console.post_login(browser, "bea@example.com", token=token)
    assert response.status == 303
    assert browser.cookies["leadbot_session"] != anas
    me = await console.request("GET", "/api/v1/me", browser)
    assert (await me.json())["rep"]["email"] == "bea@example.com"
    stale = Browser({"leadbot_session": anas})
    assert (await console.request("GET", "/api/v1/me", stale)).status == 401


async def test_logout_ends_the_session(console: Console) -> None:
    await console.add_rep("ana@example.com")
    browser = await console.logged_in("ana@example.com")
    token = browser.cookies["leadbot_session"]
    response = await console.request("POST", "/console/logout", browser)
    assert response.status == 303
    assert response.headers["Location"] == "/console/login"
    assert "max-age=0" in attributes(set_cookie(response, "leadbot_session"))
    # The browser dropped the cookie; one that kept it (a copy) gets nowhere either.
    assert (await console.request("GET", "/console", browser)).status == 303
    copy = Browser({"leadbot_session": token})
    assert (await console.request("GET", "/console", copy)).status == 303


async def test_logout_without_the_csrf_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    await console.add_rep("ana@example.com")
    browser = await console.logged_in("ana@example.com")
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        response = await console.request(
            "POST", "/console/logout", browser, csrf=False, headers=headers
        )
        assert response.status == 403
    assert (await console.request("GET", "/console", browser)).status == 200


async def test_the_csrf_token_is_taken_from_the_form_too(console: Console) -> None:
    await console.add_rep("ana@example.com")
    browser = await console.logged_in("ana@example.com")
    form = {"csrf_token": browser.csrf or ""}
    response = await console.request("POST", "/console/logout", browser, csrf=False, data=form)
    assert response.status == 303
    assert (await console.request("GET", "/console", browser)).status == 303


async def test_a_session_ends_after_12_idle_hours(console: Console) -> None:
    await console.add_rep("ana@example.com")
    browser = await console.logged_in("ana@example.com")
    console.clock.advance(hours=11, minutes=59)
    assert (await console.request("GET", "/console", browser)).status == 200
    console.clock.advance(hours=11, minutes=59)  # counted from the last use
    assert (await console.request("GET", "/console", browser)).status == 200
    console.clock.advance(hours=12)
    response = await console.request("GET", "/console", browser)
    assert response.status == 303
    assert response.headers["Location"].startswith("/console/login")


async def test_a_session_ends_7_days_after_login_however_busy(console: Console) -> None:
    await console.add_rep("ana@example.com")
    logged_in_at = console.clock()
    browser = await console.logged_in("ana@example.com")
    while console.clock() + timedelta(hours=11) < logged_in_at + timedelta(days=7):
        console.clock.advance(hours=11)  # never idle for long
        assert (await console.request("GET", "/api/v1/me", browser)).status == 200
    console.clock.now = logged_in_at + timedelta(days=7, seconds=-1)
    assert (await console.request("GET", "/api/v1/me", browser)).status == 200
    console.clock.advance(seconds=1)
    assert (await console.request("GET", "/api/v1/me", browser)).status == 401


async def test_disabling_a_rep_ends_their_sessions(console: Console) -> None:
    await console.add_rep("ana@example.com")
    await console.add_rep("bea@example.com")
    ana = await console.logged_in("ana@example.com")
    bea = await console.logged_in("bea@example.com")
    await console.reps.set_disabled("ana@example.com", True)
    assert (await console.request("GET", "/console", ana)).status == 303
    # Even a session row left behind is refused while its rep is disabled.
    async with console.client.app[DATABASE].writing() as connection:
        await connection.execute(
            update(REPS).where(REPS.c.email == "bea@example.com").values(disabled=True)
        )
        await connection.commit()
    assert (await console.request("GET", "/api/v1/me", bea)).status == 401


async def test_a_forged_or_malformed_session_cookie_is_nobody(console: Console) -> None:
    for value in ("A" * 43, "short", "é" * 43, ""):
        browser = Browser({"leadbot_session": value})
        assert (await console.request("GET", "/api/v1/me", browser)).status == 401


# -- growing delays ----------------------------------------------------------------------------


async def test_failed_logins_for_an_email_meet_doubling_delays(console: Console) -> None:
    await console.add_rep("ana@example.com")
    addresses = iter(f"198.51.100.{n}" for n in range(1, 250))

    async def attempt(password: str = "wrong password!") -> Any:
        # Each attempt from another address: only the email's count matters here.
        headers = {"X-Forwarded-For": next(addresses)}
        return await console.post_login(Browser(), "ana@example.com", password, headers=headers)

    for _ in range(3):
        assert (await attempt()).status == 401
    waits = []
    for _ in range(10):
        refused = await attempt(PASSWORD)  # even the right password is not looked at now
        assert refused.status == 429
        assert "Too many failed attempts" in await alert(refused)
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        console.clock.advance(seconds=wait - 1)
        assert (await attempt(PASSWORD)).status == 429  # one second early
        console.clock.advance(seconds=1)
        assert (await attempt()).status == 401  # in time, and wrong again
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]
    console.clock.advance(seconds=900)
    assert (await attempt(PASSWORD)).status == 303
    assert (await attempt()).status == 401  # the email's count starts again
    assert (await attempt()).status == 401


async def test_failed_logins_from_one_address_meet_delays_whatever_the_email(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(
        aiohttp_client, tmp_path, form={"trusted_proxies": ["127.0.0.1"]}
    ) as console:
        await console.add_rep("ana@example.com")
        here = {"X-Forwarded-For": "203.0.113.9"}
        for number in range(3):
            email = f"guess{number}@example.com"
            response = await console.post_login(Browser(), email, headers=here)
            assert response.status == 401
        refused = await console.post_login(Browser(), "ana@example.com", headers=here)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "5"
        elsewhere = {"X-Forwarded-For": "203.0.113.10"}
        response = await console.post_login(Browser(), "ana@example.com", headers=elsewhere)
        assert response.status == 303
        # A login that works takes back only its own attempt: the address is still watched.
        console.clock.advance(seconds=5)
        assert (await console.post_login(Browser(), "ana@example.com", headers=here)).status == 303
        console.clock.advance(seconds=5)
        response = await console.post_login(Browser(), "x@example.com", "nope", headers=here)
        assert response.status == 401
        response = await console.post_login(Browser(), "ana@example.com", headers=here)
        assert response.status == 429
        assert response.headers["Retry-After"] == "10"
        # An hour later the address starts again from nothing.
        console.clock.advance(hours=1)
        for number in range(3):
            response = await console.post_login(Browser(), f"g{number}@example.com", headers=here)
            assert response.status == 401
        assert (await console.post_login(Browser(), "ana@example.com", headers=here)).status == 429


# -- API keys ----------------------------------------------------------------------------------


async def test_an_admin_makes_lists_and_revokes_api_keys_that_programs_use(
    console: Console,
) -> None:
    admin_rep = await console.add_rep("boss@example.com", role="admin")
    admin = await console.logged_in("boss@example.com")
    made = await console.request("POST", "/api/v1/keys", admin, json={"name": " Zapier "})
    assert made.status == 201
    assert made.headers["Cache-Control"] == "no-store"
    body = await made.json()
    key = body["key"]
    assert body["name"] == "Zapier"
    assert body["prefix"] == key[:8]
    assert body["created_by"] == admin_rep.id
    assert len(key) >= 40

    listed = await (await console.request("GET", "/api/v1/keys", admin)).json()
    assert [k["prefix"] for k in listed["keys"]] == [key[:8]]
    assert key not in str(listed)  # the key is never shown again
    assert set(listed["keys"][0]) == {
        "id",
        "name",
        "prefix",
        "created_by",
        "created_at",
        "revoked_at",
    }

    for headers in ({"Authorization": f"Bearer {key}"}, {"X-Api-Key": key}):
        me = await console.request("GET", "/api/v1/me", headers=headers)
        assert me.status == 200
        assert await me.json() == {
            "kind": "api_key",
            "api_key": {"id": body["id"], "name": "Zapier", "prefix": key[:8]},
        }

    revoked = await console.request("DELETE", f"/api/v1/keys/{body['id']}", admin)
    assert revoked.status == 204
    refused = await console.request("GET", "/api/v1/me", headers={"X-Api-Key": key})
    assert refused.status == 401
    assert "revoked" in (await refused.json())["error"]["message"]
    listed = await (await console.request("GET", "/api/v1/keys", admin)).json()
    assert listed["keys"][0]["revoked_at"] is not None
    again = await console.request("DELETE", f"/api/v1/keys/{body['id']}", admin)
    assert again.status == 204
    for missing in ("999", "abc", "1" * 30):
        response = await console.request("DELETE", f"/api/v1/keys/{missing}", admin)
        assert response.status == 404


async def test_a_key_cannot_make_or_revoke_keys(console: Console) -> None:
    await console.add_rep("boss@example.com", role="admin")
    admin = await console.logged_in("boss@example.com")
    body = await (await console.request("POST", "/api/v1/keys", admin, json={"name": "a"})).json()
    bearer = {"Authorization": f"Bearer {body['key']}"}
    made = await console.request("POST", "/api/v1/keys", json={"name": "b"}, headers=bearer)
    assert made.status == 403
    listed = await console.request("GET", "/api/v1/keys", headers=bearer)
    assert listed.status == 403
    revoke = await console.request("DELETE", f"/api/v1/keys/{body['id']}", headers=bearer)
    assert revoke.status == 403
    keys = await (await console.request("GET", "/api/v1/keys", admin)).json()
    assert [(k["name"], k["revoked_at"]) for k in keys["keys"]] == [("a", None)]


async def test_a_key_is_no_login_to_the_console(console: Console) -> None:
    await console.add_rep("boss@example.com", role="admin")
    admin = await console.logged_in("boss@example.com")
    body = await (await console.request("POST", "/api/v1/keys", admin, json={"name": "a"})).json()
    response = await console.request(
        "GET", "/console", headers={"Authorization": f"Bearer {body['key']}"}
    )
    assert response.status == 303


async def test_a_wrong_key_is_refused_even_with_a_session_alongside(console: Console) -> None:
    await console.add_rep("ana@example.com")
    browser = await console.logged_in("ana@example.com")
    for headers in (
        {"Authorization": "Bearer " + "x" * 40},
        {"Authorization": "Basic YW5hOnB3"},
        {"X-Api-Key": "short"},
        {"X-Api-Key": "ключ" * 10},
    ):
        response = await console.request("GET", "/api/v1/me", browser, headers=headers)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="leadbot"'


async def test_creating_a_key_without_the_csrf_token_makes_nothing(console: Console) -> None:
    await console.add_rep("boss@example.com", role="admin")
    admin = await console.logged_in("boss@example.com")
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": "é"}):
        response = await console.request(
            "POST", "/api/v1/keys", admin, csrf=False, headers=headers, json={"name": "x"}
        )
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "csrf_failed"
    assert await console.reps.keys() == []


async def test_a_bad_key_request_is_a_clear_400(console: Console) -> None:
    await console.add_rep("boss@example.com", role="admin")
    admin = await console.logged_in("boss@example.com")
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "a", "extra": 1}):
        response = await console.request("POST", "/api/v1/keys", admin, json=body)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == "bad_request"
    response = await console.request("POST", "/api/v1/keys", admin, data="name=x")
    assert response.status == 415
    assert await console.reps.keys() == []


# -- roles -------------------------------------------------------------------------------------


async def test_a_rep_may_not_manage_keys(console: Console) -> None:
    await console.add_rep("ana@example.com", role="rep")
    rep = await console.logged_in("ana@example.com")
    assert (await console.request("GET", "/api/v1/me", rep)).status == 200
    made = await console.request("POST", "/api/v1/keys", rep, json={"name": "mine"})
    assert made.status == 403
    assert (await made.json())["error"]["message"] == "this needs the admin role"
    assert (await console.request("GET", "/api/v1/keys", rep)).status == 403
    assert await console.reps.keys() == []
