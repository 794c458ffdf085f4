"""TelegramConnector against a real local fake of the Bot API (real aiohttp, real aiogram, no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.exceptions import TelegramConflictError
from fakes.telegram_api import FakeTelegram  # `tests/` is on pythonpath (see pyproject)

from connectors.base import PayloadError, VerificationError, WebhookRequest
from connectors.telegram import TelegramConnector, split_text, utf16_len
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply

TOKEN = "123456789:AAE-test_token"
BOT_ID = 123456789
SECRET = "s3cr3t_Token-1"
CHAT = 42


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def tg(fake_telegram: FakeTelegram) -> AsyncIterator[TelegramConnector]:
    connector = TelegramConnector(TOKEN, webhook_secret=SECRET, api_base=fake_telegram.base_url,
                                  max_retry_wait=5)
    yield connector
    await connector.aclose()


@pytest.fixture
def parser() -> TelegramConnector:
    return TelegramConnector(TOKEN, webhook_secret=SECRET, api_base="http://127.0.0.1:9")


def request(headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/telegram", headers=headers, query={}, body=b"{}")


def user(uid: int = 42, **extra: Any) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": "Test", **extra}


def message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"message_id": 7, "from": user(), "chat": {"id": CHAT, "type": "private"},
                            "date": 1_700_000_000}
    base.update(fields)
    return base


def body(update: dict[str, Any]) -> bytes:
    return json.dumps(update).encode()


def outbound(
    text: str, *, quick_replies: tuple[QuickReply, ...] = (), key: str = str(CHAT)
) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.TELEGRAM, conversation_key=key,
        recipient=CustomerRef(channel=Channel.TELEGRAM, external_id=str(CHAT)),
        text=text, quick_replies=quick_replies,
    )


# ---- verify ---------------------------------------------------------------------------------------


def test_verify_accepts_matching_secret_any_header_case(parser: TelegramConnector) -> None:
    parser.verify(request({"X-Telegram-Bot-Api-Secret-Token": SECRET}))
    parser.verify(request({"x-telegram-bot-api-secret-token": SECRET}))


@pytest.mark.parametrize("headers", [
    {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
    {"X-Telegram-Bot-Api-Secret-Token": ""},
    {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
    {"X-Telegram-Bot-Api-Secret-Token": "密钥"},
    {},
    {"Authorization": SECRET},
])
def test_verify_rejects_bad_or_missing_secret(parser: TelegramConnector, headers: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        parser.verify(request(headers))


def test_verify_refuses_when_no_secret_configured() -> None:
    open_connector = TelegramConnector(TOKEN)
    with pytest.raises(VerificationError, match="webhook secret not configured"):
        open_connector.verify(request({"X-Telegram-Bot-Api-Secret-Token": "anything"}))


@pytest.mark.parametrize("kwargs", [{"token": "no-colon"}, {"token": "abc:def"},
                                    {"token": TOKEN, "webhook_secret": ""},
                                    {"token": TOKEN, "webhook_secret": "has space"}])
def test_constructor_rejects_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TelegramConnector(**kwargs)


# ---- parse ----------------------------------------------------------------------------------------


def test_parse_minimal_text_message(parser: TelegramConnector) -> None:
    # The minimal update from aiogram's own webhook tests (channels.md §3.2).
    update = {"update_id": 0, "message": {"message_id": 0, "from": {"id": 42, "first_name": "Test",
              "is_bot": False}, "chat": {"id": 42, "type": "private"}, "date": 1_700_000_000, "text": "test"}}
    [msg] = parser.parse(body(update))
    assert msg.channel is Channel.TELEGRAM
    assert msg.external_message_id == f"{BOT_ID}:0"
    assert msg.conversation_key == "42"
    assert msg.customer == CustomerRef(channel=Channel.TELEGRAM, external_id="42", display_name="Test")
    assert msg.text == "test"
    assert msg.attachments == ()
    assert msg.sent_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert msg.raw == update
    # Deterministic id: a redelivered update maps to the same message.
    assert parser.parse(body(update))[0].message_id == msg.message_id


def test_parse_customer_names_and_language(parser: TelegramConnector) -> None:
    update = {"update_id": 1, "message": message(
        text="hi", **{"from": user(first_name="Li", last_name="Wei", language_code="zh-hans")})}
    assert parser.parse(body(update))[0].customer.display_name == "Li Wei"
    assert parser.parse(body(update))[0].customer.language == "zh-hans"
    no_name = {"update_id": 2, "message": message(
        text="hi", **{"from": {"id": 5, "is_bot": False, "first_name": "", "username": "liwei"}})}
    assert parser.parse(body(no_name))[0].customer.display_name == "liwei"


def test_parse_photo_with_caption_takes_largest_size(parser: TelegramConnector) -> None:
    photo = [{"file_id": f"ph{i}", "file_unique_id": f"u{i}", "width": w, "height": w, "file_size": w * 10}
             for i, w in enumerate((90, 320, 1280))]
    [msg] = parser.parse(body({"update_id": 3, "message": message(photo=photo, caption="这个有货吗?")}))
    assert msg.text == "这个有货吗?"
    [att] = msg.attachments
    assert (att.kind, att.ref, att.size) == ("image", "ph2", 12800)


def test_parse_other_attachment_kinds(parser: TelegramConnector) -> None:
    update = {"update_id": 4, "message": message(
        document={"file_id": "doc", "file_unique_id": "d", "file_name": "invoice.pdf",
                  "mime_type": "application/pdf", "file_size": 1234},
        voice={"file_id": "voi", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg"},
        audio={"file_id": "aud", "file_unique_id": "a", "duration": 3},
        video={"file_id": "vid", "file_unique_id": "v2", "width": 1, "height": 1, "duration": 1},
        sticker={"file_id": "stk", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                 "is_animated": False, "is_video": False},
        location={"latitude": 31.2304, "longitude": 121.4737},
    )}
    [msg] = parser.parse(body(update))
    assert msg.text == ""
    assert [(a.kind, a.ref) for a in msg.attachments] == [
        ("file", "doc"), ("audio", "voi"), ("audio", "aud"), ("video", "vid"), ("sticker", "stk"),
        ("location", "31.2304,121.4737")]
    assert (msg.attachments[0].name, msg.attachments[0].mime_type) == ("invoice.pdf", "application/pdf")


def test_parse_edited_message_is_a_new_message(parser: TelegramConnector) -> None:
    [original] = parser.parse(body({"update_id": 10, "message": message(text="订单 123")}))
    [edit] = parser.parse(body({"update_id": 11, "edited_message": message(
        text="订单 124", edit_date=1_700_000_060)}))
    assert edit.external_message_id == f"{BOT_ID}:11" != original.external_message_id
    assert edit.message_id != original.message_id
    assert edit.text == "订单 124"
    assert edit.sent_at == datetime.fromtimestamp(1_700_000_060, UTC)
    assert edit.conversation_key == original.conversation_key


def test_parse_business_message(parser: TelegramConnector) -> None:
    [msg] = parser.parse(body({"update_id": 12, "business_message": message(
        text="hello shop", business_connection_id="bc1")}))
    assert msg.text == "hello shop"
    assert msg.conversation_key == str(CHAT)


def test_parse_callback_query_is_a_quick_reply(parser: TelegramConnector) -> None:
    update = {"update_id": 13, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": user(99, first_name="Ann"), "chat_instance": "ci",
        "data": "track_order", "message": {"message_id": 5, "date": 1_700_000_000,
                                           "chat": {"id": -100123, "type": "supergroup"},
                                           "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
                                           "text": "Need help?"}}}
    before = datetime.now(UTC)
    [msg] = parser.parse(body(update))
    assert msg.text == "track_order"
    assert msg.conversation_key == "-100123"
    assert msg.customer.external_id == "99"
    assert msg.customer.display_name == "Ann"
    assert msg.external_message_id == f"{BOT_ID}:13"
    assert msg.sent_at >= before


@pytest.mark.parametrize("update", [
    {"update_id": 20, "my_chat_member": {"chat": {"id": 42, "type": "private"}, "from": user(), "date": 1,
                                         "old_chat_member": {}, "new_chat_member": {}}},
    {"update_id": 21, "message_reaction": {"chat": {"id": 42, "type": "private"}, "message_id": 1,
                                           "date": 1, "old_reaction": [], "new_reaction": []}},
    {"update_id": 22, "channel_post": {"message_id": 1, "date": 1, "text": "news",
                                       "chat": {"id": -1001, "type": "channel"}}},
    {"update_id": 23, "message": message(text="beep", **{"from": {"id": 7, "is_bot": True,
                                                                   "first_name": "OtherBot"}})},
    {"update_id": 24, "message": message(new_chat_members=[user(43)])},  # service message
    {"update_id": 25, "message": {"message_id": 1, "date": 1, "chat": {"id": -5, "type": "group"},
                                  "sender_chat": {"id": -5, "type": "group"}, "text": "anon admin"}},
    {"update_id": 26, "callback_query": {"id": "q", "from": user(), "chat_instance": "c",
                                         "game_short_name": "g"}},
    {"update_id": 27, "callback_query": {"id": "q", "from": user(), "chat_instance": "c",
                                         "inline_message_id": "im", "data": "x"}},
    {"update_id": 28},
])
def test_parse_ignores_updates_without_customer_content(
    parser: TelegramConnector, update: dict[str, Any]
) -> None:
    assert parser.parse(body(update)) == []


def test_parse_user_id_beyond_32_bits(parser: TelegramConnector) -> None:
    big = 2**40 + 17
    [msg] = parser.parse(body({"update_id": 30, "message": message(
        text="hi", chat={"id": big, "type": "private"}, **{"from": user(big)})}))
    assert msg.customer.external_id == str(big)
    assert msg.conversation_key == str(big)


MALFORMED: list[bytes] = [
    b"", b"not json", b"{", b"\xff\xfe\x00", b"[" * 100_000, b"null", b"[]", b'"update"', b"42",
    b"{}", b'{"update_id": "1"}', b'{"update_id": 1.5}', b'{"update_id": true}', b'{"update_id": null}',
    b'{"update_id": -1}',
    body({"update_id": 1, "message": None}),
    body({"update_id": 1, "message": "hi"}),
    body({"update_id": 1, "message": []}),
    body({"update_id": 1, "message": {k: v for k, v in message(text="x").items() if k != "chat"}}),
    body({"update_id": 1, "message": message(text="x", chat=None)}),
    body({"update_id": 1, "message": message(text="x", chat={"type": "private"})}),
    body({"update_id": 1, "message": message(text="x", chat={"id": "42", "type": "private"})}),
    body({"update_id": 1, "message": message(text="x", date=None)}),
    body({"update_id": 1, "message": message(text="x", date="yesterday")}),
    body({"update_id": 1, "message": message(text="x", date=10**20)}),
    body({"update_id": 1, "message": message(text=5)}),
    body({"update_id": 1, "message": message(text="x" * 20_001)}),
    body({"update_id": 1, "message": message(text="x", **{"from": "alice"})}),
    body({"update_id": 1, "message": message(text="x", **{"from": {"first_name": "NoId"}})}),
    body({"update_id": 1, "message": message(text="x", **{"from": user(first_name=["a"])})}),
    body({"update_id": 1, "message": message(photo=[])}),
    body({"update_id": 1, "message": message(photo={"file_id": "x"})}),
    body({"update_id": 1, "message": message(photo=["x"])}),
    body({"update_id": 1, "message": message(photo=[{"width": 1}])}),
    body({"update_id": 1, "message": message(document="doc")}),
    body({"update_id": 1, "message": message(document={"file_id": "d", "file_size": "big"})}),
    body({"update_id": 1, "message": message(location={"latitude": "n", "longitude": 1})}),
    body({"update_id": 1, "message": message(contact={"first_name": "x"})}),
    body({"update_id": 1, "edited_message": message(text="x", edit_date="later")}),
    body({"update_id": 1, "callback_query": None}),
    body({"update_id": 1, "callback_query": {"id": "q", "data": "x", "message": message()}}),
    body({"update_id": 1, "callback_query": {"id": "q", "from": user(), "data": 5, "message": message()}}),
    body({"update_id": 1, "callback_query": {"id": "q", "from": user(), "data": "x", "message": "m"}}),
    body({"update_id": 1, "callback_query": {"id": "q", "from": user(), "data": "x",
                                             "message": {"message_id": 1, "date": 0}}}),
]


def test_parse_rejects_every_malformed_shape_with_payload_error(parser: TelegramConnector) -> None:
    for raw in MALFORMED:
        try:
            result = parser.parse(raw)
        except PayloadError:
            continue
        except Exception as exc:  # the point of this test: nothing but PayloadError may escape
            pytest.fail(f"{raw[:80]!r} raised {type(exc).__name__}: {exc}")
        pytest.fail(f"{raw[:80]!r} was accepted as {result!r}")


def test_parse_random_garbage_only_ever_raises_payload_error(parser: TelegramConnector) -> None:
    rng = random.Random(1234)
    values: list[Any] = [None, True, 0, -1, 2**70, 1.5, "", "x", [], {}, [1], {"id": 1}, "\ud800"]
    keys = ["message", "edited_message", "callback_query", "business_message"]
    fields = ["chat", "from", "date", "text", "caption", "photo", "document", "location", "data", "message"]
    for _ in range(500):
        update: dict[str, Any] = {"update_id": rng.choice([1, 1, 1, "1", None])}
        inner = message(text="ok") if rng.random() < 0.7 else {}
        for _ in range(rng.randint(1, 3)):
            inner[rng.choice(fields)] = rng.choice(values)
        update[rng.choice(keys)] = inner
        with contextlib.suppress(PayloadError):  # anything else escaping fails the test
            parser.parse(json.dumps(update).encode("utf-8", "surrogatepass"))


def test_ack_is_empty_json_object(parser: TelegramConnector) -> None:
    response = parser.ack([])
    assert (response.status, response.body, response.content_type) == (200, b"{}", "application/json")


# ---- split_text -----------------------------------------------------------------------------------


def test_split_prefers_paragraph_then_line_then_sentence_then_space() -> None:
    para = "a" * 60 + "\n\n" + "b" * 30 + "\n" + "c" * 20
    assert split_text(para, 100) == ["a" * 60 + "\n\n", "b" * 30 + "\n" + "c" * 20]
    line = "a" * 60 + "\n" + "b" * 30 + "。" + "c" * 20
    assert split_text(line, 100) == ["a" * 60 + "\n", "b" * 30 + "。" + "c" * 20]
    sentence = "好" * 60 + "。" + "b" * 20 + " " + "c" * 30
    assert split_text(sentence, 100) == ["好" * 60 + "。", "b" * 20 + " " + "c" * 30]
    words = ("word " * 30).strip()
    assert all(c.endswith(" ") for c in split_text(words, 100)[:-1])


def test_split_never_cuts_a_surrogate_pair_and_is_lossless() -> None:
    text = "a" * 4095 + "😀" + "b" * 10
    chunks = split_text(text)
    assert chunks == ["a" * 4095, "😀" + "b" * 10]
    assert split_text("a" * 5 + "👍🏽" + "b", 7) == ["a" * 5, "👍🏽b"]  # skin tone stays on its thumb
    rng = random.Random(7)
    alphabet = ["字", "a", " ", "\n", "。", "😀", "👍🏽", "👨‍👩‍👧", "é"]
    for _ in range(50):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3000)))
        limit = rng.randint(8, 600)
        chunks = split_text(text, limit)
        assert "".join(chunks) == text
        assert all(0 < utf16_len(c) <= limit for c in chunks)


# ---- send -----------------------------------------------------------------------------------------


async def test_send_plain_text(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    result = await tg.send(outbound("您好!有什么可以帮您?"))
    assert result.ok and result.external_ids == (f"{CHAT}:1",)
    [req] = fake_telegram.calls("sendMessage")
    assert req.params["chat_id"] == CHAT and req.params["text"] == "您好!有什么可以帮您?"
    assert "parse_mode" not in req.params  # plain text: customer-facing text is never parsed as markup
    assert "reply_markup" not in req.params


async def test_send_9000_chinese_chars_in_three_lossless_chunks(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    sentence = "您的订单已经发货，预计三天内送达，请注意查收。"  # 23 chars
    text = (sentence * 400)[:9000]
    result = await tg.send(outbound(text))
    assert result.ok and len(result.external_ids) == 3
    texts = [r.params["text"] for r in fake_telegram.calls("sendMessage")]
    assert len(texts) == 3
    assert all(utf16_len(t) <= 4096 for t in texts)
    assert "".join(texts) == text
    assert texts[0].endswith("。") and texts[1].endswith("。")  # broke at sentence ends
    assert [m["text"] for m in fake_telegram.sent_messages(CHAT)] == texts


async def test_send_emoji_at_chunk_boundary(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    text = "a" * 4095 + "😀" + "b" * 10
    result = await tg.send(outbound(text))
    assert result.ok
    texts = [r.params["text"] for r in fake_telegram.calls("sendMessage")]
    assert texts == ["a" * 4095, "😀" + "b" * 10]


async def test_send_retries_after_429_within_budget(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    result = await tg.send(outbound("hello"))
    assert result.ok and result.external_ids == (f"{CHAT}:1",)
    first, second = fake_telegram.calls("sendMessage")
    assert second.at - first.at >= 1.0
    assert time.monotonic() - started >= 1.0
    assert first.params["text"] == second.params["text"] == "hello"


async def test_send_gives_back_retry_after_beyond_budget(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.fail_next("sendMessage", 429, retry_after=60)
    result = await tg.send(outbound("hello"))
    assert not result.ok and not result.permanent
    assert result.retry_after == 60
    assert result.external_ids == ()
    assert len(fake_telegram.calls("sendMessage")) == 1


async def test_send_partial_failure_lists_chunks_already_sent(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.fail_next("sendMessage", 429, retry_after=600, after=1)  # 1st chunk ok, 2nd throttled
    result = await tg.send(outbound("甲" * 5000))
    assert not result.ok and not result.permanent and result.retry_after == 600
    assert result.external_ids == (f"{CHAT}:1",)
    assert result.error is not None and "chunk 2/2" in result.error
    assert len(fake_telegram.calls("sendMessage")) == 2


async def test_send_blocked_by_user_is_permanent(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next("sendMessage", 403)
    result = await tg.send(outbound("hello"))
    assert not result.ok and result.permanent and result.retry_after is None
    assert result.error is not None and "blocked" in result.error


async def test_send_bad_request_is_permanent(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next("sendMessage", 400, "Bad Request: chat not found")
    result = await tg.send(outbound("hello"))
    assert not result.ok and result.permanent


async def test_send_non_numeric_conversation_key_is_permanent(tg: TelegramConnector) -> None:
    result = await tg.send(outbound("hello", key="@someone"))
    assert not result.ok and result.permanent


async def test_send_server_error_is_retryable(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next("sendMessage", 502)
    result = await tg.send(outbound("hello"))
    assert not result.ok and not result.permanent and result.retry_after == 5


async def test_send_with_rejected_token_waits_for_a_config_fix(fake_telegram: FakeTelegram) -> None:
    connector = TelegramConnector("987:revoked", api_base=fake_telegram.base_url)
    try:
        result = await connector.send(outbound("hello"))
    finally:
        await connector.aclose()
    assert not result.ok and not result.permanent and result.retry_after == 60


async def test_send_network_error_is_retryable() -> None:
    connector = TelegramConnector(TOKEN, api_base="http://127.0.0.1:9")  # discard port: refused
    try:
        result = await connector.send(outbound("hello"))
    finally:
        await connector.aclose()
    assert not result.ok and not result.permanent and result.retry_after == 5


async def test_send_quick_replies_as_inline_keyboard_on_last_chunk(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    replies = (QuickReply(title="查物流", payload="track"), QuickReply(title="转人工", payload="agent"))
    result = await tg.send(outbound("你" * 5000, quick_replies=replies))
    assert result.ok
    first, last = fake_telegram.calls("sendMessage")
    assert "reply_markup" not in first.params
    assert last.params["reply_markup"] == {"inline_keyboard": [
        [{"text": "查物流", "callback_data": "track"}], [{"text": "转人工", "callback_data": "agent"}]]}


async def test_send_long_payloads_fall_back_to_numbered_options(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    replies = (QuickReply(title="Yes", payload="y"), QuickReply(title="No", payload="订单" * 20))  # 120 bytes
    result = await tg.send(outbound("Cancel your order?", quick_replies=replies))
    assert result.ok
    [req] = fake_telegram.calls("sendMessage")
    assert req.params["text"] == "Cancel your order?\n\n1. Yes\n2. No"
    assert "reply_markup" not in req.params


# ---- long polling and webhook management ---------------------------------------------------------


async def test_get_updates_round_trips_through_parse_with_offset(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    updates = [{"update_id": 500 + i, "message": message(message_id=i, text=f"m{i}")} for i in range(3)]
    for update in updates:
        fake_telegram.queue_update(update)
    raw = await tg.get_updates(None, timeout=0)
    assert [json.loads(r) for r in raw] == updates  # verbatim: "from" stays "from"
    parsed = [m for r in raw for m in tg.parse(r)]
    assert [m.text for m in parsed] == ["m0", "m1", "m2"]
    assert parsed[0].customer.external_id == "42"

    assert await tg.get_updates(503, timeout=0) == []  # offset confirms all three
    fake_telegram.queue_update({"update_id": 503, "message": message(text="late")})
    [late] = await tg.get_updates(503, timeout=0)
    assert tg.parse(late)[0].external_message_id == f"{BOT_ID}:503"
    first = fake_telegram.calls("getUpdates")[0].params
    assert "offset" not in first and first["timeout"] == 0
    assert "callback_query" in first["allowed_updates"]


async def test_get_updates_long_poll_wakes_on_new_update(
    tg: TelegramConnector, fake_telegram: FakeTelegram
) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, fake_telegram.queue_update, {"update_id": 9, "message": message(text="hi")})
    started = time.monotonic()
    [raw] = await tg.get_updates(None, timeout=5)
    assert time.monotonic() - started < 4
    assert tg.parse(raw)[0].text == "hi"


async def test_webhook_helpers(tg: TelegramConnector, fake_telegram: FakeTelegram) -> None:
    assert await tg.set_webhook("https://shop.example/webhooks/telegram") is True
    assert fake_telegram.webhook is not None
    assert fake_telegram.webhook["secret_token"] == SECRET
    assert fake_telegram.webhook["url"] == "https://shop.example/webhooks/telegram"
    with pytest.raises(TelegramConflictError):
        await tg.get_updates(None, timeout=0)  # Telegram disables polling while a webhook is set
    assert await tg.delete_webhook() is True
    assert fake_telegram.webhook is None
    assert await tg.get_updates(None, timeout=0) == []


async def test_set_webhook_refuses_without_secret(fake_telegram: FakeTelegram) -> None:
    connector = TelegramConnector(TOKEN, api_base=fake_telegram.base_url)
    with pytest.raises(ValueError):
        await connector.set_webhook("https://shop.example/hook")
    assert fake_telegram.requests == []
