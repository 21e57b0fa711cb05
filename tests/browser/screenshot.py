"""The README's picture of the console (docs/console.png): a real conversation on the real app,
drawn by Debian's Chromium through Playwright.

    .venv/bin/python -m tests.browser.screenshot [docs/console.png]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from tests.browser.support import CHROMIUM, LAUNCH_ARGS, ROOT, log_in, serving

DEFAULT = ROOT / "docs" / "console.png"
SIZE = {"width": 1280, "height": 900}
OFFER = "Hi Kim, Ana here. We have 0% financing on the SUV X this month. Shall I send the numbers?"


async def take(target: Path, workdir: Path) -> None:
    async with serving(workdir / "screenshot.db") as served, async_playwright() as playwright:
        await served.add_rep("ana@example.com", "Ana Ruiz")
        await served.add_rep("ben@example.com", "Ben Ode")
        kim = await served.prospect(
            first_name="Kim", _utm_source="tiktok", _utm_campaign="spring-suv-test-drive"
        )
        await kim.tap("model", "suv_x")
        await kim.tap("timeline", "now")
        await kim.say("yes, a 2016 Golf")
        await kim.say("Could I talk to a person about financing first?")
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(viewport=SIZE, device_scale_factor=1)
            page = await context.new_page()
            await log_in(page, served.url, "ana@example.com")
            await page.goto(f"{served.url}/console/conversations/{kim.conversation_id}")
            await page.click("#take-over")
            await page.fill("#message", OFFER)
            await page.click("#compose button[type=submit]")
            await kim.say("Yes please, and is it available in red?")
            await page.locator("#transcript .line.prospect .text").last.wait_for()
            # Until the prospect's line is the last one, there is no such element: `?.` keeps
            # the wait going instead of failing it on null (the rep's line may still be last).
            await page.wait_for_function(
                "document.querySelector('#transcript .line.prospect:last-child .text')"
                "?.textContent.includes('red')"
            )
            await page.fill("#note", "Wants financing figures; trade-in 2016 Golf.")
            await page.click("#notes button[type=submit]")
            await page.wait_for_selector("#transcript .line.note")
            await page.wait_for_function(
                "[...document.querySelectorAll('#transcript .delivery')]"
                ".every(d => !['queued', 'sending'].includes(d.textContent))"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(target))
        finally:
            await browser.close()


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(take(target, Path(workdir)))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
