"""End to end over HTTP: the bot escalates, an agent takes over and replies, the customer receives it
on web chat, the bot stays silent, the agent hands back or resolves; every step in the audit log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests_helpers import WebChatCustomer, eventually

from bot.replies import HUMAN_FOLLOW_UP
from gateway.runtime import Runtime

ADMIN = {"Authorization": "Bearer test-admin-token"}


async def test_takeover_reply_silence_and_hand_back(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await rt.services.agents.create("li", "小李", ["logistics"], 5)
    customer = WebChatCustomer(client)
    await customer.start()
    try:
        await customer.say("你们老板的星座是什么，适合和双子座做朋友吗")
        await eventually(lambda: len(customer.seen) >= 2)
        assert customer.seen[0]["text"] == HUMAN_FOLLOW_UP["zh"]
        assert customer.seen[1]["text"].startswith("预计等待约")  # the SLA promise, Chinese first
        [ticket] = await rt.services.tickets.list_open()

        async def post(action: str, **body: Any) -> Any:
            return await client.post(f"/api/tickets/{ticket.id}/{action}", json=body, headers=ADMIN)

        assert (await post("reply", text="hi")).status == 409  # nobody assigned yet
        assert (await post("assign", agent_id="li")).status == 200
        assert (await post("reply", text="您好，我是客服小李，请问有什么可以帮您？")).status == 200
        await eventually(lambda: customer.by("agent"))
        assert customer.by("agent")[0]["text"] == "您好，我是客服小李，请问有什么可以帮您？"

        # While the agent owns the conversation the bot stays silent, even on a question it knows.
        await customer.say("怎么退货")
        lines = await eventually(lambda: _customer_lines(rt, customer.conversation_id, 2))
        assert lines[-1] == "怎么退货"
        await asyncio.sleep(0.5)
        assert [e["author"] for e in customer.seen] == ["bot", "bot", "agent"]

        assert (await post("hand-back")).status == 200
        await customer.say("怎么退货")
        await eventually(lambda: len(customer.seen) >= 4)
        assert customer.seen[3]["author"] == "bot" and "7天内无理由退货" in customer.seen[3]["text"]

        audit = await (await client.get(f"/api/tickets/{ticket.id}", headers=ADMIN)).json()
        assert [e["kind"] for e in audit["events"]] == ["escalated", "triaged", "assign", "agent_reply", "hand_back"]
        assert audit["status"] == "resolved" and audit["first_responded_at"] is not None
        assert (await post("resolve")).status == 409  # already resolved
    finally:
        await customer.stop()


async def test_resolved_ticket_reopens_when_the_customer_writes_again(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await rt.services.agents.create("wang", "小王", [], 5)
    customer = WebChatCustomer(client)
    await customer.start()
    try:
        await customer.say("转人工")
        await eventually(lambda: rt.services.tickets.list_open())
        [ticket] = await rt.services.tickets.list_open()
        for action, body in (("assign", {"agent_id": "wang"}), ("resolve", {})):
            resp = await client.post(f"/api/tickets/{ticket.id}/{action}", json=body, headers=ADMIN)
            assert resp.status == 200, await resp.text()
        assert await rt.services.tickets.list_open() == []
        await customer.say("谢谢")  # courtesy: does not reopen (the bot answers it)
        await customer.say("还是没收到退款")
        reopened = await eventually(lambda: rt.services.tickets.list_open())
        assert [t.id for t in reopened] == [ticket.id]
        audit = await (await client.get(f"/api/tickets/{ticket.id}", headers=ADMIN)).json()
        assert audit["status"] == "open" and audit["reopened_count"] == 1
        assert audit["events"][-1]["kind"] == "reopened"
        assert audit["next_response_due"] is not None  # the reopened ticket needs an answer
    finally:
        await customer.stop()


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/tickets/999999/assign", {"agent_id": "x"}, 404),
    ("/api/tickets/abc/assign", {"agent_id": "x"}, 404),
    ("/api/tickets/{id}/assign", {}, 400),
    ("/api/tickets/{id}/assign", {"agent_id": ""}, 400),
    ("/api/tickets/{id}/assign", {"agent_id": "nobody"}, 400),
    ("/api/tickets/{id}/reply", {"text": ""}, 400),
    ("/api/tickets/{id}/transfer", {}, 400),
    ("/api/tickets/{id}/transfer", {"skills": "returns"}, 400),
    ("/api/tickets/{id}/reply", {"canned_id": 424242}, 400),
])
async def test_bad_agent_requests(live: tuple[Runtime, Any], path: str, body: dict[str, Any], status: int) -> None:
    rt, client = live
    customer = WebChatCustomer(client)
    await customer.start()
    await customer.say("转人工")
    [ticket] = await eventually(lambda: rt.services.tickets.list_open())
    await customer.stop()
    path = path.replace("{id}", str(ticket.id))
    assert (await client.post(path, json=body, headers=ADMIN)).status == status
    assert (await client.post(path, json=body)).status == 401


async def _customer_lines(rt: Runtime, conversation_id: str, n: int) -> list[str] | None:
    lines = [line.text for line in await rt.services.conversations.transcript(conversation_id)
             if line.author == "customer"]
    return lines if len(lines) >= n else None
