"""One customer across channels, end to end: messages on the real inbound stream, the real bot worker
storing and linking them, the agent's customer view over real HTTP.

The WeChat and e-mail messages are put on the stream the way their connectors will put them
(``bus.ingest``); tests through the real connectors come with them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from tests_helpers import eventually

from bot.worker import reply_id
from gateway.db.schema import customers, tickets
from gateway.models import Channel, CustomerRef, InboundMessage, utcnow
from gateway.runtime import Runtime
from ticketing.customers import Identity, tier_of
from ticketing.priority import Tier
from ticketing.routing import Presence

ADMIN = {"Authorization": "Bearer test-admin-token"}
ALL_TOPICS = ["logistics", "returns", "invoices", "billing", "appliances", "vip"]


@pytest.fixture
def served(live: tuple[Runtime, Any]) -> tuple[Runtime, Any]:
    """The live product with delivery stopped: no WeChat or e-mail connector is configured here, and a
    reply that cannot be delivered hands the chat to a human -- which is not what these tests are about."""
    rt, _client = live
    for task in rt.tasks:
        if task.get_name().startswith(("delivery", "outbound")):
            task.cancel()
    return live


async def say(rt: Runtime, channel: Channel, who: str, text: str, *, key: str | None = None,
              name: str | None = None, answered: bool = True) -> InboundMessage:
    """A customer message on the inbound stream, as a connector ingests it; returns once the bot
    worker stored it (and answered, unless a human owns the conversation)."""
    msg = InboundMessage.build(channel=channel, external_message_id=uuid.uuid4().hex, conversation_key=key or who,
                               customer=CustomerRef(channel=channel, external_id=who, display_name=name), text=text,
                               sent_at=utcnow())
    [result] = await rt.services.bus.ingest([msg])
    assert result.stream_id is not None

    async def stored() -> bool:
        ids = {line.id for line in await rt.services.conversations.transcript(msg.conversation_id)}
        return msg.message_id in ids and (not answered or reply_id(msg.message_id) in ids)

    await eventually(stored, timeout=20)
    return msg


async def open_ticket(rt: Runtime, conversation_id: str) -> dict[str, Any]:
    async with rt.services.engine.connect() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.conversation_id == conversation_id,
                                                        tickets.c.open_key.is_not(None)))).first()
    assert row is not None, f"no open ticket on {conversation_id}"
    return dict(row._mapping)


async def agent(rt: Runtime, agent_id: str, skills: list[str], *, online: bool = True) -> dict[str, str]:
    _, token = await rt.services.agents.create(agent_id, agent_id, skills, 5)
    if online:
        await rt.services.presence.heartbeat(agent_id, Presence.ONLINE)
    return {"Authorization": f"Bearer {token}"}


async def get_json(client: Any, path: str, headers: dict[str, str], status: int = 200) -> Any:
    resp = await client.get(path, headers=headers)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_wechat_then_email_with_the_same_order_number_is_one_customer_for_the_agent(
        served: tuple[Runtime, Any]) -> None:
    rt, client = served
    li = await agent(rt, "li", ALL_TOPICS)
    wx = await say(rt, Channel.WECHAT, "o-wx-wangfang", "你好，我的订单12345到哪了？", name="王芳")
    await say(rt, Channel.EMAIL, "wangfang@example.com", "订单12345 还没收到，请帮我查一下", key="thread-1",
              name="Wang Fang")
    handoff = await say(rt, Channel.EMAIL, "wangfang@example.com", "转人工", key="thread-1")
    ticket = await open_ticket(rt, handoff.conversation_id)

    # The agent opens the customer from the e-mail ticket and sees one person on two channels.
    row = await get_json(client, f"/api/tickets/{ticket['id']}", li)
    view = await get_json(client, f"/api/conversations/{row['conversation_id']}/customer", li)
    assert view["id"] is not None
    assert {(i["channel"], i["external_id"], i["proven_by"]) for i in view["identities"]} == {
        ("wechat", "o-wx-wangfang", "order:12345"), ("email", "wangfang@example.com", "order:12345")}
    convs = {c["channel"]: c for c in view["conversations"]}
    assert set(convs) == {"wechat", "email"}
    assert convs["wechat"]["id"] == wx.conversation_id and convs["wechat"]["customer_name"] == "王芳"
    assert convs["wechat"]["last_message"]["author"] == "bot"  # the bot's answer on WeChat
    assert convs["email"]["open_ticket"]["id"] == ticket["id"] and convs["email"]["state"] != "bot"
    assert [o["order_number"] for o in view["orders"]] == ["12345"]
    assert [(e["kind"], e["proof"]) for e in view["link_events"]] == [("linked", "order:12345")] * 2
    assert await get_json(client, f"/api/customers/{view['id']}", li) == view
    # the ticket view the agent already had names the same profile
    assert row["customer"]["id"] == view["id"]


async def test_a_tier_set_on_wechat_counts_on_the_email_escalation_after_the_link(
        served: tuple[Runtime, Any]) -> None:
    rt, client = served
    resp = await client.put("/api/customers/wechat/o-wx-vip", json={"tier": "vip"}, headers=ADMIN)
    assert resp.status == 200
    await say(rt, Channel.WECHAT, "o-wx-vip", "订单10086什么时候发货")
    # The e-mail both proves the link and asks for a human: the link is made first, so the ticket it
    # opens already carries the tier set on WeChat.
    vip = await open_ticket(rt, (await say(rt, Channel.EMAIL, "vip@example.com", "订单10086 转人工",
                                           key="thread-vip")).conversation_id)
    # A customer writing the same words without the proof stays a normal customer.
    plain = await open_ticket(rt, (await say(rt, Channel.EMAIL, "other@example.com", "转人工",
                                             key="thread-other")).conversation_id)
    assert (vip["tier"], plain["tier"]) == ("vip", "normal")
    assert "vip" in vip["skills"] and "vip" not in plain["skills"]
    assert "vip" in {r["code"] for r in vip["priority_reasons"]}
    async with rt.services.engine.connect() as conn:
        assert await tier_of(conn, Identity("email", "vip@example.com")) is Tier.VIP
    # ... and on a later escalation of the e-mail conversation, history counts both channels' tickets
    events = await get_json(client, f"/api/tickets/{vip['id']}", ADMIN)
    assert events["customer"]["tier"] == "vip"
    assert {i["channel"] for i in events["customer"]["identities"]} == {"wechat", "email"}


async def test_a_same_or_similar_name_never_links(served: tuple[Runtime, Any]) -> None:
    rt, client = served
    await say(rt, Channel.WECHAT, "o-wx-a", "你好", name="王芳")
    await say(rt, Channel.EMAIL, "wf@example.com", "你好", key="t-a", name="王芳")
    await say(rt, Channel.TELEGRAM, "777", "王芳 88888888", name="王 芳")  # an order-like number that is no order
    for conv, who in (("wechat:o-wx-a", "o-wx-a"), ("email:t-a", "wf@example.com"), ("telegram:777", "777")):
        view = await get_json(client, f"/api/conversations/{conv}/customer", ADMIN)
        assert view["id"] is None and [i["external_id"] for i in view["identities"]] == [who]
        assert [c["id"] for c in view["conversations"]] == [conv] and view["orders"] == []
    async with rt.services.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(customers)) == 0


async def test_an_agent_merges_verifies_and_unlinks(served: tuple[Runtime, Any]) -> None:
    rt, client = served
    s = rt.services
    li = await agent(rt, "li", ALL_TOPICS)
    zhao = await agent(rt, "zhao", ["invoices"], online=False)  # sees neither ticket
    a = (await s.profiles.set_tier(Identity("wechat", "o-wx-m"), Tier.VIP, now=utcnow(), name="马先生"))["id"]
    b = (await s.profiles.set_tier(Identity("email", "ma@example.com"), Tier.NORMAL, now=utcnow()))["id"]
    wx = await say(rt, Channel.WECHAT, "o-wx-m", "转人工")
    mail = await say(rt, Channel.EMAIL, "ma@example.com", "转人工", key="t-m")

    async def both_assigned() -> bool:
        rows = [await open_ticket(rt, c) for c in (wx.conversation_id, mail.conversation_id)]
        return all(r["assignee_id"] == "li" for r in rows)
    await eventually(both_assigned, timeout=20)

    await get_json(client, f"/api/customers/{a}", zhao, 404)
    resp = await client.post(f"/api/customers/{a}/merge", json={"other_id": b, "reason": "x"}, headers=zhao)
    assert resp.status == 404
    for body, status in (({"other_id": b}, 400), ({"other_id": "b", "reason": "x"}, 400),
                         ({"other_id": 99999, "reason": "x"}, 404), ({"other_id": a, "reason": "x"}, 400)):
        resp = await client.post(f"/api/customers/{a}/merge", json=body, headers=li)
        assert resp.status == status, (body, await resp.json())
        assert "error" in await resp.json()

    resp = await client.post(f"/api/customers/{a}/merge", headers=li,
                             json={"other_id": b, "reason": "客户在微信里说也发过邮件，核对了订单信息"})
    merged = await resp.json()
    assert resp.status == 200, merged
    assert merged["id"] == a and merged["tier"] == "vip" and merged["merged_from"] == [b]
    assert {i["external_id"]: i["proven_by"] for i in merged["identities"]}["ma@example.com"] == "merge:li"
    assert {c["channel"] for c in merged["conversations"]} == {"wechat", "email"}
    event = merged["link_events"][0]
    assert (event["kind"], event["actor"]) == ("merged", "li") and event["reason"].startswith("客户在微信里说")
    assert (await get_json(client, f"/api/customers/{b}", li))["id"] == a  # the old id follows the merge

    resp = await client.post(f"/api/customers/{a}/identities", headers=li,
                             json={"channel": "phone", "external_id": "+86 138 0013 8000", "note": "短信验证码核实"})
    assert resp.status == 201
    assert ("phone", "13800138000", "agent:li") in {
        (i["channel"], i["external_id"], i["proven_by"]) for i in (await resp.json())["identities"]}
    for body in ({"channel": "email", "external_id": "not-an-address"}, {"channel": "fax", "external_id": "1"},
                 {"channel": "phone"}):
        resp = await client.post(f"/api/customers/{a}/identities", json=body, headers=li)
        assert resp.status == 400 and "error" in await resp.json()

    resp = await client.delete(f"/api/customers/{a}/identities/email/ma@example.com", headers=li,
                               json={"reason": "不是同一人：邮箱是她同事的"})
    unlinked = await resp.json()
    assert resp.status == 200, unlinked
    assert "ma@example.com" not in {i["external_id"] for i in unlinked["identities"]}
    assert (unlinked["link_events"][0]["kind"], unlinked["link_events"][0]["reason"]) == (
        "unlinked", "不是同一人：邮箱是她同事的")
    alone = await get_json(client, f"/api/conversations/{mail.conversation_id}/customer", li)
    assert alone["id"] is None and alone["tier"] == "normal"
    resp = await client.delete(f"/api/customers/{a}/identities/email/ma@example.com", headers=li)
    assert resp.status == 404

    # From the e-mail ticket the agent links the customer again once verified: a new profile holds both.
    resp = await client.post(f"/api/conversations/{mail.conversation_id}/customer/identities", headers=li,
                             json={"channel": "telegram", "external_id": "5150", "note": "客户在邮件里给了 Telegram"})
    body = await resp.json()
    assert resp.status == 201, body
    assert {(i["channel"], i["proven_by"]) for i in body["identities"]} == {("email", "agent:li"),
                                                                           ("telegram", "agent:li")}
    resp = await client.post(f"/api/conversations/{mail.conversation_id}/customer/identities", headers=li,
                             json={"channel": "wechat", "external_id": "o-wx-m"})
    assert resp.status == 409 and "merge" in (await resp.json())["message"]


async def test_a_customer_view_for_an_unknown_customer_or_conversation_is_a_clear_404(
        served: tuple[Runtime, Any]) -> None:
    rt, client = served
    for path in ("/api/customers/424242", "/api/customers/not-a-number", "/api/conversations/wechat:nobody/customer"):
        body = await get_json(client, path, ADMIN, 404)
        assert body["error"] == "not_found"
    resp = await client.post("/api/customers/424242/merge", json={"other_id": 1, "reason": "x"}, headers=ADMIN)
    assert resp.status == 404
    pid = (await rt.services.profiles.set_tier(Identity("wechat", "o-1"), Tier.NORMAL, now=utcnow()))["id"]
    resp = await client.post(f"/api/customers/{pid}/identities", data=b"{not json", headers=ADMIN)
    assert resp.status == 400 and (await resp.json())["error"] == "bad_json"
    resp = await client.post(f"/api/customers/{pid}/merge", json=["not", "an", "object"], headers=ADMIN)
    assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
