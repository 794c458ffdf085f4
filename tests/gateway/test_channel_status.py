"""GET /api/channels over real HTTP (serve_live: real Redis, SQLite, workers and intake loops).

Default settings: only the web chat is configured, every other channel lists the variables it needs by
name, and no secret value appears anywhere in the answer. A Taobao feed running against the fake TOP
with a wrong secret shows its recorded error; a web chat exchange shows in the 24 h counts; pushed
channels show webhook paths the app really routes; Telegram polling shows its offset; the email
poller shows its lock and cursor (against a real Dovecot); the pipeline counts dead letters and
delayed retries. Only admins may read it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.taobao_top import FakeTop
from fakes.telegram_api import FakeTelegram
from mail_servers import Mailbox, SmtpServer
from tests_helpers import WebChatCustomer, eventually, serve_live

from gateway.channel_status import Masker
from gateway.config import Settings
from gateway.models import Channel
from gateway.outbound_retry import DelayedOutbox
from gateway.runtime import Runtime
from gateway.telegram_poller import persist_updates
from knowledge_index.embedder import Embedder

ADMIN = {"Authorization": "Bearer test-admin-token"}
DEFAULT_SECRETS = ("test-admin-token", "test-webchat-secret-0123456789")
QUESTION = "怎么退货"


async def status(client: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = await client.get("/api/channels", headers=ADMIN if headers is None else headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def by_channel(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["channel"]: row for row in data["channels"]}


def settings_of(row: dict[str, Any]) -> dict[str, bool]:
    return {s["name"]: s["set"] for s in row["settings"]}


def assert_no_secrets(data: dict[str, Any], secrets: tuple[str, ...]) -> None:
    text = json.dumps(data, ensure_ascii=False)
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"secret values in the answer: {leaked}"


async def test_default_settings_only_webchat_and_no_secrets(live: tuple[Runtime, Any]) -> None:
    _rt, client = live
    data = await status(client)
    rows = by_channel(data)
    assert list(rows) == [c.value for c in (Channel.WEBCHAT, Channel.TELEGRAM, Channel.WECHAT, Channel.WECOM,
                                            Channel.EMAIL, Channel.TAOBAO, Channel.JD, Channel.PINDUODUO,
                                            Channel.WEBHOOK)]
    assert [c for c, row in rows.items() if row["configured"]] == ["webchat"]
    assert rows["webchat"]["inbound"] == {"kind": "webchat", "path": "/chat"}
    assert settings_of(rows["webchat"]) == {"WEBCHAT_SECRET": True}
    # not configured: which variables to set, by name, none of them set
    assert settings_of(rows["wechat"]) == {"WECHAT_APP_ID": False, "WECHAT_APP_SECRET": False, "WECHAT_TOKEN": False,
                                           "WECHAT_ENCODING_AES_KEY": False}
    assert [s["name"] for s in rows["taobao"]["settings"] if s["required"]] == [
        "TAOBAO_APP_KEY", "TAOBAO_APP_SECRET", "TAOBAO_SESSION", "TAOBAO_CHAT_TOPICS"]
    assert rows["wechat"]["inbound"] == {"kind": "webhook", "path": "/webhooks/wechat"}
    assert rows["wecom"]["inbound"]["path"] == "/webhooks/wecom"
    assert rows["webhook"]["inbound"]["path"] == "/webhooks/inbound"
    assert rows["telegram"]["inbound"] == {"kind": "polling", "path": None} and rows["telegram"]["mode"] == "off"
    assert rows["email"]["inbound"]["kind"] == "polling" and rows["taobao"]["inbound"]["kind"] == "feed"
    assert all(row["health"] is None for row in rows.values())  # nothing configured leaves traces
    pipeline = data["pipeline"]
    assert pipeline["inbound"]["backlog"] == 0 and pipeline["inbound"]["dead_letters"] == 0
    assert {g["name"] for g in pipeline["inbound"]["groups"]} == {"bot"}
    assert {g["name"] for g in pipeline["outbound"]["groups"]} == {"delivery"}
    assert pipeline["outbound"]["delayed_retries"] == 0
    assert_no_secrets(data, DEFAULT_SECRETS)


async def test_missing_streams_and_keys_read_as_empty(runtime: Runtime) -> None:
    """No worker ever ran: no stream, no consumer group, no status hash — still a 200 with zeros."""
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import build_app

    client = TestClient(TestServer(build_app(runtime.services)))
    await client.start_server()
    try:
        pipeline = (await status(client))["pipeline"]
    finally:
        await client.close()
    assert pipeline["inbound"] == {"backlog": 0, "pending": 0, "groups": [], "dead_letters": 0}
    assert pipeline["outbound"]["groups"] == [] and pipeline["outbound"]["delayed_retries"] == 0


async def test_only_admins_may_read(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    _, agent = await rt.services.agents.create("cs-agent", "Agent", [], 5)
    _, sup = await rt.services.agents.create("cs-sup", "Sup", [], 5, role="supervisor")
    assert (await client.get("/api/channels")).status == 401
    for token in (agent, sup):
        resp = await client.get("/api/channels", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 403
        assert (await resp.json())["error"] == "forbidden"


async def test_a_web_chat_exchange_is_counted(live: tuple[Runtime, Any]) -> None:
    _rt, client = live
    customer = WebChatCustomer(client)
    await customer.start()
    try:
        await customer.say(QUESTION)
        await eventually(lambda: customer.by("bot"), timeout=15)
    finally:
        await customer.stop()
    counts = by_channel(await status(client))
    assert counts["webchat"]["messages_24h"]["in"] == 1
    assert counts["webchat"]["messages_24h"]["out"] >= 1
    assert counts["telegram"]["messages_24h"] == {"in": 0, "out": 0}


# ---- a marketplace feed refusing our credentials ----------------------------------------------------

@pytest.fixture
async def top() -> AsyncIterator[FakeTop]:
    fake = FakeTop(app_key="12345678", app_secret="top-s3cret", session="seller-session-value",
                   send_method="test.wangwang.send", groups=frozenset({"huiliu"}))
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_feed_with_a_wrong_secret_shows_its_error(
    settings: Settings, embedder: Embedder, redis: Any, top: FakeTop
) -> None:
    wrong = "wrong-secret-0123456789"
    s = settings.with_(taobao_app_key="12345678", taobao_app_secret=wrong, taobao_session="seller-session-value",
                       taobao_api_base=top.url, taobao_sign_method="hmac-sha256", taobao_tmc_group="huiliu",
                       taobao_chat_topics=("test_wangwang_ChatMessage",), taobao_poll_idle_s=0.05)
    async with serve_live(s, embedder) as (_rt, client):
        async def failed() -> dict[str, Any] | None:
            row = by_channel(await status(client))["taobao"]
            return row if (row["health"] or {}).get("state") == "error" else None

        row = await eventually(failed)
        assert row["configured"] and row["inbound"] == {"kind": "feed", "path": None}
        health = row["health"]
        assert "Invalid signature" in health["error"] and health["permanent"] is True
        assert health["updated"] and health["facts"] == {}  # Taobao's TMC feed is not exclusive: no lock
        assert settings_of(row)["TAOBAO_APP_SECRET"] is True and settings_of(row)["TAOBAO_SEND_METHOD"] is False
        assert_no_secrets(await status(client), (*DEFAULT_SECRETS, wrong, "seller-session-value"))


# ---- pushed channels, Telegram polling, email -------------------------------------------------------

PUSHED_SECRETS = {
    "telegram_bot_token": "123456789:AAE-status_page_token", "telegram_webhook_secret": "tg_hook_Secret-77",
    "wechat_app_id": "wx-status-app-id", "wechat_app_secret": "wechat-app-secret-value", "wechat_token": "wxToken42",
    "wecom_corp_id": "ww-status-corp", "wecom_kf_secret": "wecom-kf-secret-value", "wecom_token": "wecomToken42",
    "wecom_encoding_aes_key": "A" * 43, "webhook_secret": "signed-webhook-secret-value",
}


async def test_pushed_channels_show_routed_paths_and_the_pipeline(
    settings: Settings, embedder: Embedder, redis: Any
) -> None:
    # No platform is reachable on port 9: a WeCom catch-up pull fails fast instead of going out.
    s = settings.with_(telegram_mode="webhook", telegram_api_base="http://127.0.0.1:9",
                       wechat_api_base="http://127.0.0.1:9", wecom_api_base="http://127.0.0.1:9",
                       webhook_callback_url="http://127.0.0.1:9/replies", **PUSHED_SECRETS)
    async with serve_live(s, embedder) as (rt, client):
        k = rt.services.keys
        # how the WeCom puller leaves its traces: a known account with a cursor, one without
        await redis.sadd(k.wecom_accounts, "wk-with-cursor", "wk-new")
        await redis.set(k.wecom_cursor("wk-with-cursor"), "cursor-1")
        # an unparseable Telegram update goes to the inbound dead letters; a reply waits for its retry
        await persist_updates(rt.services, rt.services.connectors.get(Channel.TELEGRAM),
                              [b'{"update_id": 7, "message": {"chat": 5}}'])
        await DelayedOutbox(redis, k, group="delivery").schedule(
            "status-page-reply", {"m": "{}", "c": "webchat:v1", "a": 0, "r": "0"}, delay_s=3600, entry_id=None)
        data = await status(client)
        rows = by_channel(data)
        routed = {(r.method, r.resource.canonical) for r in client.app.router.routes() if r.resource is not None}
        for name in ("telegram", "wechat", "wecom", "webhook"):
            row = rows[name]
            assert row["configured"] and row["inbound"]["kind"] == "webhook", name
            assert ("POST", row["inbound"]["path"]) in routed, f"{name}: {row['inbound']['path']} is not routed"
            assert all(x["set"] for x in row["settings"] if x["required"]), name
        assert rows["telegram"]["mode"] == "webhook" and rows["wechat"]["mode"] == "plaintext"
        assert rows["wecom"]["health"]["facts"] == {
            "accounts": [{"open_kfid": "wk-new", "cursor": False}, {"open_kfid": "wk-with-cursor", "cursor": True}],
            "pending_callbacks": 0}
        assert data["pipeline"]["inbound"]["dead_letters"] == 1
        assert data["pipeline"]["outbound"]["delayed_retries"] == 1
        assert_no_secrets(data, (*DEFAULT_SECRETS, *(v for v in PUSHED_SECRETS.values() if len(v) >= 6),
                                 "AAE-status_page_token"))


async def test_telegram_polling_shows_its_offset(settings: Settings, embedder: Embedder, redis: Any) -> None:
    token = "123456789:AAE-polling_token"
    fake = FakeTelegram(token=token)
    await fake.start()
    try:
        s = settings.with_(telegram_mode="polling", telegram_bot_token=token, telegram_api_base=fake.base_url)
        async with serve_live(s, embedder) as (_rt, client):
            row = by_channel(await status(client))["telegram"]
            assert row["inbound"] == {"kind": "polling", "path": None}
            assert row["health"]["facts"] == {"offset": None}  # nothing fetched yet
            fake.queue_update({"update_id": 500, "message": {
                "message_id": 1, "from": {"id": 9, "first_name": "A", "is_bot": False},
                "chat": {"id": 9, "type": "private"}, "date": 1763000000, "text": QUESTION}})

            async def offset() -> Any:
                return by_channel(await status(client))["telegram"]["health"]["facts"]["offset"]

            assert await eventually(offset) == 501
            assert_no_secrets(await status(client), (*DEFAULT_SECRETS, token, "AAE-polling_token"))
    finally:
        await fake.stop()


async def test_email_poller_shows_its_lock_and_cursor(
    settings: Settings, embedder: Embedder, redis: Any, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    s = settings.with_(
        email_address="service@shop.example", email_imap_host=mailbox.host, email_imap_port=mailbox.port,
        email_imap_user=mailbox.user, email_imap_password=mailbox.password, email_imap_ssl=False,
        email_smtp_host=smtp.host, email_smtp_port=smtp.port, email_smtp_user=None, email_smtp_tls="none",
        email_poll_interval_s=3600.0, email_token_secret="test-email-token-secret")
    async with serve_live(s, embedder) as (_rt, client):
        async def polling() -> dict[str, Any] | None:
            health = by_channel(await status(client))["email"]["health"]
            return health if health["facts"]["poller_active"] and health["facts"]["cursor"] else None

        health = await eventually(polling, timeout=30)
        assert health["state"] == "ok" and health["note"] is None
        assert isinstance(health["facts"]["last_uid"], int)
        data = await status(client)
        assert by_channel(data)["email"]["inbound"] == {"kind": "polling", "path": None}
        secrets = (*DEFAULT_SECRETS, "test-email-token-secret") + ((mailbox.password,) if len(mailbox.password) >= 6
                                                                    else ())
        assert_no_secrets(data, secrets)


def test_error_texts_lose_configured_secret_values(settings: Settings) -> None:
    """A platform or exception text may quote a request (a URL with a token in its query string)."""
    s = settings.with_(jd_app_key="jd01", jd_app_secret="jd-secret-value", jd_access_token="jd-token-value-1")
    mask = Masker(s)
    text = "ClientResponseError: 502, url='https://api.jd.com/routerjson?access_token=jd-token-value-1&v=2.0'"
    assert mask(text) == "ClientResponseError: 502, url='https://api.jd.com/routerjson?access_token=***&v=2.0'"
    assert mask("signed with test-admin-token") == "signed with ***"
    assert mask("app jd01 refused") == "app jd01 refused"  # too short to be a secret worth masking
