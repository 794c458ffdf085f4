"""The agent workspace in a real browser (Playwright + Debian's Chromium) against the whole product.

Two browser pages talk through the real gateway (Redis, SQLite, the bot and delivery workers): a
customer on the web chat page ``/chat`` and an agent logged in to the console with a password. The
customer asks for a human; the ticket must appear in the agent's queue live (no reload), the agent
takes it over, answers with a canned response whose variables the server fills, adds a note, inserts a
suggested article and resolves -- and the customer's page shows the replies. Then the customer (and
their profile name) carry markup, which the workspace must show as text and never run.

The shop runs in claim mode (``ROUTING_MODE=claim``, 抢单): agents take tickets from their queue
themselves, which is the flow under test. In the default auto mode the router would hand the ticket
to the online agent within milliseconds; routing has its own tests in tests/ticketing.
"""

from __future__ import annotations

from typing import Any

from browser_helpers import chromium, console_page, require_browser, screenshot_path
from tests_helpers import eventually, serve_live

from gateway.config import Settings
from gateway.services import Services
from knowledge_index.embedder import Embedder
from ticketing.customers import Identity
from ticketing.priority import Tier
from ticketing.routing import Presence

require_browser()

AGENT, AGENT_NAME, PASSWORD = "li.na", "李娜", "password123"
XSS_IMG = "<img src=x onerror=\"document.title='pwned'\">"
XSS_SCRIPT = "<script>document.title='pwned'</script>"
DAMAGED = "水壶收到时壶盖是破的，可以退货吗？"
TIMEOUT = 20_000  # ms, for Playwright waits (two CPU cores are shared by several browser tests)


async def agent_page(browser: Any, base: str) -> Any:
    """The agent's console (1440x900, Chinese) logged in on ``#/workspace``."""
    page = await console_page(browser, base, AGENT, PASSWORD, route="#/workspace")
    await page.wait_for_selector("#ws-layout", timeout=TIMEOUT)
    return page


async def online_agent(browser: Any, base: str, s: Services) -> Any:
    """Create the agent, log in on the workspace, go online (checked on the server); returns the page."""
    await s.agents.create(AGENT, AGENT_NAME, ["returns", "logistics"], 5)
    await s.agents.set_password(AGENT, PASSWORD)
    page = await agent_page(browser, base)
    await page.wait_for_selector("#ws-conn[data-state=open]", timeout=TIMEOUT)
    assert await page.input_value("#ws-presence") == "offline"  # GET /api/me's presence
    await page.select_option("#ws-presence", "online")

    async def online() -> bool:
        return await s.presence.get(AGENT) is Presence.ONLINE

    await eventually(online, timeout=15)
    return page


async def chat_page(browser: Any, base: str) -> Any:
    """A web chat customer on ``/chat`` (own context: own visitor session), connected."""
    context = await browser.new_context(viewport={"width": 480, "height": 760}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/chat")
    await page.wait_for_function("document.querySelector('#huiliu-status').textContent === '已连接'",
                                 timeout=TIMEOUT)
    return page


async def say(page: Any, text: str) -> None:
    await page.fill("#huiliu-input", text)
    await page.click("#huiliu-send")


async def texts(page: Any, selector: str) -> list[str]:
    return list(await page.locator(selector).all_inner_texts())


async def test_agent_takes_a_live_ticket_and_answers_in_the_workspace(settings: Settings, embedder: Embedder) -> None:
    async with serve_live(settings.with_(routing_mode="claim"), embedder) as (rt, client):
        s = rt.services
        base = str(client.make_url("")).rstrip("/")

        async with chromium() as browser:
            agent = await online_agent(browser, base, s)
            await agent.click("#ws-tab-queue")
            await agent.wait_for_selector("#ws-list .ws-empty-list", timeout=TIMEOUT)  # loaded, nothing waiting

            # --- the customer asks for a human; the ticket shows up in the queue without a reload ---
            customer = await chat_page(browser, base)
            visitor = await customer.evaluate("JSON.parse(localStorage.getItem('huiliu.session')).visitor_id")
            await s.profiles.set_tier(Identity("webchat", visitor), Tier.VIP, now=s.clock(), name="王芳")
            await say(customer, "你好，我的订单12345到哪了？")
            await customer.locator(".huiliu-msg[data-author=bot]").first.wait_for(timeout=TIMEOUT)
            await say(customer, "转人工")
            card = agent.locator("#ws-list .ws-card").first
            await card.wait_for(timeout=TIMEOUT)
            ticket_id = int(await card.get_attribute("data-ticket-id") or 0)
            assert await card.get_attribute("id") == f"ws-ticket-{ticket_id}"
            assert await card.locator(".ws-card-name").inner_text() == "王芳"
            assert (await card.locator(".ws-card-meta .ws-status-new").inner_text()) == "待分配"

            # --- open and take over ---
            await card.click()
            await eventually(lambda: agent.url.endswith(f"#/workspace/{ticket_id}"), timeout=10)
            await agent.click("#ws-claim", timeout=TIMEOUT)
            await agent.wait_for_selector("#ws-status[data-status=assigned]", timeout=TIMEOUT)
            assert AGENT_NAME in await agent.inner_text("#ws-assignee")
            assert await agent.is_hidden("#ws-claim")
            # the ticket left the queue: the list follows it to "mine", still selected
            await agent.wait_for_selector("#ws-tab-mine.active .ws-count:text-is('1')", timeout=TIMEOUT)
            await agent.wait_for_selector(f"#ws-ticket-{ticket_id}.selected", timeout=TIMEOUT)

            # --- the customer types (indicator) and writes; both arrive live ---
            # Typed key by key over more than the widget's 2 s typing throttle, so a notice goes out
            # whenever the previous one (for "转人工") was sent.
            await customer.locator("#huiliu-input").press_sequentially(DAMAGED, delay=200)
            await agent.wait_for_selector("#ws-typing:not([hidden])", timeout=TIMEOUT)
            await customer.click("#huiliu-send")
            said = agent.locator("#ws-transcript .ws-msg[data-author=customer] .ws-msg-text", has_text=DAMAGED)
            await said.wait_for(timeout=TIMEOUT)
            await agent.locator("#ws-suggestions .ws-sugg-query", has_text="壶盖").wait_for(timeout=TIMEOUT)
            await agent.wait_for_selector("#ws-suggestions .ws-sugg", timeout=TIMEOUT)

            # --- a canned response, previewed with its variables filled by the server, sent by id ---
            await agent.select_option("#ws-canned", label="问候")

            async def previewed() -> bool:
                return str(await agent.input_value("#ws-reply-text")).startswith("王芳您好，我是客服李娜")

            await eventually(previewed, timeout=20)
            assert await agent.is_visible("#ws-canned-chip")
            await agent.press("#ws-reply-text", "Control+Enter")
            greeting = customer.locator(".huiliu-msg[data-author=agent] .huiliu-text").first
            await greeting.wait_for(timeout=TIMEOUT)
            assert (await greeting.inner_text()).startswith("王芳您好，我是客服李娜，很高兴为您服务")
            await agent.locator("#ws-transcript .ws-msg[data-author=agent]", has_text="王芳您好").wait_for(
                timeout=TIMEOUT)
            await agent.wait_for_selector("#ws-status[data-status=open]", timeout=TIMEOUT)

            # --- an internal note: in the transcript, never on the customer's page ---
            note = "已核实订单 12345，壶盖破损，走退货流程"
            await agent.check("#ws-note-toggle")
            await agent.fill("#ws-reply-text", note)
            await agent.click("#ws-reply-send")
            await agent.locator("#ws-transcript .ws-msg-note", has_text=note).wait_for(timeout=TIMEOUT)
            await agent.uncheck("#ws-note-toggle")

            # --- a suggested article goes into the reply box, and out as the agent's text ---
            answer_text = await agent.inner_text("#ws-suggestion-0 .ws-sugg-answer")
            await agent.click("#ws-suggestion-0")
            assert await agent.input_value("#ws-reply-text") == answer_text
            await agent.click("#ws-reply-send")
            await customer.locator(".huiliu-msg[data-author=agent]").nth(1).wait_for(timeout=TIMEOUT)
            agent_lines = await texts(customer, ".huiliu-msg[data-author=agent] .huiliu-text")
            assert agent_lines[1] == answer_text and not any(note in line for line in agent_lines)
            await agent.locator("#ws-transcript .ws-msg[data-author=agent]").nth(1).wait_for(timeout=TIMEOUT)

            # --- the customer panel: VIP profile, the identity and its proof, the order they mentioned ---
            assert await agent.inner_text("#ws-customer-name") == "王芳"
            assert await agent.inner_text("#ws-customer-tier") == "VIP 客户"
            assert visitor in await agent.inner_text("#ws-identities")
            await agent.locator("#ws-orders", has_text="12345").wait_for(timeout=TIMEOUT)
            await agent.fill("#ws-reply-text", "好的，我马上为您登记退货，请稍等～")  # a draft, for the picture
            await agent.wait_for_selector(".toast", state="detached", timeout=TIMEOUT)
            await agent.screenshot(path=screenshot_path("console-workspace.png"))
            await agent.fill("#ws-reply-text", "")

            # --- the transfer dialog opens and cancels; resolve ---
            await agent.click("#ws-transfer")
            await agent.wait_for_selector("#ws-transfer-dialog[open]", timeout=TIMEOUT)
            await agent.click("#ws-transfer-cancel")
            await agent.wait_for_selector("#ws-transfer-dialog", state="detached", timeout=TIMEOUT)
            await agent.click("#ws-resolve")
            await agent.wait_for_selector("#ws-status[data-status=resolved]", timeout=TIMEOUT)
            await agent.wait_for_selector(f"#ws-ticket-{ticket_id}", state="detached", timeout=TIMEOUT)

            # --- markup from the customer: shown as text, never run (the reply reopens the ticket) ---
            title = await agent.title()
            await s.profiles.set_tier(Identity("webchat", visitor), Tier.VIP, now=s.clock(), name=XSS_IMG)
            await say(customer, XSS_IMG)
            await say(customer, XSS_SCRIPT)
            customer_lines = "#ws-transcript .ws-msg[data-author=customer] .ws-msg-text"

            async def both_shown() -> bool:
                lines = await texts(agent, customer_lines)
                return XSS_IMG in lines and XSS_SCRIPT in lines

            await eventually(both_shown, timeout=20)
            await agent.wait_for_selector("#ws-status[data-status=open]", timeout=TIMEOUT)
            await agent.locator("#ws-customer-name", has_text="<img").wait_for(timeout=TIMEOUT)
            assert await agent.inner_text("#ws-customer-name") == XSS_IMG
            assert await agent.inner_text("#ws-head-name") == XSS_IMG
            mine = agent.locator(f"#ws-ticket-{ticket_id} .ws-card-name")
            await mine.wait_for(timeout=TIMEOUT)
            assert await mine.inner_text() == XSS_IMG
            assert await agent.locator("#ws-layout img").count() == 0
            assert await agent.locator("#ws-layout script").count() == 0
            assert await agent.title() == title != "pwned"

            # --- hand the chat back to the bot ---
            await agent.click("#ws-handback")
            await agent.wait_for_selector("#ws-status[data-status=resolved]", timeout=TIMEOUT)
            assert agent.errors == []


async def test_in_auto_mode_the_router_puts_the_ticket_in_my_queue_live(
        settings: Settings, embedder: Embedder) -> None:
    """The default ROUTING_MODE=auto: an online agent does nothing and the escalation arrives, assigned,
    in 我的 without a reload; the conversation opens from there."""
    async with serve_live(settings, embedder) as (rt, client):
        s = rt.services
        base = str(client.make_url("")).rstrip("/")
        async with chromium() as browser:
            agent = await online_agent(browser, base, s)
            customer = await chat_page(browser, base)
            await say(customer, "转人工")
            card = agent.locator("#ws-list .ws-card").first
            await card.wait_for(timeout=TIMEOUT)
            assert await agent.is_visible("#ws-tab-mine.active")
            ticket_id = int(await card.get_attribute("data-ticket-id") or 0)
            await card.click()
            await agent.wait_for_selector("#ws-status[data-status=assigned]", timeout=TIMEOUT)
            assert AGENT_NAME in await agent.inner_text("#ws-assignee")
            assert await agent.is_hidden("#ws-claim")  # already theirs: nothing to take
            assert agent.url.endswith(f"#/workspace/{ticket_id}")
            assert agent.errors == []
