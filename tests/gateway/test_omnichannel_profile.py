"""One customer across channels, through the real connectors: a WeChat message (signed callback over
HTTP, replied to through the fake WeChat API) and then a mail (real Dovecot + aiosmtpd) quoting the
same order number appear to the agent as one profile with both conversations.

Only WeChat's cloud is faked (``FakeWeChatApi``); the mail travels through real IMAP and SMTP servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from fakes.wechat_api import FakeWeChatApi
from fakes.wechat_push import WeChatPush, callback_xml
from mail_servers import Mailbox, SmtpServer
from tests_helpers import eventually, serve_live

from gateway.config import Settings
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder

APP_ID = "wx5f1e2d3c4b5a6978"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TOKEN = "HuiliuWeChat2025"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SHOP = "service@shop.example"
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatApi]:
    fake = FakeWeChatApi(app_id=APP_ID, app_secret=SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def served(settings: Settings, embedder: Embedder, redis: Any, wechat_api: FakeWeChatApi,
                 mailbox: Mailbox, smtp: SmtpServer) -> AsyncIterator[tuple[Runtime, Any]]:
    s = settings.with_(
        wechat_app_id=APP_ID, wechat_app_secret=SECRET, wechat_token=TOKEN, wechat_encoding_aes_key=KEY,
        wechat_api_base=wechat_api.base_url,
        email_address=SHOP, email_imap_host=mailbox.host, email_imap_port=mailbox.port,
        email_imap_user=mailbox.user, email_imap_password=mailbox.password, email_imap_ssl=False,
        email_smtp_host=smtp.host, email_smtp_port=smtp.port, email_smtp_user=None, email_smtp_tls="none",
        email_poll_interval_s=3600.0, email_token_secret="test-email-secret",
    )
    async with serve_live(s, embedder) as live:
        yield live


def mail(body: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "王芳 <WangFang@Example.com>", SHOP, "订单查询"
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["Date"] = "Fri, 01 Mar 2024 18:30:00 +0800"
    msg.set_content(body)
    return msg.as_bytes()


async def test_wechat_then_email_with_the_same_order_number_is_one_profile(
        served: tuple[Runtime, Any], wechat_api: FakeWeChatApi, mailbox: Mailbox, smtp: SmtpServer) -> None:
    _rt, client = served
    openid = "oWangFang0001"
    push = WeChatPush(TOKEN, APP_ID, KEY, "safe")
    query, body = push.request(callback_xml(openid, "text", int(time.time()), Content="我的订单12345到哪了？",
                                            MsgId=24_600_000_000_000_001), openid=openid)
    resp = await client.post("/webhooks/wechat", params=query, data=body, headers={"Content-Type": "text/xml"})
    assert (resp.status, await resp.text()) == (200, "success")
    await eventually(lambda: len(wechat_api.sent(openid)) == 1, timeout=20)  # the bot answered on WeChat

    await asyncio.to_thread(mailbox.append, mail("你好，订单12345一直没收到，麻烦查一下。\n\n-- \n王芳"))
    await eventually(lambda: len(smtp.recorder.mails) == 1, timeout=30)  # and by mail

    view: dict[str, Any] = {}

    async def linked() -> bool:
        resp = await client.get(f"/api/conversations/wechat:{openid}/customer", headers=ADMIN)
        view.update(await resp.json())
        return resp.status == 200 and len(view.get("identities", [])) == 2

    await eventually(linked, timeout=20)
    assert {(i["channel"], i["external_id"], i["proven_by"]) for i in view["identities"]} == {
        ("wechat", openid, "order:12345"), ("email", "wangfang@example.com", "order:12345")}
    assert {c["channel"] for c in view["conversations"]} == {"wechat", "email"}
    assert [o["order_number"] for o in view["orders"]] == ["12345"]
    # the same profile, whichever conversation the agent opens it from
    email_conv = next(c["id"] for c in view["conversations"] if c["channel"] == "email")
    other = await (await client.get(f"/api/conversations/{email_conv}/customer", headers=ADMIN)).json()
    assert other["id"] == view["id"]
