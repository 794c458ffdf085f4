"""The running gateway over HTTP: web chat and Telegram in, replies out, bad input -> 4xx, nothing lost.

Real aiohttp server, real Redis, real SQLite, real workers, the demo knowledge base; only Telegram's
cloud is replaced, by a local server speaking the Bot API wire format.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fakes.telegram_api import FakeTelegram
from tests_helpers import eventually, serve_live

from bot.replies import HUMAN_FOLLOW_UP
from gateway.config import Settings
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder

TOKEN = "123456789:AAE-test_token"
SECRET = "hook_Secret-42"
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: Any,
               fake_tg: FakeTelegram) -> AsyncIterator[tuple[Runtime, TestClient]]:  # type: ignore[type-arg]
    s = settings.with_(telegram_mode="webhook", telegram_bot_token=TOKEN, telegram_webhook_secret=SECRET,
                       telegram_api_base=fake_tg.base_url, max_body_bytes=64 * 1024)
    async with serve_live(s, embedder) as served:
        yield served


async def new_session(client: TestClient) -> dict[str, str]:  # type: ignore[type-arg]
    resp = await client.post("/api/webchat/session", json={})
    assert resp.status == 200
    data: dict[str, str] = await resp.json()
    return data


async def send_chat(client: TestClient, sess: dict[str, str], text: str) -> Any:  # type: ignore[type-arg]
    return await client.post("/api/webchat/messages", json={
        "visitor_id": sess["visitor_id"], "token": sess["token"],
        "client_message_id": uuid.uuid4().hex, "text": text})


async def read_sse(client: TestClient, sess: dict[str, str], n: int) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    events: list[dict[str, Any]] = []
    resp = await client.get("/api/webchat/events", params={"visitor_id": sess["visitor_id"],
                                                           "token": sess["token"]})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    async with asyncio.timeout(15):
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == n:
                    break
    resp.close()
    return events


async def test_webchat_question_answered_over_sse(live: tuple[Runtime, TestClient]) -> None:  # type: ignore[type-arg]
    rt, client = live
    sess = await new_session(client)
    resp = await send_chat(client, sess, "怎么退货?")
    assert resp.status == 202
    [event] = await read_sse(client, sess, 1)
    article = rt.services.kb.article("return-how")
    assert article is not None and event["text"] == article.answer and event["author"] == "bot"


async def test_webchat_session_is_reused_and_forgeries_rejected(live: tuple[Runtime, TestClient]) -> None:  # type: ignore[type-arg]
    rt, client = live
    sess = await new_session(client)
    again = await (await client.post("/api/webchat/session", json=sess)).json()
    assert again["visitor_id"] == sess["visitor_id"]
    other = await new_session(client)
    forged = {"visitor_id": other["visitor_id"], "token": sess["token"]}
    resp = await send_chat(client, forged, "偷看别人的对话")
    assert resp.status == 401
    resp = await client.get("/api/webchat/events", params=forged)
    assert resp.status == 401
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == 0
    assert await rt.services.conversations.get(f"webchat:{other['visitor_id']}") is None


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (b"\xff\xfe", 400),
    (b'{"visitor_id": 5, "token": "x"}', 401),
    (b"x" * (70 * 1024), 413),
])
async def test_webchat_bad_input_is_4xx(live: tuple[Runtime, TestClient], body: bytes, status: int) -> None:  # type: ignore[type-arg]
    rt, client = live
    resp = await client.post("/api/webchat/messages", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    assert "error" in await resp.json()
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == 0


@pytest.mark.parametrize(("text", "status"), [("", 400), ("   ", 400), ("长" * 2001, 400)])
async def test_webchat_bad_text_is_rejected(live: tuple[Runtime, TestClient], text: str, status: int) -> None:  # type: ignore[type-arg]
    _rt, client = live
    resp = await send_chat(client, await new_session(client), text)
    assert resp.status == status


def tg_update(update_id: int, text: str, chat: int = 4242) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "from": {"id": chat, "first_name": "Test", "is_bot": False},
        "chat": {"id": chat, "type": "private"}, "date": 1763000000, "text": text}}


async def post_update(client: TestClient, update: dict[str, Any] | bytes, secret: str | None = SECRET) -> Any:  # type: ignore[type-arg]
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return await client.post("/webhooks/telegram", data=body, headers=headers)


async def test_telegram_redelivered_update_answered_once(
    live: tuple[Runtime, TestClient], fake_tg: FakeTelegram  # type: ignore[type-arg]
) -> None:
    rt, client = live
    update = tg_update(1001, "怎么退货")
    for _ in range(3):  # Telegram retries when it did not see our 200 in time
        assert (await post_update(client, update)).status == 200
    await eventually(lambda: fake_tg.sent_messages(4242))
    await asyncio.sleep(0.5)  # give any duplicate time to show up
    sent = fake_tg.sent_messages(4242)
    assert len(sent) == 1
    assert sent[0]["text"] == rt.services.kb.article("return-how").answer  # type: ignore[union-attr]
    lines = await rt.services.conversations.transcript("telegram:4242")
    assert [line.direction for line in lines] == ["in", "out"]


async def test_telegram_bad_secret_is_401_and_nothing_stored(
    live: tuple[Runtime, TestClient], fake_tg: FakeTelegram  # type: ignore[type-arg]
) -> None:
    rt, client = live
    for secret in ("wrong_secret", None, ""):
        resp = await post_update(client, tg_update(2002, "怎么退货"), secret=secret)
        assert resp.status == 401
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == 0
    assert not await rt.services.redis.exists(rt.services.keys.dedupe("telegram", "123456789:2002"))
    assert await rt.services.conversations.get("telegram:4242") is None
    # The real update, delivered again later with the right secret, is still accepted (not deduped away).
    assert (await post_update(client, tg_update(2002, "怎么退货"))).status == 200


@pytest.mark.parametrize(("body", "status"), [
    (b"{oops", 400), (b'"just a string"', 400), (b'{"update_id": "x"}', 400),
    (b'{"update_id": 1, "message": {"chat": 5}}', 400), (b"y" * (70 * 1024), 413),
])
async def test_telegram_malformed_is_4xx(live: tuple[Runtime, TestClient], body: bytes, status: int) -> None:  # type: ignore[type-arg]
    rt, client = live
    resp = await post_update(client, body)
    assert resp.status == status
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == 0


async def test_telegram_unanswerable_becomes_ticket(
    live: tuple[Runtime, TestClient], fake_tg: FakeTelegram  # type: ignore[type-arg]
) -> None:
    rt, client = live
    update = tg_update(3003, "你们老板的星座是什么，适合和双子座做朋友吗", chat=77)
    assert (await post_update(client, update)).status == 200
    await eventually(lambda: fake_tg.sent_messages(77))
    assert fake_tg.sent_messages(77)[0]["text"] == HUMAN_FOLLOW_UP["zh"]
    [ticket] = await rt.services.tickets.list_open()
    assert ticket.conversation_id == "telegram:77"
    resp = await client.get("/api/tickets", headers=ADMIN)
    assert [t["conversation_id"] for t in (await resp.json())["tickets"]] == ["telegram:77"]


async def test_admin_api_needs_token_and_new_article_answers(live: tuple[Runtime, TestClient]) -> None:  # type: ignore[type-arg]
    _rt, client = live
    assert (await client.get("/api/kb/articles")).status == 401
    assert (await client.get("/api/kb/articles", headers={"Authorization": "Bearer nope"})).status == 401
    article = {"id": "gift-wrap", "title": "可以礼品包装吗？", "questions": ["能帮我包装成礼物吗", "有没有礼盒包装"],
               "answer": "亲，下单时备注“礼品包装”即可免费包装哦。", "tags": ["service"], "language": "zh"}
    resp = await client.post("/api/kb/articles", json=article, headers=ADMIN)
    assert resp.status == 201 and (await resp.json())["status"] == "draft"
    assert (await client.post("/api/kb/articles", json=article, headers=ADMIN)).status == 409
    preview = await (await client.post("/api/kb/search", json={"text": "能给我包成礼物吗"}, headers=ADMIN)).json()
    assert preview["answer"] != "gift-wrap"  # drafts are not answered
    assert (await client.post("/api/kb/articles/gift-wrap/publish", headers=ADMIN)).status == 200
    preview = await (await client.post("/api/kb/search", json={"text": "能给我包成礼物吗"}, headers=ADMIN)).json()
    assert preview["answer"] == "gift-wrap" and preview["hits"][0]["title"] == "可以礼品包装吗？"
    sess = await new_session(client)
    await send_chat(client, sess, "能给我包成礼物吗")
    [event] = await read_sse(client, sess, 1)
    assert event["text"] == article["answer"]
    for bad in ({"text": ""}, {"text": "x", "k": 0}, {"nope": 1}):
        assert (await client.post("/api/kb/search", json=bad, headers=ADMIN)).status == 400
    assert (await client.post("/api/kb/articles", json={"id": "bad id!", "title": "x"}, headers=ADMIN)).status == 400
    assert (await client.delete("/api/kb/articles/gift-wrap", headers=ADMIN)).status == 200
    assert (await client.get("/api/kb/articles/gift-wrap", headers=ADMIN)).status == 404

