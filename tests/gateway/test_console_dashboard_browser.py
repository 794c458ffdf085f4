"""The supervisor dashboard in a real browser (Playwright + Debian's Chromium) against the whole product.

Activity is made through the product, never by inserting rows: web chat customers over HTTP ask FAQs
the bot answers and questions it cannot answer (tickets, "unanswered questions"); an agent with a
bearer token takes those tickets, replies and resolves; the customers rate the service. Then a
supervisor logs in with a password and the page must show exactly what ``GET /api/metrics`` says.
"""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import chromium, console_page, require_browser, screenshot_path
from tests_helpers import WebChatCustomer, eventually, serve_live

from gateway.config import Settings
from knowledge_index.embedder import Embedder
from ticketing.metrics import normalize_question
from ticketing.routing import Presence

require_browser()

ALL_TOPICS = ["logistics", "returns", "invoices", "billing", "appliances"]
PASSWORD = "password123"
FAQS = ["怎么退货?", "How long does a refund take?"]
UNANSWERABLE = ["你们老板的星座是什么，适合和双子座做朋友吗", "你们仓库里养的猫叫什么名字"]
GAPS = [normalize_question(q) for q in UNANSWERABLE]  # as the report lists them (NFKC: "，" becomes ",")
LEFT_OPEN = "我想问问你们公司年会在哪里办"
KPI_FIELDS: dict[str, tuple[str, ...]] = {  # card -> where its figure is in the report
    "volume": ("deflection", "conversations"),
    "deflection": ("deflection", "rate"),
    "frt": ("overall", "first_response", "median"),
    "aht": ("overall", "handle_time", "mean"),
    "fcr": ("overall", "fcr", "rate"),
    "csat": ("overall", "csat", "mean"),
    "sla": ("overall", "sla", "rate"),
    "backlog": ("backlog", "total"),
}


def dig(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value[key]
    return value


def pct(rate: float) -> str:
    """The page's percentage format: one decimal at most, no trailing ".0"."""
    return f"{round(rate * 100, 1):g}%"


async def ask(client: Any, text: str) -> WebChatCustomer:
    """A new web chat customer who asks ``text`` and gets the bot's answer (or its hand-over notice)."""
    customer = WebChatCustomer(client)
    await customer.start()
    await customer.say(text)
    await eventually(lambda: customer.by("bot"), timeout=20)
    return customer


async def take(client: Any, ticket_id: int, agent: str, headers: dict[str, str]) -> None:
    """The agent claims the ticket; with the agent online the router may have assigned it first."""
    resp = await client.post(f"/api/tickets/{ticket_id}/claim", json={}, headers=headers)
    if resp.status != 200:
        body = await resp.json()
        assert (resp.status, body["error"]) == (409, "taken"), body

    async def assigned() -> bool:
        ticket = await (await client.get(f"/api/tickets/{ticket_id}", headers=headers)).json()
        return bool(ticket["assignee_id"] == agent)

    await eventually(assigned, timeout=15)


async def handle(client: Any, customer: WebChatCustomer, ticket_id: int, headers: dict[str, str], rating: int) -> None:
    """Reply, resolve, and let the customer tap a CSAT button."""
    resp = await client.post(f"/api/tickets/{ticket_id}/reply", json={"text": "您好，这个问题我来帮您查一下。"},
                             headers=headers)
    assert resp.status == 200, await resp.text()
    await eventually(lambda: customer.by("agent"), timeout=15)
    assert (await client.post(f"/api/tickets/{ticket_id}/resolve", json={}, headers=headers)).status == 200
    ask_rating = await eventually(lambda: [m for m in customer.by("system") if m.get("quick_replies")], timeout=15)
    await customer.say(ask_rating[0]["quick_replies"][rating - 1]["payload"])

    async def rated() -> bool:
        ticket = await (await client.get(f"/api/tickets/{ticket_id}", headers=headers)).json()
        return bool(ticket["csat"] == rating)

    await eventually(rated, timeout=15)


async def kpi_shown(page: Any, name: str) -> tuple[str, str]:
    value = page.locator(f"#dash-kpi-{name} .kpi-value")
    return (await value.inner_text()).strip(), await value.get_attribute("data-value") or ""


async def ready(page: Any, period: str) -> None:
    await page.wait_for_selector(f".dash[data-state=ready][data-period='{period}']", timeout=30_000)


async def check_against_api(page: Any, report: dict[str, Any]) -> None:
    for name, path in KPI_FIELDS.items():
        text, raw = await kpi_shown(page, name)
        expected = dig(report, path)
        if expected is None:
            assert (text, raw) == ("—", ""), name
        else:
            assert float(raw) == pytest.approx(expected), name
    assert (await kpi_shown(page, "volume"))[0] == str(report["deflection"]["conversations"])
    assert (await kpi_shown(page, "backlog"))[0] == str(report["backlog"]["total"])
    assert (await kpi_shown(page, "deflection"))[0] == pct(report["deflection"]["rate"])
    assert (await kpi_shown(page, "csat"))[0] == f"{report['overall']['csat']['mean']:.1f}"
    assert (await kpi_shown(page, "sla"))[0] == pct(report["overall"]["sla"]["rate"])


async def test_supervisor_dashboard(settings: Settings, embedder: Embedder, redis: Any) -> None:
    async with serve_live(settings, embedder) as (rt, client):
        s = rt.services
        _, li_token = await s.agents.create("li", "小李", ALL_TOPICS, 5)
        _, boss_token = await s.agents.create("boss", "王主管", [], 1, role="supervisor")
        for staff in ("li", "boss"):
            await s.agents.set_password(staff, PASSWORD)
        li = {"Authorization": f"Bearer {li_token}"}
        boss = {"Authorization": f"Bearer {boss_token}"}

        customers = [await ask(client, text) for text in FAQS]  # the bot answers these: deflected
        unanswered = [await ask(client, text) for text in UNANSWERABLE]
        customers += unanswered
        try:
            open_tickets = {t.conversation_id: t for t in await s.tickets.list_open()}
            assert set(open_tickets) == {c.conversation_id for c in unanswered}, "the FAQs must not escalate"
            assert {t.reason for t in open_tickets.values()} <= {"out_of_scope", "low_confidence"}

            # Li comes online and works both tickets; a third question arrives and stays with him, open.
            await s.presence.heartbeat("li", Presence.ONLINE)
            for customer, rating in zip(unanswered, (5, 4), strict=True):
                ticket_id = open_tickets[customer.conversation_id].id
                await take(client, ticket_id, "li", li)
                await handle(client, customer, ticket_id, li, rating)
            customers.append(await ask(client, LEFT_OPEN))
            [left_open] = await s.tickets.list_open()
            await take(client, left_open.id, "li", li)

            report = await (await client.get("/api/metrics", params={"period": "today", "group": "agent"},
                                             headers=boss)).json()
            assert report["deflection"]["by_channel"] == {
                "webchat": {"conversations": 5, "escalated": 3, "deflected": 2, "rate": 0.4}}
            assert report["overall"]["csat"]["count"] == 2 and report["overall"]["csat"]["mean"] == 4.5
            assert report["backlog"]["total"] == 1 and report["backlog"]["by_assignee"] == {"li": 1}
            questions = [q["question"] for q in report["top_unanswered"]]
            assert set(GAPS) <= set(questions)

            base = str(client.make_url("")).rstrip("/")
            async with chromium() as browser:
                page = await console_page(browser, base, "boss", PASSWORD, route="#/dashboard")
                assert await page.locator("a.nav-link[data-route=dashboard]").count() == 1
                await ready(page, "today")

                await check_against_api(page, report)
                webchat = page.locator("#dash-chart-channel [data-key=webchat]")
                assert await webchat.count() == 1 and await webchat.get_attribute("data-value") == "5"
                assert await page.locator("#dash-chart-backlog [data-key=P0]").count() == 1
                assert await page.locator("#dash-chart-trend svg.chart .line").count() == 3
                assert await page.locator("#dash-chart-trend [data-key]").count() >= 1  # hours up to now
                gaps = await page.locator("#dash-gaps").inner_text()
                assert all(q in gaps for q in GAPS)
                assert await page.locator("#dash-gaps .gap-write").count() == 0  # writing articles: admins only
                row = page.locator("#dash-agents tr[data-agent=li]")
                assert "小李" in await row.inner_text()
                assert (await row.locator(".col-handled").inner_text()).strip() == "2"
                assert (await row.locator(".col-load").inner_text()).strip() == "1 / 5"
                assert (await row.locator(".col-csat").inner_text()).strip() == "4.5 (2)"
                await page.wait_for_selector("#dash-live.online", timeout=15_000)
                await page.screenshot(path=screenshot_path("console-dashboard.png"))

                # Sorting by a header: by name ascending, then descending.
                rows = page.locator("#dash-agents tbody tr")
                await page.click("#dash-agents button[data-sort=agent]")
                order = await rows.evaluate_all("rows => rows.map(r => r.dataset.agent)")
                await page.click("#dash-agents button[data-sort=agent]")
                reverse = await rows.evaluate_all("rows => rows.map(r => r.dataset.agent)")
                assert order == ["li", "boss"] and reverse == ["boss", "li"]

                # Another period re-renders with that period's figures and a daily trend.
                await page.click("#dash-period-7d")
                await ready(page, "7d")
                week = await (await client.get("/api/metrics", params={"period": "7d", "group": "agent"},
                                               headers=boss)).json()
                await check_against_api(page, week)
                assert await page.get_attribute("#dash-period-7d", "aria-pressed") == "true"
                assert await page.locator("#dash-chart-trend [data-key]").count() == 7
                assert page.errors == [], page.errors

                # An admin can turn a knowledge gap into a draft article.
                admin = await console_page(browser, base, "admin", settings.admin_token)
                await admin.evaluate("location.hash = '#/dashboard'")
                await ready(admin, "today")
                await admin.locator("#dash-gaps tr", has_text=GAPS[0]).locator(".gap-write").click()
                await admin.wait_for_function("location.hash === '#/kb'")
                assert await admin.evaluate("sessionStorage.getItem('huiliu.kb.draftQuestion')") == GAPS[0]

                # An agent has no dashboard: no link, and the route says so.
                agent = await console_page(browser, base, "li", PASSWORD)
                assert await agent.locator("a.nav-link[data-route=dashboard]").count() == 0
                await agent.evaluate("location.hash = '#/dashboard'")
                await agent.wait_for_selector("#view >> text=没有权限访问此页面", timeout=15_000)
                assert await agent.locator(".dash").count() == 0
                assert (await client.get("/api/metrics", headers=li)).status == 403
        finally:
            for customer in customers:
                await customer.stop()
