"""WeCom 微信客服 end to end: the whole product over HTTP against a local fake of qyapi.weixin.qq.com.

callback -> pull -> stream -> bot -> send_msg; cursor persistence across pullers; empty pages with
has_more=1; overlapping callbacks; a WeCom servicer taking over (and ending the session); bad signatures.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from fakes.wecom_api import FakeWeCom
from tests_helpers import eventually, serve_live

from connectors.wecom_kf import KfCallback, KfEvent
from gateway.config import Settings
from gateway.models import Channel, ConversationState
from gateway.runtime import Runtime
from gateway.wecom_puller import WeComPuller, request_pull
from knowledge_index.embedder import Embedder
from ticketing.escalation import EscalationReason

CORP, SECRET, TOKEN, AES = "ww-shop-corp", "kf-secret", "cbToken123", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
KF, USER = "wkSHOP01", "wmCUSTOMER1"
CONV = f"wecom:{KF}:{USER}"

Live = tuple[Runtime, TestClient]  # type: ignore[type-arg]


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    server = FakeWeCom(corp_id=CORP, secret=SECRET, token=TOKEN, aes_key=AES)
    await server.start()
    yield server
    await server.stop()


def wecom_settings(settings: Settings, fake: FakeWeCom, **extra: Any) -> Settings:
    return settings.with_(wecom_corp_id=CORP, wecom_kf_secret=SECRET, wecom_token=TOKEN, wecom_encoding_aes_key=AES,
                          wecom_api_base=fake.base_url, **{"wecom_poll_interval_s": 3600.0, **extra})


@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: aioredis.Redis, fake: FakeWeCom) -> AsyncIterator[Live]:
    async with serve_live(wecom_settings(settings, fake), embedder) as served:
        yield served


def webhook(client: TestClient) -> str:  # type: ignore[type-arg]
    return str(client.make_url("/webhooks/wecom"))


async def inbound_texts(rt: Runtime, conv: str = CONV) -> list[str]:
    return [line.text for line in await rt.services.conversations.transcript(conv) if line.direction == "in"]


def return_answer(rt: Runtime) -> str:
    article = rt.services.kb.article("return-how")
    assert article is not None
    return article.answer


async def test_callback_pull_bot_reply_and_cursor(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    msgid = fake.customer_says(KF, USER, "怎么退货")
    assert await fake.notify(webhook(client), KF) == (200, "success")
    await eventually(lambda: fake.sent_to(USER))
    assert fake.sent_to(USER) == [return_answer(rt)]
    [sent] = fake.sent
    assert (sent["open_kfid"], sent["touser"], sent["msgtype"]) == (KF, USER, "text")
    lines = await rt.services.conversations.transcript(CONV)
    assert [(line.direction, line.author) for line in lines] == [("in", "customer"), ("out", "bot")]
    keys, redis = rt.services.keys, rt.services.redis
    assert await redis.exists(keys.dedupe("wecom", msgid))
    # The cursor WeCom gave for the last page is stored, and the pull request is done with.
    await eventually(lambda: _no_pending(rt))
    assert await redis.get(keys.wecom_cursor(KF)) == fake.sync_answers[-1]["next_cursor"].encode()


async def _no_pending(rt: Runtime) -> bool:
    return await rt.services.redis.hlen(rt.services.keys.wecom_pending) == 0


async def _idle(rt: Runtime) -> bool:
    """The live puller has finished its first catch-up of the account and holds no pull lock."""
    keys, redis = rt.services.keys, rt.services.redis
    return bool(await redis.exists(keys.wecom_poll_gate(KF)) and not await redis.exists(keys.wecom_pull_lock(KF))
                and await _no_pending(rt))


async def test_a_second_puller_continues_from_the_stored_cursor(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    fake.customer_says(KF, USER, "怎么退货")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: fake.sent_to(USER))
    await eventually(lambda: _idle(rt))
    stored = await rt.services.redis.get(rt.services.keys.wecom_cursor(KF))
    assert isinstance(stored, bytes)

    # Another process: its own puller and connector, the same Redis.
    other = WeComPuller(rt.services, rt.services.connectors.get(Channel.WECOM), poll_interval_s=3600)
    report = await eventually(lambda: other.pull(KF, None))
    assert fake.sync_requests[-1].get("cursor") == stored.decode()  # continued, not started over
    assert (report.ingested, report.duplicates) == (0, 0)

    fake.customer_says(KF, USER, "发什么快递")
    report = await eventually(lambda: other.pull(KF, None))
    assert (report.ingested, report.duplicates) == (1, 0)
    await eventually(lambda: _has(rt, "发什么快递"))
    assert await inbound_texts(rt) == ["怎么退货", "发什么快递"]


async def _has(rt: Runtime, text: str) -> bool:
    return text in await inbound_texts(rt)


async def test_has_more_with_an_empty_page_is_followed(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    fake.customer_says(KF, USER, "在吗")
    fake.add_empty_page(KF)
    fake.add_empty_page(KF)
    fake.customer_says(KF, USER, "怎么退货")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: _has(rt, "怎么退货"))
    assert await inbound_texts(rt) == ["在吗", "怎么退货"]
    assert any(a["has_more"] == 1 and a["msg_list"] == [] for a in fake.sync_answers)


async def test_overlapping_callbacks_pull_each_message_once(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    texts = [f"第{i}个问题：怎么退货" for i in range(5)]
    for text in texts:
        fake.customer_says(KF, USER, text)
    results = await asyncio.gather(*(fake.notify(webhook(client), KF) for _ in range(6)))
    assert results == [(200, "success")] * 6
    await eventually(lambda: _has(rt, texts[-1]))
    await eventually(lambda: _no_pending(rt))
    assert fake.max_in_flight[KF] == 1  # pulls of one account never overlapped
    returned = Counter(item["msgid"] for answer in fake.sync_answers for item in answer["msg_list"])
    assert len(returned) == 5 and set(returned.values()) == {1}  # nothing pulled twice
    assert sorted(await inbound_texts(rt)) == sorted(texts)


async def test_servicer_takeover_silences_the_bot_and_session_end_hands_back(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    fake.customer_says(KF, USER, "怎么退货")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: fake.sent_to(USER))

    # A servicer picks the session up in the WeCom client and writes; the customer asks again.
    fake.servicer_takes_over(KF, USER, "zhangsan")
    fake.servicer_says(KF, USER, "zhangsan", "您好，我是人工客服小张")
    fake.customer_says(KF, USER, "怎么退货呀")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: _has(rt, "怎么退货呀"))
    lines = await rt.services.conversations.transcript(CONV)
    assert [(line.author, line.text) for line in lines][1:] == [
        ("bot", return_answer(rt)), ("agent", "您好，我是人工客服小张"), ("customer", "怎么退货呀")]
    assert await rt.services.conversations.state(CONV) == ConversationState.QUEUED
    ticket = await rt.services.tickets.open_ticket(CONV)
    assert ticket is not None and ticket.reason == EscalationReason.CHANNEL_TAKEOVER.value
    assert ticket.details["servicer_userid"] == "zhangsan"
    assert len(fake.sent_to(USER)) == 1  # the bot said nothing more

    # The servicer ends the session: the bot owns the conversation again and answers the next session.
    fake.end_session(KF, USER, "zhangsan")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: _state_is(rt, ConversationState.BOT))
    assert await rt.services.tickets.open_ticket(CONV) is None
    fake.customer_says(KF, USER, "怎么退货")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: len(fake.sent_to(USER)) == 2)
    assert fake.sent_to(USER)[1] == return_answer(rt)


async def _state_is(rt: Runtime, state: ConversationState) -> bool:
    return await rt.services.conversations.state(CONV) == state


async def test_bad_signatures_are_rejected_and_nothing_is_recorded(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    fake.customer_says(KF, USER, "怎么退货")
    query, body = fake.callback(KF)
    forged = [
        ({**query, "msg_signature": "0" * 40}, body, 401),
        ({k: v for k, v in query.items() if k != "msg_signature"}, body, 401),
        (query, body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA"), 401),
        ({**query, "timestamp": str(int(query["timestamp"]) + 1)}, body, 401),
        (query, b"<xml><Encrypt>&x;</Encrypt></xml>", 400),
        (query, b"\x00garbage", 400),
    ]
    for q, b, status in forged:
        resp = await client.post("/webhooks/wecom", params=q, data=b)
        assert resp.status == status, (q, b)
    await asyncio.sleep(0.3)  # a recorded request would be pulled well within this
    keys, redis = rt.services.keys, rt.services.redis
    assert await redis.hlen(keys.wecom_pending) == 0 and await redis.scard(keys.wecom_accounts) == 0
    assert fake.sync_requests == [] and await rt.services.conversations.get(CONV) is None
    # The genuine callback still works afterwards.
    resp = await client.post("/webhooks/wecom", params=query, data=body)
    assert resp.status == 200 and await resp.text() == "success"
    await eventually(lambda: fake.sent_to(USER))


def _echostr(fake: FakeWeCom, plain: str) -> str:
    """An encrypted echostr that contains '+', '/' and '=' (what breaks naive URL decoding)."""
    while True:
        echo: str = fake.crypto.encrypt(plain, random16=secrets.token_bytes(16))
        if "+" in echo and "/" in echo and echo.endswith("="):
            return echo


@pytest.mark.parametrize("encode_plus", [True, False])
async def test_url_verification_returns_the_plain_echostr(live: Live, fake: FakeWeCom, encode_plus: bool) -> None:
    _rt, client = live
    from connectors.wechat_crypto import msg_signature

    echo = _echostr(fake, "6129486920198372961")
    sig = msg_signature(TOKEN, "1700000000", "nonce1", echo)
    value = quote(echo, safe="") if encode_plus else echo  # WeCom encodes; a sloppy proxy may not
    resp = await client.get(f"/webhooks/wecom?msg_signature={sig}&timestamp=1700000000&nonce=nonce1&echostr={value}")
    assert resp.status == 200
    assert await resp.read() == b"6129486920198372961"  # raw: no quotes, no newline
    bad = await client.get(f"/webhooks/wecom?msg_signature={'0' * 40}&timestamp=1700000000&nonce=nonce1"
                           f"&echostr={quote(echo, safe='')}")
    assert bad.status == 401


async def test_missed_callbacks_are_caught_up(settings: Settings, embedder: Embedder, redis: aioredis.Redis,
                                             fake: FakeWeCom) -> None:
    async with serve_live(wecom_settings(settings, fake, wecom_poll_interval_s=0.5), embedder) as (rt, client):
        fake.customer_says(KF, USER, "在吗")
        await fake.notify(webhook(client), KF)  # the account becomes known
        await eventually(lambda: _has(rt, "在吗"))
        fake.customer_says(KF, USER, "怎么退货")  # no callback for this one
        await eventually(lambda: _has(rt, "怎么退货"))
        assert any("token" not in r for r in fake.sync_requests)


async def test_unreadable_items_are_dead_lettered_and_the_rest_flows(live: Live, fake: FakeWeCom) -> None:
    rt, client = live
    fake.add_item(KF, {"msgid": "junk-1", "origin": 3, "msgtype": "text", "text": "not an object", "send_time": 1})
    fake.customer_says(KF, USER, "怎么退货")
    await fake.notify(webhook(client), KF)
    await eventually(lambda: fake.sent_to(USER))
    keys = rt.services.keys
    entries: Any = await rt.services.redis.xrange(keys.dead_letter(keys.inbound))
    [(_, fields)] = entries
    assert fields[b"source_id"] == b"wecom:junk-1" and b"not an object" in fields[b"raw"]


async def test_an_expired_callback_token_falls_back_to_a_tokenless_pull(live: Live, fake: FakeWeCom) -> None:
    rt, _client = live
    fake.customer_says(KF, USER, "怎么退货")
    await request_pull(rt.services, KfCallback(token="expired-token", open_kfid=KF))
    await eventually(lambda: fake.sent_to(USER))
    tokens = [r.get("token") for r in fake.sync_requests]
    assert tokens[tokens.index("expired-token") + 1] is None  # refused (95007), then pulled without it


# ---- configuration ------------------------------------------------------------------------------------

ENV = {"WECOM_CORP_ID": CORP, "WECOM_KF_SECRET": SECRET, "WECOM_TOKEN": TOKEN, "WECOM_ENCODING_AES_KEY": AES}


def test_settings_from_env(tmp_path: Any) -> None:
    base = {"HUILIU_DATA_DIR": str(tmp_path)}
    off = Settings.from_env(base)
    assert off.wecom_corp_id is None
    on = Settings.from_env({**base, **ENV, "WECOM_API_BASE": "http://127.0.0.1:1/", "WECOM_POLL_INTERVAL_S": "30"})
    creds = (on.wecom_corp_id, on.wecom_kf_secret, on.wecom_token, on.wecom_encoding_aes_key)
    assert creds == (CORP, SECRET, TOKEN, AES)
    assert (on.wecom_api_base, on.wecom_poll_interval_s) == ("http://127.0.0.1:1", 30.0)
    assert Settings.from_env({**base, **ENV}).wecom_poll_interval_s == 300.0


@pytest.mark.parametrize(("change", "named"), [
    ({"WECOM_KF_SECRET": ""}, "WECOM_KF_SECRET"),
    ({"WECOM_TOKEN": "", "WECOM_CORP_ID": ""}, "WECOM_CORP_ID"),
    ({"WECOM_ENCODING_AES_KEY": "short"}, "WECOM_ENCODING_AES_KEY"),
    ({"WECOM_ENCODING_AES_KEY": "!" * 43}, "WECOM_ENCODING_AES_KEY"),
    ({"WECOM_API_BASE": "qyapi.weixin.qq.com"}, "WECOM_API_BASE"),
    ({"WECOM_POLL_INTERVAL_S": "0"}, "WECOM_POLL_INTERVAL_S"),
    ({"WECOM_POLL_INTERVAL_S": "soon"}, "WECOM_POLL_INTERVAL_S"),
])
def test_bad_settings_name_the_variable(tmp_path: Any, change: dict[str, str], named: str) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=named):
        Settings.from_env({"HUILIU_DATA_DIR": str(tmp_path), **ENV, **change})


# ---- the puller on its own (no background workers) ----------------------------------------------------


@pytest.fixture
async def quiet(settings: Settings, embedder: Embedder, redis: aioredis.Redis,
                fake: FakeWeCom) -> AsyncIterator[tuple[Runtime, WeComPuller]]:
    from gateway.runtime import open_services

    async with open_services(wecom_settings(settings, fake), embedder=embedder) as rt:
        yield rt, WeComPuller(rt.services, rt.services.connectors.get(Channel.WECOM), poll_interval_s=3600,
                              max_pages=1)


async def test_crash_before_the_cursor_is_written_repulls_and_dedupe_absorbs(
        quiet: tuple[Runtime, WeComPuller], fake: FakeWeCom) -> None:
    rt, puller = quiet
    for text in ("一", "二"):
        fake.customer_says(KF, USER, text)
    first = await puller.pull(KF, None)
    assert first is not None and (first.ingested, first.complete) == (2, True)
    await rt.services.redis.delete(rt.services.keys.wecom_cursor(KF))  # as if we died before SET cursor
    again = await puller.pull(KF, None)
    assert again is not None and (again.ingested, again.duplicates) == (0, 2)


async def test_a_pull_cut_short_keeps_its_pending_record(quiet: tuple[Runtime, WeComPuller], fake: FakeWeCom) -> None:
    rt, puller = quiet  # max_pages=1
    fake.add_empty_page(KF)
    fake.customer_says(KF, USER, "在吗")
    await request_pull(rt.services, KfCallback(token=fake.issue_callback_token(), open_kfid=KF))
    await puller.drain_pending()  # one (empty) page, has_more=1: not done
    assert await rt.services.redis.hlen(rt.services.keys.wecom_pending) == 1
    await puller.drain_pending()
    assert await rt.services.redis.hlen(rt.services.keys.wecom_pending) == 0
    assert [r.get("token") is not None for r in fake.sync_requests] == [True, True]


async def test_a_newer_callback_during_a_pull_is_not_forgotten(
        quiet: tuple[Runtime, WeComPuller], fake: FakeWeCom) -> None:
    rt, puller = quiet
    puller.max_pages = 10
    first = fake.issue_callback_token()
    await request_pull(rt.services, KfCallback(token=first, open_kfid=KF))
    newer = fake.issue_callback_token()
    original = puller.pull

    async def pull_then_callback(open_kfid: str, token: str | None) -> Any:
        report = await original(open_kfid, token)
        await request_pull(rt.services, KfCallback(token=newer, open_kfid=KF))  # arrived while pulling
        return report

    puller.pull = pull_then_callback  # type: ignore[method-assign]
    await puller.drain_pending()
    pending = await rt.services.redis.hgetall(rt.services.keys.wecom_pending)
    assert pending == {KF.encode(): newer.encode()}


# ---- kf events on both databases (tickets and transcript rows need the conversation row first) ----------


@pytest.fixture
async def on_db(settings: Settings, embedder: Embedder, redis: aioredis.Redis, fake: FakeWeCom, engine: Any,
                db_kind: str, pg_schema: str | None) -> AsyncIterator[Runtime]:
    from gateway.runtime import open_services

    url = engine.url.render_as_string(hide_password=False)
    async with open_services(wecom_settings(settings, fake).with_(database_url=url), embedder=embedder,
                             pg_schema=pg_schema if db_kind == "postgresql" else None) as rt:
        yield rt


def kf_event(kind: str, user: str, **fields: Any) -> KfEvent:
    from datetime import UTC, datetime

    return KfEvent(kind=kind, msgid=f"{kind}-{user}-{fields.get('change_type')}", open_kfid=KF, external_userid=user,
                   sent_at=datetime(2025, 1, 1, tzinfo=UTC), **fields)


async def test_kf_events_on_unknown_conversations_are_applied_idempotently(on_db: Runtime) -> None:
    from gateway.wecom_sessions import WeComSessions

    rt, sessions = on_db, WeComSessions(on_db.services)
    conv = f"wecom:{KF}:wmNEW"
    takeover = kf_event("session_status_change", "wmNEW", change_type=1, servicer_userid="lisi")
    said = kf_event("servicer_message", "wmNEW", servicer_userid="lisi", text="您好")
    for event in (takeover, said, takeover, said):  # a re-pull applies the same events again
        await sessions.apply(event)
    assert await rt.services.conversations.state(conv) == ConversationState.QUEUED
    tickets = await rt.services.tickets.list_open()
    assert [(t.conversation_id, t.reason) for t in tickets] == [(conv, "channel_takeover")]
    assert [(line.author, line.text) for line in await rt.services.conversations.transcript(conv)] == [
        ("agent", "您好")]
    ended = kf_event("session_status_change", "wmNEW", change_type=3)
    for _ in range(2):
        await sessions.apply(ended)
    assert await rt.services.conversations.state(conv) == ConversationState.BOT
    assert await rt.services.tickets.open_ticket(conv) is None

    failed = kf_event("msg_send_fail", "wmOTHER", fail_msgid="sent-1", fail_type=4)
    for _ in range(2):
        await sessions.apply(failed)
    [ticket] = await rt.services.tickets.list_open()
    assert (ticket.conversation_id, ticket.reason) == (f"wecom:{KF}:wmOTHER", "channel_failure")
