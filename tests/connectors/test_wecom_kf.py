"""WeCom 微信客服 connector, pure parts: URL verification (official vectors), callbacks, sync pages, states."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import PayloadError, VerificationError, WebhookRequest
from connectors.wechat_crypto import WeChatCrypto, msg_signature
from connectors.wecom_kf import (
    BadItem,
    KfCallback,
    KfEvent,
    WeComKfConnector,
    classify_errcode,
    parse_sync_page,
    split_conversation_key,
    split_text,
)
from connectors.wecom_kf_states import (
    KfState,
    SessionEffect,
    effect_of,
    kf_state_after,
    ours_for,
    sendable,
    wecom_state_for,
)
from gateway.models import Channel, ConversationState, InboundMessage, OutboundMessage, QuickReply

# C1 — WeCom official sample (spec §1.7): URL verification and a POST whose plaintext is a text message.
C1_TOKEN, C1_KEY, C1_CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
C1_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
C1_URL_QUERY = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
                "nonce": "263014780", "echostr": C1_ECHO}
C1_POST_QUERY = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
                 "nonce": "1372623149"}
C1_POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
    "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGU"
    "callcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDY"
    "A5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)


def c1() -> WeComKfConnector:
    return WeComKfConnector(C1_CORP, "kf-secret", C1_TOKEN, C1_KEY)


def get(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="GET", path="/webhooks/wecom", headers={}, query=query, body=b"")


def post(query: dict[str, str], body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/wecom", headers={}, query=query, body=body)


# ---- URL verification ---------------------------------------------------------------------------------


def test_c1_url_verification_returns_the_decrypted_echostr() -> None:
    assert c1().verify_url(get(C1_URL_QUERY)) == "1616140317555161061"


def test_echostr_damaged_by_a_form_decoder_still_verifies() -> None:
    # '+' read as a space by application/x-www-form-urlencoded rules must not break the check.
    assert "+" in C1_ECHO and "/" in C1_ECHO and C1_ECHO.endswith("==")
    assert c1().verify_url(get({**C1_URL_QUERY, "echostr": C1_ECHO.replace("+", " ")})) == "1616140317555161061"


@pytest.mark.parametrize(("token", "key", "corp", "query", "plain"), [
    # C2 (newer official python sample) and C3 (wechatpy's WeCom tests), spec §1.7
    ("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1436e0e65a779aee",
     {"msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "timestamp": "1476416373", "nonce": "47744683",
      "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="},
     "1288432023552776189"),
    ("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a",
     {"msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "timestamp": "1411443780", "nonce": "437374425",
      "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="},
     "5927782489442352469"),
])
def test_other_official_url_vectors(token: str, key: str, corp: str, query: dict[str, str], plain: str) -> None:
    assert WeComKfConnector(corp, "s", token, key).verify_url(get(query)) == plain


@pytest.mark.parametrize(("change", "error"), [
    ({"nonce": "437374424"}, VerificationError),  # C3's "invalid nonce" case, applied to C1
    ({"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4"}, VerificationError),
    ({"msg_signature": ""}, VerificationError),
    ({"timestamp": ""}, VerificationError),
    ({"echostr": ""}, PayloadError),
])
def test_url_verification_rejects(change: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        c1().verify_url(get({**C1_URL_QUERY, **change}))


def test_url_verification_with_another_corps_echostr_is_rejected() -> None:
    other = WeComKfConnector("ww-not-the-corp", "s", C1_TOKEN, C1_KEY)  # signature fine, receive id wrong
    with pytest.raises(PayloadError):
        other.verify_url(get(C1_URL_QUERY))


# ---- callbacks ----------------------------------------------------------------------------------------


def envelope(encrypt: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{C1_CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[218]]></AgentID></xml>").encode()


def signed(inner: str, *, crypto: WeChatCrypto | None = None) -> WebhookRequest:
    encrypt = (crypto or WeChatCrypto(C1_TOKEN, C1_KEY, C1_CORP)).encrypt(inner, random16=b"0123456789abcdef")
    query = {"msg_signature": msg_signature(C1_TOKEN, "1700000000", "n1", encrypt), "timestamp": "1700000000",
             "nonce": "n1"}
    return post(query, envelope(encrypt))


KF_EVENT = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><CreateTime>1700000000</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>"
            "<OpenKfId><![CDATA[wkABCDEF]]></OpenKfId></xml>")


def test_kf_callback_verifies_and_parses_to_a_pull_request() -> None:
    conn, req = c1(), signed(KF_EVENT)
    conn.verify(req)
    assert conn.parse_callback(req.body) == KfCallback("ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "wkABCDEF")
    assert conn.parse(req.body) == []  # the callback carries no message: it says "pull"
    assert conn.ack([]).body == b"success"


def test_c1_post_vector_verifies_and_is_not_a_kf_event() -> None:
    conn, req = c1(), post(C1_POST_QUERY, envelope(C1_POST_ENCRYPT))
    conn.verify(req)  # official msg_signature over the official Encrypt
    assert conn.parse_callback(req.body) is None  # a WeCom app text message, not kf_msg_or_event


@pytest.mark.parametrize(("request_", "error"), [
    (post({}, envelope("abc")), VerificationError),
    (post({**C1_POST_QUERY, "msg_signature": "0" * 40}, envelope(C1_POST_ENCRYPT)), VerificationError),
    (post(C1_POST_QUERY, envelope(C1_POST_ENCRYPT.replace("Ryp", "Ryq"))), VerificationError),
    (post(C1_POST_QUERY, b"not xml"), PayloadError),
    (post(C1_POST_QUERY, b"<xml><ToUserName>x</ToUserName></xml>"), PayloadError),
    (post(C1_POST_QUERY, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                         b"<xml><Encrypt>&e;</Encrypt></xml>"), PayloadError),
])
def test_verify_rejects(request_: WebhookRequest, error: type[Exception]) -> None:
    with pytest.raises(error):
        c1().verify(request_)


@pytest.mark.parametrize("body", [
    b"",
    b"<xml>",
    b"<notxml><Encrypt>x</Encrypt></notxml>",
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    envelope("not base64!"),
    envelope(WeChatCrypto(C1_TOKEN, C1_KEY, "ww-other-corp").encrypt(KF_EVENT)),  # wrong receive id
    signed("<xml><MsgType>event</MsgType><Event>kf_msg_or_event</Event><OpenKfId>wk</OpenKfId></xml>").body,
    signed("<xml><MsgType>event</MsgType><Event>kf_msg_or_event</Event><Token>t</Token></xml>").body,
    signed("not xml inside").body,
])
def test_parse_callback_rejects_junk(body: bytes) -> None:
    with pytest.raises(PayloadError):
        c1().parse_callback(body)


# ---- sync pages ---------------------------------------------------------------------------------------

T = 1700000000
AT = datetime.fromtimestamp(T, UTC)


def customer(msgtype: str, body: Any, **extra: Any) -> dict[str, Any]:
    return {"msgid": f"m-{msgtype}", "open_kfid": "wk1", "external_userid": "wm1", "send_time": T, "origin": 3,
            "msgtype": msgtype, msgtype: body, **extra}


@pytest.mark.parametrize(("item", "text", "attachments"), [
    (customer("text", {"content": "你好"}), "你好", []),
    (customer("text", {"content": "满意", "menu_id": "csat:5"}), "csat:5", []),
    (customer("image", {"media_id": "IMG"}), "", [("image", "IMG")]),
    (customer("voice", {"media_id": "VOI"}), "", [("audio", "VOI")]),
    (customer("video", {"media_id": "VID"}), "", [("video", "VID")]),
    (customer("file", {"media_id": "FIL"}), "", [("file", "FIL")]),
    (customer("location", {"latitude": 23.1, "longitude": 113.3, "name": "广州塔", "address": "海珠区"}),
     "广州塔 海珠区", [("location", "23.1,113.3")]),
    (customer("link", {"title": "订单", "desc": "详情", "url": "https://shop.example/o/1", "pic_url": "p"}),
     "订单\n详情\nhttps://shop.example/o/1", [("other", "https://shop.example/o/1")]),
    (customer("miniprogram", {"title": "商品", "appid": "wxapp", "pagepath": "pages/i", "thumb_media_id": "T"}),
     "商品", [("other", "wxapp:pages/i")]),
    (customer("business_card", {"userid": "u1"}), "", [("other", "u1")]),
    (customer("channels_shop_product", {"product_id": "p1"}), "", [("other", "channels_shop_product")]),
])
def test_customer_messages(item: dict[str, Any], text: str, attachments: list[tuple[str, str]]) -> None:
    page = parse_sync_page({"errcode": 0, "errmsg": "ok", "next_cursor": "c1", "has_more": 0, "msg_list": [item]})
    [msg] = page.items
    assert isinstance(msg, InboundMessage)
    assert (msg.channel, msg.external_message_id, msg.conversation_key) == (Channel.WECOM, item["msgid"], "wk1:wm1")
    assert (msg.customer.channel, msg.customer.external_id, msg.sent_at) == (Channel.WECOM, "wm1", AT)
    assert msg.text == text
    assert [(a.kind, a.ref) for a in msg.attachments] == attachments
    assert msg.raw == item
    assert (page.next_cursor, page.has_more, page.messages) == ("c1", False, [msg])


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {"msgid": f"e-{event_type}", "send_time": T, "origin": 4, "msgtype": "event",
            "event": {"event_type": event_type, "open_kfid": "wk1", "external_userid": "wm1", **fields}}


@pytest.mark.parametrize(("item", "expected"), [
    (event("enter_session", scene="123", welcome_code="W"),
     KfEvent("enter_session", "e-enter_session", "wk1", "wm1", AT)),
    (event("session_status_change", change_type=1, new_servicer_userid="zhangsan", msg_code="c"),
     KfEvent("session_status_change", "e-session_status_change", "wk1", "wm1", AT, servicer_userid="zhangsan",
             change_type=1)),
    (event("session_status_change", change_type=3, old_servicer_userid="zhangsan"),
     KfEvent("session_status_change", "e-session_status_change", "wk1", "wm1", AT, change_type=3)),
    (event("msg_send_fail", fail_msgid="sent-1", fail_type=4),
     KfEvent("msg_send_fail", "e-msg_send_fail", "wk1", "wm1", AT, fail_msgid="sent-1", fail_type=4)),
    ({"msgid": "e-s", "send_time": T, "origin": 4, "msgtype": "event",
      "event": {"event_type": "servicer_status_change", "open_kfid": "wk1", "servicer_userid": "lisi", "status": 2}},
     KfEvent("servicer_status_change", "e-s", "wk1", None, AT, servicer_userid="lisi")),
    ({"msgid": "s-1", "open_kfid": "wk1", "external_userid": "wm1", "send_time": T, "origin": 5,
      "servicer_userid": "zhangsan", "msgtype": "text", "text": {"content": "我来处理"}},
     KfEvent("servicer_message", "s-1", "wk1", "wm1", AT, servicer_userid="zhangsan", text="我来处理")),
    ({"msgid": "s-2", "open_kfid": "wk1", "external_userid": "wm1", "send_time": T, "origin": 5,
      "servicer_userid": "zhangsan", "msgtype": "image", "image": {"media_id": "IMG"}},
     KfEvent("servicer_message", "s-2", "wk1", "wm1", AT, servicer_userid="zhangsan", text="[image]")),
])
def test_events(item: dict[str, Any], expected: KfEvent) -> None:
    [got] = parse_sync_page({"errcode": 0, "next_cursor": "c", "has_more": 0, "msg_list": [item]}).items
    assert isinstance(got, KfEvent)
    assert got == KfEvent(**{**{f: getattr(expected, f) for f in KfEvent.__slots__}, "raw": item})
    assert got.conversation_key == ("wk1:wm1" if expected.external_userid else None)


@pytest.mark.parametrize("item", [
    "not an object",
    {**customer("text", {"content": "x"}), "msgid": ""},
    {**customer("text", {"content": "x"}), "origin": 9},
    {**customer("text", {"content": "x"}), "send_time": "yesterday"},
    {**customer("text", {"content": "x"}), "send_time": 10**20},
    {**customer("text", {"content": "x"}), "external_userid": None},
    customer("text", "not an object"),
    customer("text", {"content": 42}),
    customer("image", {}),
    customer("location", {"latitude": "north", "longitude": 1}),
    {"msgid": "e", "send_time": T, "origin": 4, "msgtype": "event", "event": "x"},
    {"msgid": "e", "send_time": T, "origin": 4, "msgtype": "event", "event": {"event_type": "enter_session"}},
])
def test_unreadable_items_become_bad_items_and_the_page_goes_on(item: Any) -> None:
    good = customer("text", {"content": "after"})
    page = parse_sync_page({"errcode": 0, "next_cursor": "c", "has_more": 1, "msg_list": [item, good]})
    assert [type(i) for i in page.items] == [BadItem, InboundMessage]
    assert page.bad[0].raw == item and page.bad[0].error
    assert page.messages[0].text == "after"


def test_empty_page_with_has_more_continues() -> None:
    page = parse_sync_page({"errcode": 0, "errmsg": "ok", "next_cursor": "c2", "has_more": 1, "msg_list": []})
    assert (page.items, page.next_cursor, page.has_more) == ((), "c2", True)


@pytest.mark.parametrize("page", [
    None, [], "x",
    {"errcode": 95007, "errmsg": "invalid msg token"},
    {"errcode": 0, "next_cursor": "c", "msg_list": []},  # no has_more
    {"errcode": 0, "next_cursor": "c", "has_more": True, "msg_list": []},
    {"errcode": 0, "next_cursor": "c", "has_more": 2, "msg_list": []},
    {"errcode": 0, "next_cursor": "", "has_more": 1, "msg_list": []},  # cannot advance
    {"errcode": 0, "next_cursor": 5, "has_more": 0, "msg_list": []},
    {"errcode": 0, "next_cursor": "c", "has_more": 0, "msg_list": {}},
])
def test_unusable_pages_raise(page: Any) -> None:
    with pytest.raises(PayloadError):
        parse_sync_page(page)


# ---- states -------------------------------------------------------------------------------------------

S = ConversationState


@pytest.mark.parametrize(("kind", "change_type", "state", "effect"), [
    ("session_status_change", 1, KfState.SERVICER, SessionEffect.HUMAN_TOOK_OVER),  # picked up from the pool
    ("session_status_change", 2, KfState.SERVICER, SessionEffect.HUMAN_TOOK_OVER),  # transferred
    ("session_status_change", 3, KfState.ENDED, SessionEffect.ENDED),
    ("session_status_change", 4, KfState.SERVICER, SessionEffect.HUMAN_TOOK_OVER),  # re-joined
    ("session_status_change", 9, None, SessionEffect.NONE),
    ("session_status_change", None, None, SessionEffect.NONE),
    ("servicer_message", None, KfState.SERVICER, SessionEffect.HUMAN_TOOK_OVER),
    ("msg_send_fail", None, None, SessionEffect.DELIVERY_FAILED),
    ("enter_session", None, None, SessionEffect.NONE),
    ("servicer_status_change", None, None, SessionEffect.NONE),
    ("user_recall_msg", None, None, SessionEffect.NONE),
])
def test_what_events_mean(kind: str, change_type: int | None, state: KfState | None, effect: SessionEffect) -> None:
    assert kf_state_after(kind, change_type) == state
    assert effect_of(kind, change_type) == effect


@pytest.mark.parametrize(("wecom", "current", "held", "ours"), [
    (KfState.NEW, S.BOT, False, S.BOT),
    (KfState.ASSISTANT, S.AGENT, False, S.AGENT),  # our agent answers through the API: still "assistant"
    (KfState.QUEUED, S.BOT, False, S.QUEUED),
    (KfState.SERVICER, S.BOT, False, S.QUEUED),  # bot must go silent: escalate
    (KfState.SERVICER, S.RESOLVED, False, S.QUEUED),  # the next message would reach the bot
    (KfState.SERVICER, S.CLOSED, False, S.QUEUED),
    (KfState.SERVICER, S.QUEUED, True, S.QUEUED),
    (KfState.SERVICER, S.AGENT, False, S.AGENT),  # never AGENT from WeCom, never taken from our agent
    (KfState.ENDED, S.QUEUED, True, S.BOT),  # a WeCom-held session ended: back to the bot
    (KfState.ENDED, S.AGENT, False, S.AGENT),  # our agent's ticket is ours to close
    (KfState.ENDED, S.BOT, False, S.BOT),
])
def test_ours_for(wecom: KfState, current: ConversationState, held: bool, ours: ConversationState) -> None:
    assert ours_for(wecom, current, held_by_wecom=held) == ours


@pytest.mark.parametrize(("ours", "wecom"), [
    (S.BOT, KfState.ASSISTANT), (S.QUEUED, KfState.ASSISTANT), (S.AGENT, KfState.ASSISTANT),
    (S.RESOLVED, None), (S.CLOSED, None),
])
def test_wecom_state_for_keeps_sessions_sendable(ours: ConversationState, wecom: KfState | None) -> None:
    assert wecom_state_for(ours) == wecom
    assert wecom is None or sendable(wecom)


def test_sendable_states() -> None:
    assert [s for s in KfState if sendable(s)] == [KfState.NEW, KfState.ASSISTANT]


# ---- send helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "verdict"), [
    (0, "ok"), (40001, "token"), (40014, "token"), (42001, "token"), (-1, "retry"), (45009, "retry"),
    (95018, "permanent"), (95013, "permanent"), (95001, "permanent"), (40003, "permanent"), (44004, "permanent"),
])
def test_classify_errcode(code: int, verdict: str) -> None:
    assert classify_errcode(code) == verdict


@pytest.mark.parametrize("text", ["短", "行\n" * 1500, "长" * 2000, "a" * 5000, "😀" * 1000, "x" * 2047 + "中"])
def test_split_text_is_lossless_and_bounded(text: str) -> None:
    chunks = split_text(text)
    assert "".join(chunks) == text
    assert all(0 < len(c.encode()) <= 2048 for c in chunks)


def test_split_prefers_line_breaks() -> None:
    text = "第一段\n" + "字" * 600 + "\n" + "字" * 300
    first, second = split_text(text)
    assert first.endswith("\n") and second == "字" * 300


@pytest.mark.parametrize(("key", "ids"), [
    ("wk1:wm1", ("wk1", "wm1")), ("wk1", None), (":wm1", None), ("wk1:", None),
])
def test_split_conversation_key(key: str, ids: tuple[str, str] | None) -> None:
    assert split_conversation_key(key) == ids


async def test_send_refuses_foreign_keys_and_blank_text_without_io() -> None:
    conn = WeComKfConnector(C1_CORP, "s", C1_TOKEN, C1_KEY, api_base="http://127.0.0.1:9")
    from gateway.models import CustomerRef

    who = CustomerRef(channel=Channel.WECOM, external_id="wm1")
    bad_key = await conn.send(OutboundMessage(channel=Channel.WECOM, conversation_key="nokey", recipient=who,
                                              text="hi"))
    blank = await conn.send(OutboundMessage(channel=Channel.WECOM, conversation_key="wk:wm1", recipient=who,
                                            text="  ", quick_replies=()))
    assert bad_key.permanent and blank.permanent and not bad_key.ok
    await conn.aclose()


def test_quick_replies_become_numbered_options() -> None:
    from connectors.wecom_kf import render
    from gateway.models import CustomerRef

    msg = OutboundMessage(channel=Channel.WECOM, conversation_key="wk:wm", text="满意吗？",
                          recipient=CustomerRef(channel=Channel.WECOM, external_id="wm"),
                          quick_replies=(QuickReply(title="满意", payload="csat:5"),
                                         QuickReply(title="不满意", payload="csat:1")))
    assert render(msg) == "满意吗？\n\n1. 满意\n2. 不满意"
