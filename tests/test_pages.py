"""The hosted form, the chooser and its redirects, end to end on the real application."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

from bot.records import Submission
from bot.tokens import TokenSigner
from storage.tables import LeadRow
from webhooks.app import create_app
from webhooks.keys import DATABASE, INTAKE
from webhooks.ratelimit import RateLimiter
from webhooks.settings import Settings

SECRET = "test-secret-key-0123456789"
SCRIPT = "car-test-drive"
LEADS = LeadRow.__table__  # type: ignore[attr-defined]


def now() -> datetime:
    return datetime.now(UTC)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        secret_key=SECRET,
        public_url="http://testserver",
        **overrides,
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(make_settings(tmp_path)))


async def stored_leads(client: TestClient[Any, Any]) -> list[Any]:
    async with client.app[DATABASE].reading() as connection:  # type: ignore[index]
        return list((await connection.execute(select(LEADS).order_by(LEADS.c.id))).all())


def nonce_in(page: str) -> str:
    match = re.search(r'name="_nonce" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def good_form(nonce: str, **changes: str) -> dict[str, str]:
    form = {
        "_nonce": nonce,
        "_lang": "en",
        "_utm_campaign": "spring",
        "first_name": "Ana",
        "phone": "612 345 678",
        "email": "Ana@Example.com",
        "_consent": "yes",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value != "-"}


async def submit(client: TestClient[Any, Any], **changes: str) -> ClientResponse:
    page = await (await client.get(f"/f/{SCRIPT}")).text()
    return await client.post(
        f"/f/{SCRIPT}", data=good_form(nonce_in(page), **changes), allow_redirects=False
    )


async def token_from_form(client: TestClient[Any, Any]) -> str:
    response = await submit(client)
    assert response.status == 303
    return response.headers["Location"].removeprefix("/r/")


# -- the form ----------------------------------------------------------------------------------


async def test_form_renders_the_script_fields_prefilled_and_escaped(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get(
        f"/f/{SCRIPT}",
        params={"first_name": "Ana", "utm_campaign": "<script>alert(1)</script>", "x": "y"},
    )
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]  # no JS on the form
    page = await response.text()
    assert "<title>Book a test drive</title>" in page
    assert re.search(
        r'name="first_name" type="text" value="Ana"[^>]*autocomplete="given-name"', page
    )
    assert re.search(r'name="phone" type="tel"[^>]*autocomplete="tel"[^>]*inputmode="tel"', page)
    assert re.search(r'name="email" type="email"[^>]*autocomplete="email"', page)
    assert "Model you are interested in <small>(optional)</small>" in page
    assert 'name="_utm_campaign" value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "<script>alert" not in page
    assert 'name="x"' not in page  # only attribution keys ride along
    # The script's form_consent is the consent sentence, and it is required; the chat's own
    # consent question (marketing e-mails) is not a condition of submitting the form.
    assert "I agree that Acme Motors contacts me in chat about my test drive." in page
    assert "May we email you our offers" not in page
    assert re.search(r'name="_consent" value="yes" required', page)
    assert nonce_in(page).startswith("form-")


async def test_each_rendering_gets_its_own_nonce(client: TestClient[Any, Any]) -> None:
    first = await (await client.get(f"/f/{SCRIPT}")).text()
    second = await (await client.get(f"/f/{SCRIPT}")).text()
    assert nonce_in(first) != nonce_in(second)


async def test_form_speaks_the_browser_language(client: TestClient[Any, Any]) -> None:
    response = await client.get(f"/f/{SCRIPT}", headers={"Accept-Language": "es-ES,es;q=0.9"})
    page = await response.text()
    assert '<html lang="es">' in page
    assert "Modelo que te interesa" in page
    assert ">Nombre<" in page
    assert "Acepto que Acme Motors me contacte por chat" in page
    assert 'name="_lang" value="es"' in page


async def test_unknown_script_is_a_friendly_404(client: TestClient[Any, Any]) -> None:
    for response in (
        await client.get("/f/no-such-script"),
        await client.post("/f/no-such-script", data={"first_name": "Ana"}),
    ):
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "This form does not exist any more" in await response.text()


async def test_invalid_entries_come_back_with_a_message_each(client: TestClient[Any, Any]) -> None:
    response = await submit(client, first_name="", email="not an email", phone="12", _consent="-")
    assert response.status == 400
    assert response.content_type == "text/html"
    page = await response.text()
    assert "Please check the fields marked below." in page
    assert 'id="e-first_name">Please fill this in.' in page
    assert "That doesn&#39;t look like an email address." in page
    assert "That doesn&#39;t look like a phone number." in page
    assert 'id="e-consent">Please tick this box to continue.' in page
    assert 'value="not an email"' in page  # what was typed stays, to correct it
    assert 'name="_utm_campaign" value="spring"' in page
    assert await stored_leads(client) == []


async def test_hostile_input_is_escaped_on_the_error_page(client: TestClient[Any, Any]) -> None:
    response = await submit(client, email="<script>x</script>")
    page = await response.text()
    assert response.status == 400
    assert "<script>x" not in page
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in page


async def test_a_good_form_stores_the_lead_and_goes_to_the_chooser(
    client: TestClient[Any, Any],
) -> None:
    page = await (await client.get(f"/f/{SCRIPT}?utm_source=tiktok&ad_id=42")).text()
    nonce = nonce_in(page)
    form = good_form(
        nonce, _utm_source="tiktok", _ad_id="42", preferred_model="SUV", padding="x" * 1000
    )
    response = await client.post(f"/f/{SCRIPT}", data=form, allow_redirects=False)
    assert response.status == 303
    assert re.fullmatch(r"/r/[A-Za-z0-9_-]+", response.headers["Location"])
    [lead] = await stored_leads(client)
    assert lead.source == "form"
    assert lead.external_id == nonce
    assert lead.script_id == SCRIPT
    assert lead.phone == "+34612345678"  # national number, read with the script's region
    assert lead.email == "Ana@example.com"  # the domain is case-blind, the mailbox may not be
    assert lead.language == "en"
    assert lead.fields["first_name"] == "Ana"
    assert lead.fields["preferred_model"] == "SUV"
    assert lead.attribution == {"utm_source": "tiktok", "utm_campaign": "spring", "ad_id": "42"}
    assert lead.consent_text == "I agree that Acme Motors contacts me in chat about my test drive."
    assert lead.consent_at == lead.submitted_at
    assert lead.raw["phone"] == "612 345 678"  # as typed
    assert "padding" not in lead.raw  # only the form's own inputs are kept


async def test_the_same_rendering_submitted_twice_is_one_lead(
    client: TestClient[Any, Any],
) -> None:
    page = await (await client.get(f"/f/{SCRIPT}")).text()
    form = good_form(nonce_in(page))
    first = await client.post(f"/f/{SCRIPT}", data=form, allow_redirects=False)
    second = await client.post(f"/f/{SCRIPT}", data=form, allow_redirects=False)
    assert first.status == second.status == 303
    assert len(await stored_leads(client)) == 1
    signer = TokenSigner(SECRET.encode())
    tokens = [r.headers["Location"].removeprefix("/r/") for r in (first, second)]
    assert {signer.verify(token, now()) for token in tokens} == {(await stored_leads(client))[0].id}


async def test_a_script_without_form_consent_uses_the_default_sentence(
    client: TestClient[Any, Any],
) -> None:
    page = await (await client.get("/f/b2b-services")).text()
    assert "I agree to be contacted in chat about my request." in page
    assert 'name="_consent" value="yes" required' in page
    assert "Company website <small>(optional)</small>" in page
    form = {
        "_nonce": nonce_in(page),
        "first_name": "Bo",
        "last_name": "Lee",
        "email": "bo@acme.example",
        "company": "Acme",
        "job_title": "COO",
        "website": "not a site",
        "_consent": "yes",
    }
    response = await client.post("/f/b2b-services", data=form, allow_redirects=False)
    assert response.status == 400
    assert "Please enter a web address" in await response.text()
    form["website"] = "acme.example"
    response = await client.post("/f/b2b-services", data=form, allow_redirects=False)
    assert response.status == 303
    [lead] = await stored_leads(client)
    assert lead.fields["website"] == "https://acme.example"
    assert lead.consent_text == "I agree to be contacted in chat about my request."


async def test_a_post_without_a_nonce_still_makes_a_lead(client: TestClient[Any, Any]) -> None:
    """A business's own site may post its form here directly."""
    form = good_form("-", _nonce="-")
    for _ in range(2):
        response = await client.post(f"/f/{SCRIPT}", data=form, allow_redirects=False)
        assert response.status == 303
    leads = await stored_leads(client)
    assert len(leads) == 2
    assert all(lead.external_id.startswith("form-") for lead in leads)


async def test_too_many_posts_from_one_address_get_429(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, form={"per_minute": 2})))
    for _ in range(2):
        assert (await submit(client)).status == 303
    response = await submit(client)
    assert response.status == 429
    assert response.content_type == "text/html"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert "Please wait a minute" in await response.text()
    assert len(await stored_leads(client)) == 2


def test_the_limiter_slides_and_forgets_idle_addresses() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60.0, max_keys=3, clock=lambda: now[0])
    assert limiter.hit("a") == 0.0
    now[0] = 10.0
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(50.0)  # the first hit leaves the window at 60
    now[0] = 60.5
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(9.5)
    for key in "bcd":
        limiter.hit(key)
    assert len(limiter) == 3  # bounded: the least recently seen address went
    now[0] = 1000.0
    limiter.hit("e")
    assert len(limiter) == 1  # idle addresses are forgotten


# -- the chooser -------------------------------------------------------------------------------


async def test_chooser_lists_the_enabled_apps_and_the_reference(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        telegram={"bot_username": "acme_bot"},
        twilio={"whatsapp_number": "+34600000000"},
    )
    client = await aiohttp_client(create_app(settings))
    token = await token_from_form(client)
    response = await client.get(f"/r/{token}")
    assert response.status == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = await response.text()
    [lead] = await stored_leads(client)
    assert f'<span class="code">{lead.reference}</span>' in page
    assert "Or type this code in any chat with us:" in page
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs == [f"/r/{token}/telegram", f"/r/{token}/whatsapp", f"/r/{token}/web"]
    assert ">Telegram<" in page
    assert ">Chat here in the browser<" in page

    telegram = await client.get(f"/r/{token}/telegram", allow_redirects=False)
    assert telegram.status == 302
    assert telegram.headers["Location"] == f"https://t.me/acme_bot?start={token}"
    whatsapp = await client.get(f"/r/{token}/whatsapp", allow_redirects=False)
    assert whatsapp.headers["Location"] == (
        f"https://wa.me/34600000000?text=Hi%21%20My%20reference%20is%20{lead.reference}"
    )


async def test_the_web_app_redirects_to_the_chat(client: TestClient[Any, Any]) -> None:
    token = await token_from_form(client)
    page = await (await client.get(f"/r/{token}")).text()
    assert re.findall(r'href="([^"]+)"', page) == [f"/r/{token}/web"]
    response = await client.get(f"/r/{token}/web", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == f"http://testserver/chat/{token}"


async def test_an_app_that_is_not_enabled_is_a_friendly_404(client: TestClient[Any, Any]) -> None:
    token = await token_from_form(client)
    response = await client.get(f"/r/{token}/telegram", allow_redirects=False)
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "That app isn&#39;t available here." in await response.text()


def altered(token: str) -> str:
    replacement = "A" if token[5] != "A" else "B"
    return token[:5] + replacement + token[6:]


def expired_token(lead_id: int) -> str:
    return TokenSigner(SECRET.encode(), lifetime=timedelta(seconds=-1)).sign(
        lead_id, datetime.now(UTC)
    )


@pytest.mark.parametrize("suffix", ["", "/web"])
async def test_bad_links_get_friendly_pages(client: TestClient[Any, Any], suffix: str) -> None:
    token = await token_from_form(client)
    [lead] = await stored_leads(client)
    for bad in (altered(token), "not-a-token", TokenSigner(b"other key").sign(lead.id, now())):
        response = await client.get(f"/r/{bad}{suffix}", allow_redirects=False)
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "This link doesn&#39;t work" in await response.text()
    response = await client.get(f"/r/{expired_token(lead.id)}{suffix}", allow_redirects=False)
    assert response.status == 410
    assert "This link has expired" in await response.text()
    # Signed by us, for a lead that is not (or no longer) stored.
    unknown = TokenSigner(SECRET.encode()).sign(lead.id + 100, now())
    response = await client.get(f"/r/{unknown}{suffix}", allow_redirects=False)
    assert response.status == 404
    assert "Traceback" not in await response.text()


async def test_switched_off_form_and_web_chat(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        form={"enabled": False},
        web_chat={"enabled": False},
        telegram={"bot_username": "acme_bot"},
    )
    client = await aiohttp_client(create_app(settings))
    assert (await client.get(f"/f/{SCRIPT}")).status == 404
    assert (await client.post(f"/f/{SCRIPT}", data={"first_name": "Ana"})).status == 404
    # Leads still come in by other routes; their chooser offers no web chat.
    submission = Submission(source="api:test", external_id="1", fields={}, raw={})
    [accepted] = await client.app[INTAKE].submit([submission], SCRIPT)  # type: ignore[index]
    page = await (await client.get(f"/r/{accepted.token}")).text()
    assert re.findall(r'href="([^"]+)"', page) == [f"/r/{accepted.token}/telegram"]
    assert (await client.get(f"/r/{accepted.token}/web")).status == 404
    assert (await client.get(f"/chat/{accepted.token}")).status == 404
