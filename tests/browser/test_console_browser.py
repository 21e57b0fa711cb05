"""The reps' console in a real browser (Debian's Chromium through Playwright) against the real
app on 127.0.0.1: logging in, the inbox, taking over, writing, a prospect's message appearing
live, handing back, a second rep seeing who holds it, and a phone-sized screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.conftest import failed
from tests.browser.screenshot import SIZE, take
from tests.browser.support import (
    CHROMIUM,
    LAUNCH_ARGS,
    LIVE,
    Pages,
    Served,
    chromium_or_skip,
    log_in,
    serving,
)

pytestmark = pytest.mark.browser


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    chromium_or_skip()
    async with serving(tmp_path / "browser.db") as running:
        yield running


@pytest.fixture
async def pages(request: pytest.FixtureRequest, served: Served) -> AsyncIterator[Pages]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        opened = Pages(browser)
        try:
            yield opened
        finally:
            if failed(request.node):
                for path in await opened.screenshots(request.node.name):
                    print(f"screenshot of the failed test: {path}")
            await browser.close()


async def test_a_rep_takes_over_writes_sees_the_prospect_live_and_hands_back(
    served: Served, pages: Pages
) -> None:
    await served.add_rep("ana@example.com", "Ana Ruiz")
    kim = await served.prospect(first_name="Kim")
    base = served.url
    rep = await pages.new()
    await log_in(rep, base, "ana@example.com")

    row = rep.locator(f'li.row[data-conversation="{kim.conversation_id}"]')
    await expect(row.locator(".name")).to_have_text("Kim")
    await expect(row.locator(".badge")).to_have_text("With the bot")
    await row.locator("a").click()
    await rep.wait_for_url(f"{base}/console/conversations/{kim.conversation_id}")
    await expect(rep.locator("#state")).to_have_text("With the bot")
    await expect(rep.locator("#transcript .line.bot .text").first).to_contain_text("Hi Kim!")
    await expect(rep.locator("#message")).to_have_count(0)  # nobody writes before taking over

    await rep.click("#take-over")
    await expect(rep.locator("#holder")).to_have_text("You hold this conversation")
    await expect(rep.locator("#state")).to_have_text("With a rep")

    chat = await pages.new()  # the prospect, in the web chat
    await chat.goto(f"{base}/chat/{kim.token}")
    await expect(chat.locator("#log .line.bot").last).to_have_text(
        "You're now chatting with Ana Ruiz from our team."
    )
    hello = "Hi Kim, Ana here. Which colour would you like?"
    await rep.fill("#message", hello)
    await rep.click("#compose button[type=submit]")
    await expect(rep.locator("#transcript .line.rep .text").last).to_have_text(hello)
    await expect(chat.locator("#log .line.rep").last).to_have_text(hello)
    await expect(rep.locator("#transcript .line.rep .delivery").last).to_have_text("sent")

    # The prospect answers: the line appears on the rep's page by itself, with no reload.
    await rep.evaluate("window.sameDocument = true")
    await chat.fill("#text", "Red, if you have it")
    await chat.press("#text", "Enter")
    await expect(rep.locator("#transcript .line.prospect .text").last).to_have_text(
        "Red, if you have it", timeout=LIVE
    )
    assert await rep.evaluate("window.sameDocument === true")

    await rep.click("#hand-back")
    await expect(rep.locator("#state")).to_have_text("With the bot")
    await expect(rep.locator("#transcript .line.system .text").last).to_have_text(
        "handed back to the bot"
    )
    await expect(rep.locator("#take-over")).to_be_visible()
    # The bot picks up where it left off, in the prospect's chat.
    await expect(chat.locator("#log .line.bot").last).to_have_text(
        "Which model would you like to drive?"
    )
    trail = rep.locator("#audit li")
    await expect(trail).to_have_count(3)
    await expect(trail.nth(0)).to_contain_text("Ana Ruiz (rep 1) took over")
    await expect(trail.nth(2)).to_contain_text("handed back to the bot")


async def test_the_inbox_shows_a_prospect_waiting_for_a_rep_live(
    served: Served, pages: Pages
) -> None:
    await served.add_rep("ana@example.com", "Ana Ruiz")
    early = await served.prospect(first_name="Early")
    rep = await pages.new()
    await log_in(rep, served.url, "ana@example.com")
    await expect(rep.locator("li.row")).to_have_count(1)
    await expect(rep.locator("#live")).to_have_text("Live")
    await rep.evaluate("window.sameDocument = true")

    wanda = await served.prospect(first_name="Wanda")
    await wanda.say("I'd rather talk to a person")
    row = rep.locator(f'li.row[data-conversation="{wanda.conversation_id}"]')
    await expect(row).to_have_class(re.compile(r"\bwaiting\b"), timeout=LIVE)
    await expect(row.locator(".waited")).to_have_text(re.compile(r"^waiting \d+ (s|min)$"))
    await expect(rep.locator("#waiting-banner")).to_contain_text("1 waiting for a rep")
    await expect(rep).to_have_title("(1) Inbox")
    # Newest activity first, and the page never reloaded.
    await expect(rep.locator("li.row").first).to_have_attribute(
        "data-conversation", str(wanda.conversation_id)
    )
    await expect(rep.locator("li.row").nth(1)).to_have_attribute(
        "data-conversation", str(early.conversation_id)
    )
    assert await rep.evaluate("window.sameDocument === true")

    await rep.fill("input[type=search]", "wanda")
    await rep.press("input[type=search]", "Enter")
    await expect(rep.locator("li.row")).to_have_count(1)
    await expect(rep.locator("li.row .name")).to_have_text("Wanda")


async def test_a_second_rep_sees_who_took_it_without_reloading(
    served: Served, pages: Pages
) -> None:
    await served.add_rep("ana@example.com", "Ana Ruiz")
    await served.add_rep("ben@example.com", "Ben Ode")
    kim = await served.prospect(first_name="Kim")
    path = f"{served.url}/console/conversations/{kim.conversation_id}"
    ana, ben = await pages.new(), await pages.new()
    await log_in(ana, served.url, "ana@example.com")
    await log_in(ben, served.url, "ben@example.com")
    await ben.goto(path)
    await expect(ben.locator("#live")).to_have_text("Live")
    await ben.fill("#note", "draft kept while the page changes")
    await ben.evaluate("window.sameDocument = true")

    await ana.goto(path)
    await ana.click("#take-over")
    await expect(ana.locator("#holder")).to_have_text("You hold this conversation")

    await expect(ben.locator("#holder")).to_have_text(
        "Ana Ruiz is handling this conversation", timeout=LIVE
    )
    await expect(ben.locator("#take-over")).to_have_count(0)
    await expect(ben.locator("#note")).to_have_value("draft kept while the page changes")
    await expect(ben.locator("#audit li")).to_contain_text(["Ana Ruiz (rep 1) took over"])
    assert await ben.evaluate("window.sameDocument === true")


async def test_the_console_fits_a_phone(served: Served, pages: Pages) -> None:
    await served.add_rep("ana@example.com", "Ana Ruiz")
    kim = await served.prospect(first_name="Kim")
    phone = await pages.new(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await log_in(phone, served.url, "ana@example.com")
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert await phone.evaluate(overflow) <= 0
    await phone.locator(f'li.row[data-conversation="{kim.conversation_id}"] a').tap()
    await expect(phone.locator("#take-over")).to_be_visible()
    assert await phone.evaluate(overflow) <= 0
    box = await phone.locator("#take-over").bounding_box()
    assert box is not None
    assert box["height"] >= 44
    await phone.locator("#take-over").tap()
    await expect(phone.locator("#message")).to_be_visible()
    assert await phone.evaluate(overflow) <= 0


async def test_the_readme_screenshot_is_drawn_by_its_script(tmp_path: Path) -> None:
    chromium_or_skip()
    target = tmp_path / "console.png"
    await take(target, tmp_path)
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (SIZE["width"], SIZE["height"])
