"""The signed webhook connector: signature and replay window, strict schema, and the signed callback.

``verify``/``parse`` are pure and tested with tables and an injected clock; ``send`` talks real HTTP to
a receiver on loopback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from fakes.loopback import serve_app

from connectors.base import PayloadError, PayloadTooLarge, VerificationError, WebhookRequest
from connectors.marketplace_sign import SignatureError, check_webhook, webhook_signature
from connectors.signed_webhook import SignedWebhookConnector, retry_after_s
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply

SECRET = "whsec-0123456789abcdef"
NOW = datetime(2024, 11, 11, 4, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))


def connector(**kw: Any) -> SignedWebhookConnector:
    return SignedWebhookConnector(SECRET, clock=lambda: NOW, **kw)


def message(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "m-1", "platform": "taobao", "conversation": "shop1-buyer42",
                            "customer": {"id": "buyer42", "name": "小王", "phone": "+86 138 0000 0000"},
                            "text": "我的快递到哪了？", "sent_at": "2024-11-11T12:00:00+08:00"}
    base.update(overrides)
    return base


def push(*messages: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"version": 1, "messages": list(messages) or [message()], **top}, ensure_ascii=False).encode()


def signed(body: bytes, ts: str = TS, secret: str = SECRET, **headers: str) -> WebhookRequest:
    base = {"X-Huiliu-Timestamp": ts, "X-Huiliu-Signature": webhook_signature(secret, ts, body)}
    return WebhookRequest("POST", "/webhooks/inbound", {**base, **headers}, {}, body)


# ---- verify --------------------------------------------------------------------------------------


def test_a_correctly_signed_push_verifies_with_any_header_case() -> None:
    body = push()
    connector().verify(signed(body))
    req = signed(body)
    lower = {k.lower(): v.upper() for k, v in req.headers.items()}  # hex in either case, headers any case
    connector().verify(WebhookRequest("POST", "/", lower, {}, body))


@pytest.mark.parametrize(("make", "reason"), [
    (lambda b: signed(b, secret="another-secret-0123456789"), "bad_signature"),
    (lambda b: WebhookRequest("POST", "/", signed(b).headers, {}, b + b" "), "bad_signature"),  # body changed
    (lambda b: WebhookRequest("POST", "/", signed(b).headers, {}, b.replace(b"m-1", b"m-2")), "bad_signature"),
    (lambda b: signed(b, ts=str(int(NOW.timestamp()) - 301)), "expired"),
    (lambda b: signed(b, ts=str(int(NOW.timestamp()) + 301)), "future"),
    (lambda b: WebhookRequest("POST", "/", {"X-Huiliu-Signature": "ab" * 32}, {}, b), "missing_timestamp"),
    (lambda b: WebhookRequest("POST", "/", {"X-Huiliu-Timestamp": TS}, {}, b), "missing_signature"),
    (lambda b: WebhookRequest("POST", "/", {"X-Huiliu-Timestamp": "1.5e9", "X-Huiliu-Signature": "ab" * 32}, {}, b),
     "bad_timestamp"),
])
def test_forged_or_stale_pushes_are_refused(make: Any, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        connector().verify(make(push()))
    assert info.value.reason == reason and isinstance(info.value, VerificationError)


def test_the_window_is_configurable() -> None:
    body = push()
    old = str(int(NOW.timestamp()) - 100)
    connector().verify(signed(body, ts=old))
    with pytest.raises(SignatureError, match="expired"):
        connector(max_skew_s=60).verify(signed(body, ts=old))


# ---- parse ---------------------------------------------------------------------------------------


def test_parse_maps_ids_per_platform_and_keeps_the_rest_in_raw() -> None:
    image = {"kind": "image", "url": "https://img.example/1.jpg", "mime_type": "image/jpeg", "size": 1234}
    body = push(message(attachments=[image], meta={"shop": "旗舰店"}),
                message(id="42", platform="jd", conversation="c9", customer={"id": "jd_u1"}, text="",
                        attachments=[{"kind": "file", "url": "https://f.example/a.pdf"}], sent_at=1731297600))
    first, second = connector().parse(body)
    assert first.channel is Channel.WEBHOOK
    assert first.external_message_id == "taobao:m-1" and first.conversation_key == "taobao:shop1-buyer42"
    assert first.conversation_id == "webhook:taobao:shop1-buyer42"
    assert first.customer == CustomerRef(channel=Channel.WEBHOOK, external_id="taobao:buyer42", display_name="小王")
    assert first.sent_at == datetime(2024, 11, 11, 4, 0, tzinfo=UTC) and first.text == "我的快递到哪了？"
    assert first.attachments[0].ref == "https://img.example/1.jpg" and first.attachments[0].size == 1234
    assert first.raw["customer"]["phone"] == "+86 138 0000 0000" and first.raw["meta"] == {"shop": "旗舰店"}
    assert first.raw["schema_version"] == 1
    assert second.external_message_id == "jd:42" and second.customer.external_id == "jd:jd_u1"
    assert second.sent_at == datetime(2024, 11, 11, 4, 0, tzinfo=UTC)  # Unix seconds work too
    assert first.message_id != second.message_id


def test_the_same_id_on_two_platforms_is_two_messages() -> None:
    a, b = connector().parse(push(message(), message(platform="pinduoduo")))
    assert a.message_id != b.message_id and a.conversation_id != b.conversation_id


@pytest.mark.parametrize(("body", "names"), [
    (b"{oops", "Invalid JSON"),
    (b'"a string"', "body: Input should be an object"),
    (b"{}", "messages: Field required"),
    (push(version=2), "version: Input should be 1"),
    (json.dumps({"messages": []}).encode(), "messages: List should have at least 1 item"),
    (push(message(customer={"name": "x"})), "messages[0].customer.id: Field required"),
    (push(message(sentAt="2024-11-11T12:00:00+08:00")), "messages[0].sentAt: Extra inputs are not permitted"),
    (push(message(sent_at="2024-11-11T12:00:00")), "messages[0].sent_at: Input should have timezone info"),
    (push(message(sent_at="yesterday")), "messages[0].sent_at"),
    (push(message(platform="Taobao!")), "messages[0].platform"),
    (push(message(id=17)), "messages[0].id: Input should be a valid string"),
    (push(message(id="")), "messages[0].id"),
    (push(message(), message(text="  ")), "messages[1]: Value error, a message needs text or at least one attachment"),
    (push(message(attachments=[{"kind": "hologram", "url": "x"}])), "messages[0].attachments[0].kind"),
    (push(message(customer={"id": "u", "phone": "call me"})), "messages[0].customer.phone"),
    (push(*[message(id=str(i)) for i in range(101)]), "messages: List should have at most 100 items"),
    (push(message(text="x" * 20_001)), "messages[0].text"),
])
def test_malformed_pushes_name_the_bad_field(body: bytes, names: str) -> None:
    with pytest.raises(PayloadError) as info:
        connector().parse(body)
    assert names in str(info.value) and info.value.status == 400


def test_oversized_push_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        connector(max_body_bytes=2048).parse(push(message(text="x" * 3000)))


def test_receipt_counts_new_and_duplicates() -> None:
    msgs = connector().parse(push(message(), message(id="m-2")))
    resp = connector().receipt(msgs, [False, True])
    body = json.loads(resp.body)
    assert resp.status == 200 and body["accepted"] == 1 and body["duplicates"] == 1
    assert [(m["platform"], m["id"], m["duplicate"]) for m in body["messages"]] == [
        ("taobao", "m-1", False), ("taobao", "m-2", True)]
    assert json.loads(connector().ack(msgs).body)["accepted"] == 2


# ---- send ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "default", "expected"), [
    (None, 5.0, 5.0), ("7", 5.0, 7.0), ("0", 5.0, 0.0), ("soon", 5.0, 5.0), ("-3", 5.0, 5.0),
    ("Mon, 11 Nov 2024 04:01:30 GMT", 5.0, 90.0), ("Mon, 11 Nov 2024 03:00:00 GMT", 5.0, 0.0),
    ("99999999", 5.0, 24 * 3600.0),
])
def test_retry_after_header(header: str | None, default: float, expected: float) -> None:
    assert retry_after_s(header, NOW, default) == expected


class Receiver:
    """A callback endpoint on loopback answering what it is told, recording what it got."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[web.Response] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.got.append((dict(request.headers), await request.read()))
        return self.answers.pop(0) if self.answers else web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/cb", rec.handle)
    app.router.add_post("/moved", rec.handle)
    runner, base = await serve_app(app)
    rec.url = f"{base}/cb"
    yield rec
    await runner.cleanup()


def reply() -> OutboundMessage:
    return OutboundMessage(channel=Channel.WEBHOOK, conversation_key="taobao:shop1-buyer42", text="已发货，单号 SF123",
                           recipient=CustomerRef(channel=Channel.WEBHOOK, external_id="taobao:buyer42"),
                           quick_replies=(QuickReply(title="查物流", payload="track"),))


async def test_send_posts_a_signed_reply_with_an_idempotency_key(receiver: Receiver) -> None:
    conn = SignedWebhookConnector(SECRET, callback_url=receiver.url)
    out = reply()
    try:
        result = await conn.send(out)
    finally:
        await conn.aclose()
    assert result.ok and result.external_ids == (out.message_id,)
    [(headers, body)] = receiver.got
    check_webhook(SECRET, headers["X-Huiliu-Timestamp"], headers["X-Huiliu-Signature"], body, datetime.now(UTC))
    assert headers["Idempotency-Key"] == out.message_id
    sent = json.loads(body)
    assert sent["version"] == 1 and sent["reply"] == {
        "id": out.message_id, "platform": "taobao", "conversation": "shop1-buyer42", "customer": {"id": "buyer42"},
        "text": "已发货，单号 SF123", "author": "bot", "quick_replies": [{"title": "查物流", "payload": "track"}],
        "created_at": out.created_at.isoformat()}


@pytest.mark.parametrize(("answer", "retry_after", "permanent"), [
    (web.Response(status=429, headers={"Retry-After": "7"}), 7.0, False),
    (web.Response(status=429), 30.0, False),
    (web.Response(status=503, headers={"Retry-After": "2"}), 2.0, False),
    (web.Response(status=500), 5.0, False),
    (web.Response(status=408), 5.0, False),
    (web.Response(status=400, text="unknown conversation"), None, True),
    (web.Response(status=401), None, True),
    (web.Response(status=302, headers={"Location": "/moved"}), None, True),  # never followed
])
async def test_send_classifies_callback_answers(
    receiver: Receiver, answer: web.Response, retry_after: float | None, permanent: bool
) -> None:
    receiver.answers.append(answer)
    conn = SignedWebhookConnector(SECRET, callback_url=receiver.url)
    try:
        result = await conn.send(reply())
    finally:
        await conn.aclose()
    assert not result.ok and result.retry_after == retry_after and result.permanent is permanent
    assert len(receiver.got) == 1 and str(answer.status) in (result.error or "")


async def test_send_without_a_reachable_callback() -> None:
    unreachable = SignedWebhookConnector(SECRET, callback_url="http://127.0.0.1:9/cb", http_timeout_s=2)
    try:
        result = await unreachable.send(reply())
    finally:
        await unreachable.aclose()
    assert not result.ok and result.retry_after == 5.0 and not result.permanent
    nowhere = await SignedWebhookConnector(SECRET).send(reply())
    assert nowhere.permanent and "callback URL" in (nowhere.error or "")


def test_secrets_must_be_long() -> None:
    with pytest.raises(ValueError, match="16"):
        SignedWebhookConnector("short")
