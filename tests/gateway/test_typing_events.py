"""The customer typing indicator and customer messages on the agents' live event stream (SSE).

The whole product over real HTTP: a web chat customer, agents listening on /api/agent/events, the bot
worker handling the customer's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from tests_helpers import WebChatCustomer, eventually

from gateway.db.conversations import insert_inbound
from gateway.db.schema import messages, tickets
from gateway.models import Channel, CustomerRef, InboundMessage, utcnow
from gateway.runtime import Runtime
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.routing import Presence
from ticketing.service import assign_in

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class AgentStream:
    """One staff member's /api/agent/events, parsed into (kind, event) pairs as they arrive."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        resp = await self.client.get("/api/agent/events", headers={"Authorization": f"Bearer {self.token}"})
        assert resp.status == 200
        self._task = asyncio.create_task(self._read(resp))

    async def _read(self, resp: Any) -> None:
        kind = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                self.events.append((kind, json.loads(line[6:])))

    def of(self, kind: str, conversation_id: str) -> list[dict[str, Any]]:
        return [e for k, e in self.events if k == kind and e["conversation_id"] == conversation_id]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def assigned_ticket(rt: Runtime, visitor_id: str, agent_id: str) -> int:
    """A web chat conversation escalated and assigned to ``agent_id`` (skill logistics)."""
    now = utcnow()
    msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"{visitor_id}:first",
                               conversation_key=visitor_id, text="转人工", sent_at=now,
                               customer=CustomerRef(channel=Channel.WEBCHAT, external_id=visitor_id))
    async with rt.services.engine.begin() as conn:
        await insert_inbound(conn, msg)
        esc = await escalate_in(conn, msg.conversation_id, EscalationReason.ASKED_FOR_HUMAN, summary="转人工", now=now)
        await conn.execute(update(tickets).where(tickets.c.id == esc.ticket.id).values(skills=["logistics"],
                                                                                       channel="webchat"))
        await assign_in(conn, esc.ticket.id, agent_id, actor="test", now=now)
    return esc.ticket.id


async def message_rows(rt: Runtime, conversation_id: str) -> int:
    async with rt.services.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages)
                                       .where(messages.c.conversation_id == conversation_id))).scalar_one())


async def listeners(rt: Runtime) -> int:
    channel = rt.services.keys.events_channel()
    return int(dict(await rt.services.redis.pubsub_numsub(channel)).get(channel.encode(), 0))


async def test_typing_reaches_the_ticket_agent_throttled_and_unstored(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    s = rt.services
    _, owner_token = await s.agents.create("owner", "Owner", ["logistics"], 5)
    _, other_token = await s.agents.create("other", "Other", ["returns"], 5)
    _, sup_token = await s.agents.create("sup", "Sup", [], 5, role="supervisor")
    await s.presence.heartbeat("owner", Presence.ONLINE)  # the router never takes the ticket back
    customer = WebChatCustomer(client)
    await customer.start()
    conv = customer.conversation_id
    ticket_id = await assigned_ticket(rt, customer.session["visitor_id"], "owner")
    streams = {name: AgentStream(client, token) for name, token in
               (("owner", owner_token), ("other", other_token), ("sup", sup_token))}
    for stream in streams.values():
        await stream.start()
    await eventually(lambda: _at_least(rt, 3))
    owner, other, sup = streams["owner"], streams["other"], streams["sup"]
    rows, inbound = await message_rows(rt, conv), await s.redis.xlen(s.keys.inbound)
    auth = {k: customer.session[k] for k in ("visitor_id", "token")}
    try:
        for _ in range(3):  # a burst of keystrokes: one event
            resp = await client.post("/api/webchat/typing", json=auth)
            assert resp.status == 204
        await eventually(lambda: owner.of("customer_typing", conv))
        await eventually(lambda: sup.of("customer_typing", conv))
        event = owner.of("customer_typing", conv)[0]
        assert event["data"]["ticket_id"] == ticket_id and event["data"]["assignee_id"] == "owner"
        assert "text" not in event["data"]  # what is being typed never leaves the browser
        ttl = await s.redis.pttl(s.keys.typing_throttle(conv))
        assert 0 < ttl <= 2000
        await asyncio.sleep(0.3)
        assert len(owner.of("customer_typing", conv)) == 1
        assert not other.of("customer_typing", conv)  # not their ticket, not their queue
        # Live only: no transcript row, no stream entry, nothing sent to the customer.
        assert await message_rows(rt, conv) == rows
        assert await s.redis.xlen(s.keys.inbound) == inbound
        assert not await s.redis.exists(s.keys.webchat_outbox(customer.session["visitor_id"]))

        # After the throttle window the next keystroke is announced again.
        await eventually(lambda: _gone(rt, s.keys.typing_throttle(conv)), timeout=3.0)
        assert (await client.post("/api/webchat/typing", json=auth)).status == 204
        await eventually(lambda: len(owner.of("customer_typing", conv)) == 2)

        # A customer message in a conversation the agent owns reaches the agent live (transcript update).
        await customer.say("请问我的包裹到哪了")
        received = await eventually(lambda: owner.of("message_received", conv))
        assert received[0]["data"]["ticket_id"] == ticket_id and "包裹" in received[0]["data"]["text"]
        await eventually(lambda: sup.of("message_received", conv))
        await asyncio.sleep(0.3)
        assert not other.of("message_received", conv) and not other.of("customer_typing", conv)
    finally:
        for stream in streams.values():
            await stream.stop()
        await customer.stop()


async def test_typing_needs_the_visitor_token_and_an_open_ticket(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    s = rt.services
    _, sup_token = await s.agents.create("sup", "Sup", [], 5, role="supervisor")
    customer, stranger = WebChatCustomer(client), WebChatCustomer(client)
    await customer.start()
    await stranger.start()
    await assigned_ticket(rt, customer.session["visitor_id"], "sup")
    sup = AgentStream(client, sup_token)  # supervisors see every event: nothing may reach even them
    await sup.start()
    await eventually(lambda: _at_least(rt, 1))
    visitor = customer.session["visitor_id"]
    try:
        for body in ({"visitor_id": visitor, "token": "forged"},
                     {"visitor_id": visitor, "token": stranger.session["token"]},  # someone else's token
                     {"visitor_id": visitor}):
            resp = await client.post("/api/webchat/typing", json=body)
            assert resp.status == 401, body
        resp = await client.post("/api/webchat/typing", data=b"not json")
        assert resp.status == 400
        assert not await s.redis.exists(s.keys.typing_throttle(customer.conversation_id))
        # The stranger's own, valid notice: their chat is the bot's (no open ticket), so no one is told.
        resp = await client.post("/api/webchat/typing", json={k: stranger.session[k] for k in ("visitor_id", "token")})
        assert resp.status == 204
        await asyncio.sleep(0.3)
        assert not [e for k, e in sup.events if k == "customer_typing"]
    finally:
        await sup.stop()
        await customer.stop()
        await stranger.stop()


async def _at_least(rt: Runtime, n: int) -> bool:
    """Agent streams subscribe after answering 200: wait until they really listen."""
    return await listeners(rt) >= n


async def _gone(rt: Runtime, key: str) -> bool:
    return not await rt.services.redis.exists(key)


async def test_widget_sends_typing_at_most_every_two_seconds(live: tuple[Runtime, Any]) -> None:
    """The real widget in Debian's Chromium (skipped where Chromium or Playwright is missing)."""
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():  # noqa: ASYNC240 (one stat, before anything runs)
        pytest.skip("Chromium not installed (apt-get install chromium fonts-wqy-zenhei)")
    chromium = CHROMIUM
    _rt, client = live
    statuses: list[int] = []
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = await browser.new_page()
        page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/api/webchat/typing") else None)
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_function("document.querySelector('#huiliu-status').textContent === '已连接'")
        await page.type("#huiliu-input", "我想问一下退货", delay=60)  # ~0.4 s of keystrokes
        await eventually(lambda: statuses == [204])
        await asyncio.sleep(0.3)
        assert statuses == [204]
        await asyncio.sleep(2.0)
        await page.type("#huiliu-input", "的流程", delay=60)
        await eventually(lambda: statuses == [204, 204])
        await browser.close()
