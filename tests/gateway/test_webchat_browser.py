"""The web chat page in a real browser (Playwright driving Debian's Chromium) against a real gateway.

Skipped with a message where Chromium or Playwright is missing (`apt-get install chromium
fonts-wqy-zenhei`); `playwright install` is never used: it downloads browsers.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.config import Settings
from gateway.redis_conn import free_port
from gateway.runtime import open_services, start_workers
from knowledge_index.embedder import Embedder

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed")
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed (apt-get install chromium fonts-wqy-zenhei)", allow_module_level=True)


@pytest.fixture
async def server(settings: Settings, embedder: Embedder, redis: Any) -> AsyncIterator[str]:
    async with open_services(settings, embedder=embedder) as rt:
        start_workers(rt)
        runner = web.AppRunner(build_app(rt.services))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}"
        await runner.cleanup()


async def test_customer_chats_with_the_bot_in_a_browser(server: str) -> None:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page(viewport={"width": 480, "height": 760})
        await page.goto(f"{server}/chat")
        await page.wait_for_function("document.querySelector('#huiliu-status').textContent === '已连接'")
        await page.fill("#huiliu-input", "怎么退货?")
        await page.click("#huiliu-send")
        answer = page.locator(".huiliu-msg[data-author=bot] .huiliu-text").first
        await answer.wait_for(timeout=15_000)
        assert "7天内无理由退货" in await answer.inner_text()

        payload = "<img src=x onerror=\"document.title='pwned'\">"
        await page.fill("#huiliu-input", payload)
        await page.press("#huiliu-input", "Enter")
        mine = page.locator(".huiliu-msg[data-author=customer] .huiliu-text").last
        await page.locator(".huiliu-msg[data-author=bot]").nth(1).wait_for(timeout=15_000)
        assert await mine.inner_text() == payload  # shown as text ...
        assert await page.locator("#huiliu-messages img").count() == 0  # ... never as markup
        assert await page.title() != "pwned"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "webchat.png"))

        # A reload keeps the visitor's session and replays the replies it already received.
        await page.reload()
        await page.locator(".huiliu-msg[data-author=bot]").nth(1).wait_for(timeout=15_000)
        await browser.close()
