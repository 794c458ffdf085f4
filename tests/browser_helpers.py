"""Shared pieces of the browser tests: Debian's Chromium under Playwright, and a logged-in console.

Chromium comes from apt (`make browser`); `playwright install` is never used, it downloads browsers.
Test modules call ``require_browser()`` at import time, so they skip with a message where Chromium or
Playwright is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def require_browser() -> Any:
    """The playwright.async_api module; skips the calling test module when the browser is missing."""
    module = pytest.importorskip("playwright.async_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium not installed (apt-get install chromium fonts-wqy-zenhei)", allow_module_level=True)
    return module


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright Browser); each test opens its own contexts (separate cookies)."""
    playwright_api = require_browser()
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def console_page(browser: Any, base_url: str, username: str, password: str, *,
                       width: int = 1440, height: int = 900, lang: str = "zh", route: str = "") -> Any:
    """A new browser context (its own cookies) logged in to the console at ``route`` (a hash such as
    ``#/dashboard``; default: the workspace); returns the page.

    Errors on the page (uncaught exceptions, console errors) are collected in ``page.errors`` so a
    test can assert the console ran cleanly."""
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.errors = errors
    await page.goto(f"{base_url}/console/{route}")
    if lang != "zh":
        await page.evaluate("code => localStorage.setItem('huiliu.lang', code)", lang)
        await page.reload()
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_selector("header.topbar", timeout=15_000)
    # The boot's GET /api/session answers 401 before the login, and Chromium logs every 4xx as a
    # console error: that one is expected; everything after the login counts.
    errors.clear()
    return page


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / name)
