"""WeCom 微信客服 connector against the local fake of qyapi.weixin.qq.com over real HTTP: tokens, pulls, sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from fakes.wecom_api import FakeWeCom

from connectors.wecom_kf import KfApiError, WeComKfConnector, parse_sync_page
from gateway.access_tokens import SharedAccessToken
from gateway.keys import Keys
from gateway.models import Channel, CustomerRef, OutboundMessage

CORP, SECRET, TOKEN, AES = "ww-test-corp", "kf-secret", "cbtoken", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    server = FakeWeCom(corp_id=CORP, secret=SECRET, token=TOKEN, aes_key=AES, pull_delay_s=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def conn(fake: FakeWeCom) -> AsyncIterator[WeComKfConnector]:
    connector = WeComKfConnector(CORP, SECRET, TOKEN, AES, api_base=fake.base_url)
    yield connector
    await connector.aclose()


def reply(text: str, key: str = "wk1:wm1") -> OutboundMessage:
    return OutboundMessage(channel=Channel.WECOM, conversation_key=key, text=text,
                           recipient=CustomerRef(channel=Channel.WECOM, external_id=key.split(":")[1]))


async def test_send_delivers_text_with_the_kf_account(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    result = await conn.send(reply("您好，已为您查询"))
    assert result.ok and len(result.external_ids) == 1
    [sent] = fake.sent
    assert {k: sent[k] for k in ("touser", "open_kfid", "msgtype", "text")} == {
        "touser": "wm1", "open_kfid": "wk1", "msgtype": "text", "text": {"content": "您好，已为您查询"}}
    assert result.external_ids == (sent["msgid"],)


async def test_long_reply_goes_out_in_chunks_within_the_byte_limit(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    text = "退货说明。" * 300  # 4500 bytes
    result = await conn.send(reply(text))
    assert result.ok and len(result.external_ids) == 3
    assert "".join(fake.sent_to("wm1")) == text


async def test_expired_token_is_invalidated_and_the_send_retried_once(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    assert (await conn.send(reply("一"))).ok
    fake.expire_tokens()
    assert (await conn.send(reply("二"))).ok
    assert fake.gettoken_calls == 2
    assert fake.sent_to("wm1") == ["一", "二"]


@pytest.mark.parametrize(("errcodes", "permanent", "retry_after"), [
    ([95018], True, None),  # a WeCom servicer holds the session (state 2/3/4)
    ([44004], True, None),
    ([-1], False, 5.0),  # system busy
    ([45009], False, 5.0),  # frequency limit
    ([40014, 40014], False, 60.0),  # token refused even after a refresh: credentials, not the message
])
async def test_send_failures_are_classified(fake: FakeWeCom, conn: WeComKfConnector, errcodes: list[int],
                                            permanent: bool, retry_after: float | None) -> None:
    for code in errcodes:
        fake.fail_next("send_msg", code)
    result = await conn.send(reply("你好"))
    assert (result.ok, result.permanent, result.retry_after) == (False, permanent, retry_after)
    assert str(errcodes[-1]) in (result.error or "")
    assert fake.sent == []


async def test_send_in_a_servicer_held_session_is_permanent(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    fake.servicer_takes_over("wk1", "wm1", "zhangsan")
    result = await conn.send(reply("你好"))
    assert result.permanent and "95018" in (result.error or "")


async def test_network_failure_is_retried_later() -> None:
    conn = WeComKfConnector(CORP, SECRET, TOKEN, AES, api_base="http://127.0.0.1:9")  # nothing listens
    result = await conn.send(reply("你好"))
    assert not result.ok and not result.permanent and result.retry_after
    await conn.aclose()


async def test_wrong_secret_is_an_api_error(fake: FakeWeCom) -> None:
    conn = WeComKfConnector(CORP, "wrong", TOKEN, AES, api_base=fake.base_url)
    with pytest.raises(KfApiError) as info:
        await conn.fetch_access_token()
    assert info.value.errcode == 40001 and not info.value.transient
    await conn.aclose()


async def test_sync_msg_pages_follow_the_cursor(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    first = fake.customer_says("wk1", "wm1", "一")
    fake.add_empty_page("wk1")
    second = fake.customer_says("wk1", "wm1", "二")
    token = fake.issue_callback_token()
    p1 = parse_sync_page(await conn.sync_msg("", token, "wk1"))
    p2 = parse_sync_page(await conn.sync_msg(p1.next_cursor, token, "wk1"))
    p3 = parse_sync_page(await conn.sync_msg(p2.next_cursor, token, "wk1"))
    assert [m.external_message_id for m in p1.messages] == [first] and p1.has_more
    assert p2.items == () and p2.has_more  # empty, yet more to come
    assert [m.external_message_id for m in p3.messages] == [second] and not p3.has_more
    assert fake.sync_requests[1]["cursor"] == p1.next_cursor and fake.sync_requests[0]["limit"] == 1000


async def test_sync_msg_with_an_expired_callback_token_raises(fake: FakeWeCom, conn: WeComKfConnector) -> None:
    with pytest.raises(KfApiError) as info:
        await conn.sync_msg("", "stale-token", "wk1")
    assert info.value.errcode == 95007 and not info.value.transient
    assert parse_sync_page(await conn.sync_msg("", None, "wk1")).items == ()  # tokenless still works


async def test_processes_share_one_token_through_redis(fake: FakeWeCom, redis: aioredis.Redis, keys: Keys) -> None:
    conns = [WeComKfConnector(CORP, SECRET, TOKEN, AES, api_base=fake.base_url) for _ in range(3)]
    for c in conns:
        c.tokens = SharedAccessToken(redis, keys, f"wecom-kf:{CORP}", c.fetch_access_token)
    for i, c in enumerate(conns):
        assert (await c.send(reply(f"m{i}"))).ok
    assert fake.gettoken_calls == 1
    fake.expire_tokens()
    for i, c in enumerate(conns):
        assert (await c.send(reply(f"n{i}"))).ok
    assert fake.gettoken_calls == 2  # one refresh for everyone, not one per process
    for c in conns:
        await c.aclose()
