"""The WeChat Official Account channel end to end over real HTTP: WeChat's pushes in (plaintext and safe
mode), replies out through a local fake of api.weixin.qq.com, bad input -> 4xx with nothing stored.

Real aiohttp server, Redis, SQLite, bot/delivery workers and the demo knowledge base; only WeChat's
cloud is replaced: ``WeChatPush`` signs/encrypts callbacks as WeChat's servers do, and ``FakeWeChatApi``
speaks the token and custom/send wire format.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fakes.wechat_api import FakeWeChatApi
from fakes.wechat_push import WeChatPush, callback_xml
from fakes.xml_attacks import OpenWatch, billion_laughs, xxe_payloads
from sqlalchemy import select
from tests_helpers import eventually, serve_live

from gateway.config import ConfigError, Settings
from gateway.db.schema import ticket_events
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder

APP_ID = "wx5f1e2d3c4b5a6978"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TOKEN = "HuiliuWeChat2025"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PATH = "/webhooks/wechat"
_msg_ids = itertools.count(24_500_000_000_000_001)

Live = tuple[Runtime, TestClient]  # type: ignore[type-arg]


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatApi]:
    fake = FakeWeChatApi(app_id=APP_ID, app_secret=SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(params=["plain", "safe"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def push(mode: str) -> WeChatPush:
    return WeChatPush(TOKEN, APP_ID, KEY if mode == "safe" else None, mode)  # type: ignore[arg-type]


@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: Any, api: FakeWeChatApi,
               mode: str) -> AsyncIterator[Live]:
    s = settings.with_(wechat_app_id=APP_ID, wechat_app_secret=SECRET, wechat_token=TOKEN,
                       wechat_encoding_aes_key=KEY if mode == "safe" else None, wechat_api_base=api.base_url)
    async with serve_live(s, embedder) as served:
        yield served


def text_message(openid: str, content: str) -> str:
    return callback_xml(openid, "text", int(time.time()), Content=content, MsgId=next(_msg_ids))


async def deliver(client: TestClient, push: WeChatPush, xml: str, **kw: Any) -> Any:  # type: ignore[type-arg]
    """One POST as WeChat makes it (a fresh nonce each time, as on its retries)."""
    query, body = push.request(xml, **kw)
    return await client.post(PATH, params=query, data=body, headers={"Content-Type": "text/xml"})


async def nothing_stored(rt: Runtime, conversation_id: str) -> bool:
    s = rt.services
    return (await s.redis.xlen(s.keys.inbound) == 0
            and await s.conversations.get(conversation_id) is None
            and await s.conversations.transcript(conversation_id) == [])


async def test_redelivered_message_is_stored_and_answered_once(live: Live, push: WeChatPush,
                                                               api: FakeWeChatApi) -> None:
    rt, client = live
    openid = "oRetry_0123456789abcdefghij"
    xml = text_message(openid, "怎么退货")
    for _ in range(3):  # WeChat re-sends when it does not see our answer within 5 s
        resp = await deliver(client, push, xml, openid=openid)
        assert resp.status == 200 and await resp.text() == "success"
    await eventually(lambda: api.sent(openid))
    await asyncio.sleep(0.5)  # give a duplicate time to show up
    [sent] = api.sent(openid)
    assert sent["text"]["content"] == rt.services.kb.article("return-how").answer  # type: ignore[union-attr]
    lines = await rt.services.conversations.transcript(f"wechat:{openid}")
    assert [(line.direction, line.text) for line in lines] == [("in", "怎么退货"), ("out", sent["text"]["content"])]
    assert api.token_calls == 1


async def test_bad_signature_is_401_and_nothing_stored(live: Live, push: WeChatPush, mode: str) -> None:
    rt, client = live
    openid = "oForger_0123456789abcdefghi"
    xml = text_message(openid, "怎么退货")
    query, body = push.request(xml)
    name = "signature" if mode == "plain" else "msg_signature"
    for forged in ({**query, name: "0" * 40}, {k: v for k, v in query.items() if k != name},
                   {**query, "nonce": "1"}, {**query, "timestamp": str(int(time.time()) - 3600)}):
        resp = await client.post(PATH, params=forged, data=body)
        assert resp.status == 401, await resp.text()
    if mode == "safe":  # a plaintext body with a valid plain signature cannot downgrade a safe-mode account
        plain_query, plain_body = WeChatPush(TOKEN, APP_ID).request(xml)
        assert (await client.post(PATH, params=plain_query, data=plain_body)).status == 401
    assert await nothing_stored(rt, f"wechat:{openid}")
    # The genuine push, arriving later, is not deduplicated away by the forgeries.
    assert (await deliver(client, push, xml)).status == 200
    await eventually(lambda: rt.services.conversations.transcript(f"wechat:{openid}"))


async def test_xxe_is_rejected_without_reading_files(live: Live, push: WeChatPush, tmp_path: Path) -> None:
    rt, client = live
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN SECRET KEY----- huiliu-xxe-canary")
    watch = OpenWatch()
    path = watch.watch(secret)  # from here on, any open() of it is recorded
    openid = "oAttacker_0123456789abcdefg"
    for xml in [*xxe_payloads(path, openid, int(time.time())), billion_laughs(openid)]:
        resp = await deliver(client, push, xml)  # correctly signed: the attacker knows the token
        assert resp.status == 400
        assert "huiliu-xxe-canary" not in await resp.text()
    assert watch.opened() == []
    assert await nothing_stored(rt, f"wechat:{openid}")
    dead = await rt.services.redis.xrange(rt.services.keys.dead_letter(rt.services.keys.inbound))
    assert "huiliu-xxe-canary" not in repr(dead)


async def test_window_closed_45015_goes_to_an_agent_and_is_not_retried(live: Live, push: WeChatPush,
                                                                      api: FakeWeChatApi) -> None:
    rt, client = live
    openid = "oGone_0123456789abcdefghijk"
    conv = f"wechat:{openid}"
    api.fail_next_send(45015)
    assert (await deliver(client, push, text_message(openid, "怎么退货"))).status == 200
    ticket = await eventually(lambda: rt.services.tickets.open_ticket(conv))
    assert ticket.reason == "channel_failure" and "45015" in ticket.details["error"]
    assert "48" in ticket.summary
    async with rt.services.engine.connect() as conn:
        events = (await conn.execute(select(ticket_events.c.kind, ticket_events.c.data)
                                     .where(ticket_events.c.ticket_id == ticket.id))).all()
    assert any(kind == "delivery_failed" and "45015" in data["error"] for kind, data in events)
    await asyncio.sleep(1.0)  # a retry, if one were scheduled, would come within the first back-off
    assert [c.errcode for c in api.send_calls] == [45015]
    assert api.sent(openid) == []
    assert await rt.services.conversations.state(conv) == "queued"


async def test_expired_token_is_refreshed_once_and_the_reply_goes_out(live: Live, push: WeChatPush,
                                                                     api: FakeWeChatApi) -> None:
    rt, client = live
    openid = "oToken_0123456789abcdefghij"
    assert (await deliver(client, push, text_message(openid, "怎么退货"))).status == 200
    await eventually(lambda: api.sent(openid))
    api.revoke_tokens()  # e.g. someone fetched a new token elsewhere: ours now answers 40001
    assert (await deliver(client, push, text_message(openid, "多久发货"))).status == 200
    await eventually(lambda: len(api.sent(openid)) == 2)
    assert api.token_calls == 2
    assert [c.errcode for c in api.send_calls] == [0, 40001, 0]
    assert api.send_calls[1].access_token != api.send_calls[2].access_token
    assert await rt.services.tickets.open_ticket(f"wechat:{openid}") is None


async def test_url_verification(live: Live, push: WeChatPush) -> None:
    _rt, client = live
    query = push.url_check("7319045216871046170")
    resp = await client.get(PATH, params=query)
    assert resp.status == 200 and await resp.text() == "7319045216871046170"
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert (await client.get(PATH, params={**query, "signature": "1" * 40})).status == 401
    assert (await client.get(PATH, params={k: v for k, v in query.items() if k != "echostr"})).status == 400


async def test_follow_is_greeted_and_unfollow_acknowledged(live: Live, push: WeChatPush,
                                                           api: FakeWeChatApi) -> None:
    rt, client = live
    openid = "oNewFan_0123456789abcdefghi"
    now = int(time.time())
    resp = await deliver(client, push, callback_xml(openid, "event", now, Event="subscribe", EventKey=""))
    assert resp.status == 200 and await resp.text() == "success"
    await eventually(lambda: api.sent(openid))
    assert api.sent(openid)[0]["text"]["content"] == rt.services.kb.article("greeting").answer  # type: ignore[union-attr]
    backlog = await rt.services.redis.xlen(rt.services.keys.inbound)
    resp = await deliver(client, push, callback_xml(openid, "event", now + 5, Event="unsubscribe", EventKey=""))
    assert resp.status == 200 and await resp.text() == "success"
    assert await rt.services.redis.xlen(rt.services.keys.inbound) == backlog  # no customer words: nothing queued


BASE_ENV = {"WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": SECRET, "WECHAT_TOKEN": TOKEN}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"wechat_app_id": None, "wechat_encoding_aes_key": None, "wechat_subscribe_text": "你好"}),
    (BASE_ENV, {"wechat_app_id": APP_ID, "wechat_token": TOKEN, "wechat_encoding_aes_key": None,
                "wechat_api_base": "https://api.weixin.qq.com"}),
    ({**BASE_ENV, "WECHAT_ENCODING_AES_KEY": KEY, "WECHAT_API_BASE": "http://127.0.0.1:9/"},
     {"wechat_encoding_aes_key": KEY, "wechat_api_base": "http://127.0.0.1:9"}),
    ({**BASE_ENV, "WECHAT_SUBSCRIBE_TEXT": ""}, {"wechat_subscribe_text": None}),
    ({**BASE_ENV, "WECHAT_SUBSCRIBE_TEXT": " 欢迎 "}, {"wechat_subscribe_text": "欢迎"}),
])
def test_settings_from_env(tmp_path: Path, env: dict[str, str], expected: dict[str, Any]) -> None:
    s = Settings.from_env({"HUILIU_DATA_DIR": str(tmp_path), **env})
    assert {k: getattr(s, k) for k in expected} == expected


@pytest.mark.parametrize(("env", "variable"), [
    ({"WECHAT_APP_ID": APP_ID}, "WECHAT_APP_SECRET, WECHAT_TOKEN"),
    ({"WECHAT_ENCODING_AES_KEY": KEY}, "WECHAT_APP_ID"),
    ({**BASE_ENV, "WECHAT_ENCODING_AES_KEY": KEY[:-1]}, "WECHAT_ENCODING_AES_KEY"),
    ({**BASE_ENV, "WECHAT_ENCODING_AES_KEY": KEY[:-1] + "+"}, "WECHAT_ENCODING_AES_KEY"),
    ({**BASE_ENV, "WECHAT_TOKEN": "no spaces allowed"}, "WECHAT_TOKEN"),
    ({**BASE_ENV, "WECHAT_TOKEN": "ab"}, "WECHAT_TOKEN"),
    ({**BASE_ENV, "WECHAT_API_BASE": "api.weixin.qq.com"}, "WECHAT_API_BASE"),
])
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({"HUILIU_DATA_DIR": str(tmp_path), **env})
