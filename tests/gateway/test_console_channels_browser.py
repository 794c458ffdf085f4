"""The channel status page in a real browser (Playwright + Debian's Chromium) against the whole product.

A Taobao feed runs against the fake TOP, which refuses the consume call with an error text carrying
markup; the page shows one card per channel, the feed's error as plain text (no element made from
it), the web chat URL on this server's origin, the variables a channel without configuration needs,
and refreshes on demand — all without a JS error.
"""

from __future__ import annotations

from typing import Any

from browser_helpers import chromium, console_page, require_browser, screenshot_path
from fakes.taobao_top import CONSUME, FakeTop
from tests_helpers import eventually, serve_live

from gateway.config import Settings
from knowledge_index.embedder import Embedder

require_browser()

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
TIMEOUT = 20_000


async def test_channel_cards_render_and_a_feed_error_is_text(
    settings: Settings, embedder: Embedder, redis: Any
) -> None:
    top = FakeTop(app_key="12345678", app_secret="top-s3cret", session="seller-session",
                  send_method="test.wangwang.send", groups=frozenset({"huiliu"}))
    await top.start()
    for _ in range(3):  # a permanent error waits a minute before the next try: three cover the test
        top.fail_next(CONSUME, 27, "Invalid session", "invalid-sessionkey", XSS)
    s = settings.with_(taobao_app_key="12345678", taobao_app_secret="top-s3cret", taobao_session="seller-session",
                       taobao_api_base=top.url, taobao_sign_method="hmac-sha256", taobao_tmc_group="huiliu",
                       taobao_chat_topics=("test_wangwang_ChatMessage",), taobao_poll_idle_s=0.05)
    try:
        async with serve_live(s, embedder) as (rt, client):
            base = str(client.make_url("")).rstrip("/")
            status_key = rt.services.keys.feed_status("taobao:12345678:huiliu")
            await eventually(lambda: _errored(redis, status_key))
            async with chromium() as browser:
                page = await console_page(browser, base, "admin", s.admin_token, route="#/admin/channels")
                dialogs: list[str] = []
                page.on("dialog", lambda d: dialogs.append(d.message))
                error = page.locator("#chan-card-taobao [data-testid=chan-error-taobao]")
                await error.wait_for(timeout=TIMEOUT)
                assert XSS in await error.text_content()
                assert await page.locator("#view img, #view script").count() == 0
                assert await page.locator("#chan-card-taobao").get_attribute("data-configured") == "true"
                assert await page.locator("#chan-card-taobao [data-testid=chan-health-taobao]").get_attribute(
                    "data-state") == "error"

                assert await page.locator(".chan-card").count() == 9
                assert await page.locator("#chan-card-webchat").get_attribute("data-configured") == "true"
                assert await page.locator("#chan-url-webchat").text_content() == f"{base}/chat"
                wechat = page.locator("#chan-card-wechat")
                assert await wechat.get_attribute("data-configured") == "false"
                for name in ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN"):
                    assert await wechat.locator(f"li[data-name={name}]").count() == 1
                assert await page.locator("#chan-url-wechat").text_content() == f"{base}/webhooks/wechat"
                assert await page.locator("#chan-pipeline #chan-in-backlog").count() == 1

                body = page.locator("#chan-body")
                before = await body.get_attribute("data-generated")
                await page.click("#chan-refresh")
                await page.wait_for_function(
                    "old => document.querySelector('#chan-body').dataset.generated !== old", arg=before,
                    timeout=TIMEOUT)
                await page.screenshot(path=screenshot_path("console-channels.png"), full_page=True)

                await page.click("a[data-route=workspace]")  # leaving the page stops its timer cleanly
                await page.wait_for_selector("main.view-workspace", timeout=TIMEOUT)
                assert not dialogs
                assert page.errors == []
    finally:
        await top.stop()


async def _errored(redis: Any, key: str) -> bool:
    state: Any = await redis.hget(key, "state")
    return bool(state == b"error")
