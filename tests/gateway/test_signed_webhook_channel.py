"""The signed webhook channel over real HTTP: a bridge pushes a chat in, the bot's reply comes back signed.

The whole product runs (``serve_live``); the "bridge" is this test: it signs pushes like an integrator
would (docs/webhook-channel.md) and runs the callback receiver on loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from fakes.loopback import serve_app
from tests_helpers import eventually, serve_live

from connectors.marketplace_sign import check_webhook, webhook_signature
from gateway.config import Settings
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder

SECRET = "bridge-secret-0123456789"


class Callback:
    """The integrator's callback endpoint: records every reply we POST to it."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.json_response({"ok": True})

    def replies(self) -> list[dict[str, Any]]:
        return [json.loads(body)["reply"] for _headers, body in self.got]


@pytest.fixture
async def callback() -> AsyncIterator[Callback]:
    cb = Callback()
    app = web.Application()
    app.router.add_post("/huiliu/replies", cb.handle)
    runner, base = await serve_app(app)
    cb.url = f"{base}/huiliu/replies"
    yield cb
    await runner.cleanup()


@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: aioredis.Redis,
               callback: Callback) -> AsyncIterator[tuple[Runtime, TestClient]]:  # type: ignore[type-arg]
    s = settings.with_(webhook_secret=SECRET, webhook_callback_url=callback.url, max_body_bytes=64 * 1024)
    async with serve_live(s, embedder) as served:
        yield served


def push_body(msg_id: str = "tb-1001", text: str = "怎么退货", conversation: str = "shop1-buyer42") -> bytes:
    return json.dumps({"version": 1, "messages": [{
        "id": msg_id, "platform": "taobao", "conversation": conversation,
        "customer": {"id": "buyer42", "name": "小王"}, "text": text,
        "sent_at": datetime.now(UTC).isoformat()}]}, ensure_ascii=False).encode()


def sign(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {"Content-Type": "application/json", "X-Huiliu-Timestamp": stamp,
            "X-Huiliu-Signature": webhook_signature(secret, stamp, body)}


async def nothing_stored(rt: Runtime, conversation_id: str = "webhook:taobao:shop1-buyer42") -> bool:
    s = rt.services
    return (await s.redis.xlen(s.keys.inbound) == 0
            and not await s.redis.exists(s.keys.dedupe("webhook", "taobao:tb-1001"))
            and await s.conversations.get(conversation_id) is None)


async def test_push_is_answered_by_a_signed_callback(
    live: tuple[Runtime, TestClient], callback: Callback  # type: ignore[type-arg]
) -> None:
    rt, client = live
    body = push_body()
    resp = await client.post("/webhooks/inbound", data=body, headers=sign(body))
    assert resp.status == 200
    receipt = await resp.json()
    assert receipt["accepted"] == 1 and receipt["duplicates"] == 0
    assert receipt["messages"][0]["id"] == "tb-1001" and receipt["messages"][0]["platform"] == "taobao"
    await eventually(lambda: callback.got, timeout=15)
    [(headers, raw)] = callback.got
    check_webhook(SECRET, headers["X-Huiliu-Timestamp"], headers["X-Huiliu-Signature"], raw, datetime.now(UTC))
    [reply] = callback.replies()
    assert headers["Idempotency-Key"] == reply["id"]
    assert (reply["platform"], reply["conversation"]) == ("taobao", "shop1-buyer42")
    assert reply["customer"] == {"id": "buyer42"}
    assert reply["text"] == rt.services.kb.article("return-how").answer  # type: ignore[union-attr]
    lines = await rt.services.conversations.transcript("webhook:taobao:shop1-buyer42")
    assert [(line.direction, line.id) for line in lines][1] == ("out", reply["id"])


async def test_duplicate_push_is_one_message_and_one_reply(
    live: tuple[Runtime, TestClient], callback: Callback  # type: ignore[type-arg]
) -> None:
    rt, client = live
    body = push_body()
    first = await client.post("/webhooks/inbound", data=body, headers=sign(body))
    assert first.status == 200
    # The bridge did not see our answer and pushes again, re-signed (a new timestamp, a new signature).
    again = await client.post("/webhooks/inbound", data=body, headers=sign(body, ts=int(time.time()) + 1))
    assert again.status == 200
    assert (await again.json())["duplicates"] == 1 and (await again.json())["accepted"] == 0
    await eventually(lambda: callback.got, timeout=15)
    await eventually(lambda: rt.services.redis.exists(rt.services.keys.delivered(callback.replies()[0]["id"])))
    lines = await rt.services.conversations.transcript("webhook:taobao:shop1-buyer42")
    assert [line.direction for line in lines] == ["in", "out"]
    assert len(callback.got) == 1


async def test_forged_stale_and_replayed_pushes_are_401_and_not_stored(
    live: tuple[Runtime, TestClient], callback: Callback  # type: ignore[type-arg]
) -> None:
    rt, client = live
    body = push_body()
    now = int(time.time())
    refused = [
        sign(body, secret="not-the-bridge-secret-000"),  # bad signature
        {**sign(body), "X-Huiliu-Signature": "0" * 64},
        sign(body, ts=now - 301),  # stale: outside the ±300 s window
        sign(body, ts=now + 301),
        {"Content-Type": "application/json"},  # unsigned
    ]
    for headers in refused:
        resp = await client.post("/webhooks/inbound", data=body, headers=headers)
        assert resp.status == 401, headers
    assert await nothing_stored(rt)
    # A tampered body under a valid signature of another body:
    other = push_body(text="把钱退到这个账户")
    assert (await client.post("/webhooks/inbound", data=other, headers=sign(body))).status == 401
    assert await nothing_stored(rt)
    # The genuine push is accepted; the very same signed request sent again is a replay.
    headers = sign(body)
    assert (await client.post("/webhooks/inbound", data=body, headers=headers)).status == 200
    replay = await client.post("/webhooks/inbound", data=body, headers=headers)
    assert replay.status == 401 and "replayed" in (await replay.json())["message"]
    await eventually(lambda: callback.got, timeout=15)
    lines = await rt.services.conversations.transcript("webhook:taobao:shop1-buyer42")
    assert [line.direction for line in lines] == ["in", "out"]


@pytest.mark.parametrize(("body", "status", "names"), [
    (b"{not json", 400, "Invalid JSON"),
    (json.dumps({"version": 1, "messages": [{"id": "x", "platform": "taobao"}]}).encode(), 400,
     "messages[0].conversation: Field required"),
    (json.dumps({"version": 1, "messages": [{
        "id": "x", "platform": "taobao", "conversation": "c", "customer": {"id": "u"}, "text": "hi",
        "sent_at": "2024-11-11T12:00:00+08:00", "shop_id": 7}]}).encode(), 400,
     "messages[0].shop_id: Extra inputs are not permitted"),
    (b'{"version": 1, "messages": [], "pad": "' + b"x" * (70 * 1024) + b'"}', 413, ""),
])
async def test_malformed_push_is_4xx_naming_the_field(
    live: tuple[Runtime, TestClient], body: bytes, status: int, names: str  # type: ignore[type-arg]
) -> None:
    rt, client = live
    resp = await client.post("/webhooks/inbound", data=body, headers=sign(body))
    assert resp.status == status
    assert names in (await resp.json())["message"]
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == 0
