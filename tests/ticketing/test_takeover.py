"""End to end over HTTP: the bot escalates, an agent takes over and replies, the customer receives it
on web chat, the bot stays silent, the agent hands back or resolves; every step in the audit log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from tests_helpers import eventually

from bot.replies import HUMAN_FOLLOW_UP
from gateway.app import build_app
from gateway.config import Settings
from gateway.runtime import Runtime, open_services, start_workers
from knowledge_index.embedder import Embedder

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: Any) -> AsyncIterator[tuple[Runtime, TestClient]]:  # type: ignore[type-arg]
    async with open_services(settings, embedder=embedder) as rt:
        start_workers(rt)
        client = TestClient(TestServer(build_app(rt.services)))
        await client.start_server()
        yield rt, client
        await client.close()


class Customer:
    def __init__(self, client: TestClient) -> None:  # type: ignore[type-arg]
        self.client = client
        self.session: dict[str, str] = {}
        self.seen: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.session = await (await self.client.post("/api/webchat/session", json={})).json()
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        resp = await self.client.get("/api/webchat/events", params={
            "visitor_id": self.session["visitor_id"], "token": self.session["token"]})
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                self.seen.append(json.loads(line[6:]))

    async def say(self, text: str) -> None:
        resp = await self.client.post("/api/webchat/messages", json={
            **{k: self.session[k] for k in ("visitor_id", "token")},
            "client_message_id": uuid.uuid4().hex, "text": text})
        assert resp.status == 202

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    @property
    def conversation_id(self) -> str:
        return f"webchat:{self.session['visitor_id']}"


async def test_takeover_reply_silence_and_hand_back(live: tuple[Runtime, TestClient]) -> None:  # type: ignore[type-arg]
    rt, client = live
    customer = Customer(client)
    await customer.start()
    try:
        await customer.say("你们老板的星座是什么，适合和双子座做朋友吗")
        await eventually(lambda: len(customer.seen) >= 1)
        assert customer.seen[0]["text"] == HUMAN_FOLLOW_UP["zh"]
        [ticket] = await rt.services.tickets.list_open()

        async def post(action: str, **body: Any) -> Any:
            return await client.post(f"/api/tickets/{ticket.id}/{action}", json=body, headers=ADMIN)

        assert (await post("reply", agent_id="li", text="hi")).status == 409  # nobody assigned yet
        assert (await post("assign", agent_id="li")).status == 200
        assert (await post("reply", agent_id="li", text="您好，我是客服小李，请问有什么可以帮您？")).status == 200
        await eventually(lambda: any(e["author"] == "agent" for e in customer.seen))
        agent_msg = next(e for e in customer.seen if e["author"] == "agent")
        assert agent_msg["text"] == "您好，我是客服小李，请问有什么可以帮您？"

        # While the agent owns the conversation the bot stays silent, even on a question it knows.
        await customer.say("怎么退货")
        lines = await eventually(lambda: _customer_lines(rt, customer.conversation_id, 2))
        assert lines[-1] == "怎么退货"
        await asyncio.sleep(0.5)
        assert [e["author"] for e in customer.seen] == ["bot", "agent"]

        assert (await post("hand-back", agent_id="li")).status == 200
        await customer.say("怎么退货")
        await eventually(lambda: len(customer.seen) >= 3)
        assert customer.seen[2]["author"] == "bot" and "7天内无理由退货" in customer.seen[2]["text"]

        audit = await (await client.get(f"/api/tickets/{ticket.id}", headers=ADMIN)).json()
        assert [e["kind"] for e in audit["events"]] == ["escalated", "assign", "agent_reply", "hand_back"]
        assert audit["status"] == "resolved" and audit["first_responded_at"] is not None
        assert (await post("resolve", agent_id="li")).status == 409  # already resolved
    finally:
        await customer.stop()


async def test_resolved_ticket_reopens_when_the_customer_writes_again(live: tuple[Runtime, TestClient]) -> None:  # type: ignore[type-arg]
    rt, client = live
    customer = Customer(client)
    await customer.start()
    try:
        await customer.say("转人工")
        await eventually(lambda: rt.services.tickets.list_open())
        [ticket] = await rt.services.tickets.list_open()
        for action in ("assign", "resolve"):
            resp = await client.post(f"/api/tickets/{ticket.id}/{action}", json={"agent_id": "wang"}, headers=ADMIN)
            assert resp.status == 200
        assert await rt.services.tickets.list_open() == []
        await customer.say("还是没收到退款")
        reopened = await eventually(lambda: rt.services.tickets.list_open())
        assert [t.id for t in reopened] == [ticket.id]
        audit = await (await client.get(f"/api/tickets/{ticket.id}", headers=ADMIN)).json()
        assert audit["status"] == "open" and audit["reopened_count"] == 1
        assert audit["events"][-1]["kind"] == "reopened"
    finally:
        await customer.stop()


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/tickets/999999/assign", {"agent_id": "x"}, 404),
    ("/api/tickets/abc/assign", {"agent_id": "x"}, 404),
    ("/api/tickets/1/assign", {}, 400),
    ("/api/tickets/1/assign", {"agent_id": ""}, 400),
])
async def test_bad_agent_requests(
    live: tuple[Runtime, TestClient], path: str, body: dict[str, Any], status: int  # type: ignore[type-arg]
) -> None:
    _rt, client = live
    assert (await client.post(path, json=body, headers=ADMIN)).status == status
    assert (await client.post(path, json=body)).status == 401


async def _customer_lines(rt: Runtime, conversation_id: str, n: int) -> list[str] | None:
    lines = [line.text for line in await rt.services.conversations.transcript(conversation_id)
             if line.author == "customer"]
    return lines if len(lines) >= n else None
