"""The ticketing core end to end, over real HTTP, Redis and SQLite (the issue's "must show"):

customer on web chat → bot fails → ticket with priority and skills → assigned to the right online
agent → the agent (watching the live event stream) replies with a canned response and the customer
receives it → the bot stays silent → resolve → CSAT asked and recorded → metrics reflect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests_helpers import WebChatCustomer, eventually

from gateway.runtime import Runtime
from ticketing.routing import Presence

ADMIN = {"Authorization": "Bearer test-admin-token"}
ALL_TOPICS = ["logistics", "returns", "invoices", "billing", "appliances"]


class AgentStream:
    """An agent's browser: the live SSE stream of /api/agent/events (token in the query, as EventSource)."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 10)

    async def _run(self) -> None:
        resp = await self.client.get("/api/agent/events", params={"access_token": self.token})
        assert resp.status == 200
        async for raw in resp.content:
            line = raw.decode().strip()
            if line == ": connected":
                self.connected.set()
            if line.startswith("data: "):
                self.events.append(json.loads(line[6:]))

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def test_web_chat_to_agent_to_csat_to_metrics(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    s = rt.services
    # Two online agents with every topic; only Mei serves VIPs. A third, Zhao, holds VIP but is offline.
    _, li_token = await s.agents.create("li", "小李", ALL_TOPICS, 5)
    _, mei_token = await s.agents.create("mei", "小美", [*ALL_TOPICS, "vip"], 5)
    await s.agents.create("zhao", "小赵", [*ALL_TOPICS, "vip"], 5)
    _, sup_token = await s.agents.create("boss", "主管", [], 1, role="supervisor")
    for agent in ("li", "mei"):
        await s.presence.heartbeat(agent, Presence.ONLINE)
    mei = {"Authorization": f"Bearer {mei_token}"}
    mei_stream = AgentStream(client, mei_token)
    li_stream = AgentStream(client, li_token)
    await mei_stream.start()
    await li_stream.start()

    customer = WebChatCustomer(client)
    await customer.start()
    try:
        # The shop marks this customer VIP (customer profile), then the bot fails on an angry threat.
        resp = await client.put(f"/api/customers/webchat/{customer.session['visitor_id']}", json={"tier": "vip"},
                                headers=ADMIN)
        assert resp.status == 200 and (await resp.json())["tier"] == "vip"
        await customer.say("你们的破烧水壶用了两天就坏了！！！再不处理我就去12315投诉，还要给差评！")
        await eventually(lambda: len(customer.by("bot")) >= 2)
        assert customer.by("bot")[-1]["text"].startswith("预计等待约")  # the SLA promise, shown to the customer

        # Ticket: priority with reasons, skills, SLA due times; routed to Mei (VIP skill, online).
        [open_ticket] = await s.tickets.list_open()
        ticket = await eventually(lambda: _assigned(rt, open_ticket.id))
        assert ticket["assignee_id"] == "mei"
        assert ticket["priority"] <= 1  # threat floor P1, VIP raise on top
        codes = {r["code"] for r in ticket["priority_reasons"]}
        assert {"threat", "vip"} <= codes
        assert "vip" in ticket["skills"] and ticket["tier"] == "vip"
        assert ticket["first_response_due"] is not None and ticket["resolution_due"] is not None
        triaged = next(e for e in ticket["events"] if e["kind"] == "triaged")
        assert triaged["data"]["why"].startswith(("P0", "P1"))

        # Mei's console got the assignment live; Li's did not (not his ticket, not his queue).
        await eventually(lambda: "ticket_assigned" in mei_stream.kinds())
        assert all(e["data"].get("ticket_id") != ticket["id"] or e["kind"] == "escalated"
                   for e in li_stream.events if e["kind"] != "escalated")

        # Agent assist: knowledge suggestions for the customer's last message.
        sugg = await (await client.get(f"/api/tickets/{ticket['id']}/suggestions", headers=mei)).json()
        assert sugg["query"].startswith("你们的破烧水壶") and sugg["suggestions"]

        # Mei answers with a canned response; the variables are filled in from the ticket.
        canned = await (await client.post("/api/canned", json={
            "title": "致歉", "text": "{customer_name}您好，我是{agent_name}，非常抱歉给您带来不便，马上为您处理。"},
            headers=ADMIN)).json()
        resp = await client.post(f"/api/tickets/{ticket['id']}/reply", json={"canned_id": canned["id"]}, headers=mei)
        assert resp.status == 200, await resp.text()
        await eventually(lambda: customer.by("agent"))
        assert customer.by("agent")[0]["text"] == "亲您好，我是小美，非常抱歉给您带来不便，马上为您处理。"

        # The customer writes again: Mei sees it live, the bot stays silent.
        await customer.say("好的，我等你们处理")
        await eventually(lambda: any(e["kind"] == "message_received" and e["data"].get("text") == "好的，我等你们处理"
                                     for e in mei_stream.events))
        await asyncio.sleep(0.3)
        assert len(customer.by("bot")) == 2

        # An internal note never reaches the customer.
        assert (await client.post(f"/api/tickets/{ticket['id']}/note", json={"text": "已安排换新"},
                                  headers=mei)).status == 200

        # Resolve: the customer is asked for a rating on web chat, with 1-5 buttons.
        assert (await client.post(f"/api/tickets/{ticket['id']}/resolve", json={}, headers=mei)).status == 200
        ask = await eventually(lambda: customer.by("system"))
        assert "1-5" in ask[0]["text"] or "1–5" in ask[0]["text"] or "打分" in ask[0]["text"]
        assert len(ask[0]["quick_replies"]) == 5
        await customer.say(ask[0]["quick_replies"][-1]["payload"])  # taps "5 非常满意"
        await eventually(lambda: len(customer.by("system")) >= 2)  # thank-you
        rated = await (await client.get(f"/api/tickets/{ticket['id']}", headers=mei)).json()
        assert rated["csat"] == 5 and rated["status"] == "resolved"
        kinds = [e["kind"] for e in rated["events"]]
        assert kinds[:2] == ["escalated", "triaged"] and kinds[-4:] == ["note", "resolve", "csat_requested", "csat"]
        assert all(m["text"] != "已安排换新" for m in customer.seen)

        # Metrics (supervisor): today's CSAT, first response, FCR, deflection, per agent.
        sup = {"Authorization": f"Bearer {sup_token}"}
        report = await (await client.get("/api/metrics", params={"group": "agent"}, headers=sup)).json()
        overall = report["overall"]
        assert overall["csat"]["count"] == 1 and overall["csat"]["mean"] == 5
        assert overall["first_response"]["count"] == 1 and overall["first_response"]["mean"] is not None
        assert overall["fcr"]["rate"] == 1.0
        assert "mei" in report["groups"]
        assert report["deflection"]["conversations"] == 1 and report["deflection"]["escalated"] == 1
        assert (await client.get("/api/metrics", headers=mei)).status == 403  # agents don't see the dashboard

        prom = await (await client.get("/metrics")).text()
        families = {f.name: f for f in text_string_to_metric_families(prom)}
        csat = [smp.value for smp in families["huiliu_csat_average"].samples]
        assert csat and csat[0] == 5.0
    finally:
        await customer.stop()
        await mei_stream.stop()
        await li_stream.stop()


async def _assigned(rt: Runtime, ticket_id: int) -> dict[str, Any] | None:
    row = await rt.services.ticket_service.get(ticket_id)
    return row if row["assignee_id"] else None
