"""WeChatConnector: verify/parse (pure, table-driven, official vectors) and send against a real local fake
of api.weixin.qq.com with the real SharedAccessToken on real Redis."""

from __future__ import annotations

import io
import xml.sax
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fakes.wechat_api import FakeWeChatApi
from fakes.wechat_push import WeChatPush, callback_xml
from fakes.xml_attacks import OpenWatch, billion_laughs, xxe_payloads

from connectors.base import PayloadError, VerificationError, WebhookRequest
from connectors.wechat import MAX_TEXT_BYTES, WeChatApiError, WeChatConnector, render, split_utf8
from connectors.wechat_crypto import WeChatCrypto, WeChatCryptoError, msg_signature, plain_signature
from gateway.access_tokens import SharedAccessToken
from gateway.keys import Keys
from gateway.models import Attachment, Channel, CustomerRef, OutboundMessage, QuickReply

TOKEN = "huiliuTok3n"
APP_ID = "wx1234567890abcdef"
SECRET = "app-secret-0123456789abcdef"
KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
NOW = 1_763_000_000
OPENID = "oUser_openid-0123456789abcd"

# -- official vectors (channels spec §1.7) ------------------------------------------------------------------
MP_TOKEN, MP_KEY, MP_APPID = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
W2_TS, W2_NONCE = "1409735669", "1320562132"
W2_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
W2_PLAIN_SIGNATURE = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
W2_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2L"
    "dJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6u"
    "x5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJ"
    "pXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCz"
    "pu9GhglF2PE="
)
W3_TS, W3_NONCE = "1410349438", "298025754"
W3_MSG_SIGNATURE = "003fee52ecc56afb46c00b5c7721be87860ce785"
W3_ENCRYPT = (
    "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8jSI/WPeKB5V"
    "Pr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPaE7ukZBTV2YqyzH+UI2AK+"
    "J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtka"
    "KdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GT"
    "F/XyE8yGzc4="
)
W5_TOKEN, W5_TS, W5_NONCE = "test", "1410685589", "test"
W5_SIGNATURE = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"

def plain(**kw: Any) -> WeChatConnector:
    return WeChatConnector(APP_ID, SECRET, TOKEN, clock=lambda: NOW, subscribe_text="你好", **kw)


def safe(**kw: Any) -> WeChatConnector:
    return WeChatConnector(APP_ID, SECRET, TOKEN, KEY, clock=lambda: NOW, subscribe_text="你好", **kw)


def post(query: dict[str, str], body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/wechat", headers={"Content-Type": "text/xml"},
                          query=query, body=body)


def text_xml(content: str = "怎么退货", msg_id: int = 24000000000000001, openid: str = OPENID) -> str:
    return callback_xml(openid, "text", NOW, Content=content, MsgId=msg_id)


def pushed(mode: str, xml: str, **kw: Any) -> WebhookRequest:
    push = WeChatPush(TOKEN, APP_ID, KEY if mode != "plain" else None, mode)  # type: ignore[arg-type]
    query, body = push.request(xml, timestamp=kw.pop("timestamp", NOW), **kw)
    return post(query, body)


def parse_one(conn: WeChatConnector, req: WebhookRequest) -> Any:
    conn.verify(req)
    [message] = conn.parse(req.body)
    return message


# ---- verify ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "safe", "compat"])
def test_signed_push_verifies_and_parses(mode: str) -> None:
    conn = plain() if mode == "plain" else safe()
    msg = parse_one(conn, pushed(mode, text_xml("在吗？包裹还没到")))
    assert msg.channel == Channel.WECHAT and msg.text == "在吗？包裹还没到"
    assert msg.external_message_id == "24000000000000001" and msg.conversation_key == OPENID
    assert msg.customer == CustomerRef(channel=Channel.WECHAT, external_id=OPENID)
    assert msg.sent_at == datetime.fromtimestamp(NOW, UTC)
    assert msg.raw["MsgType"] == "text" and msg.raw["ToUserName"].startswith("gh_") and "Encrypt" not in msg.raw


def test_w5_official_plain_signature() -> None:
    conn = WeChatConnector(APP_ID, SECRET, W5_TOKEN, clock=lambda: int(W5_TS))
    query = {"signature": W5_SIGNATURE, "timestamp": W5_TS, "nonce": W5_NONCE, "echostr": "5837397749754245"}
    get = WebhookRequest("GET", "/webhooks/wechat", {}, query, b"")
    assert conn.verify_url(get) == "5837397749754245"
    with pytest.raises(VerificationError):
        conn.verify_url(WebhookRequest("GET", "/webhooks/wechat", {}, {**query, "signature": W5_SIGNATURE[:-1] + "e"},
                                       b""))


def test_w2_official_compat_mode_uses_msg_signature_and_the_ciphertext() -> None:
    conn = WeChatConnector(MP_APPID, SECRET, MP_TOKEN, MP_KEY, clock=lambda: int(W2_TS))
    # Tencent's Sample.py from_xml: plaintext fields next to <Encrypt>. The plaintext copy here is forged
    # ("forged", another openid): only the authenticated ciphertext may count.
    body = ("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[o_forged]]></FromUserName>"
            "<CreateTime>1409735669</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[forged]]></Content><MsgId>1234567890123456</MsgId>"
            f"<Encrypt><![CDATA[{W2_ENCRYPT}]]></Encrypt></xml>").encode()
    query = {"signature": W2_PLAIN_SIGNATURE, "timestamp": W2_TS, "nonce": W2_NONCE, "encrypt_type": "aes",
             "msg_signature": W2_MSG_SIGNATURE}
    msg = parse_one(conn, post(query, body))
    assert (msg.text, msg.external_message_id) == ("abcdteT", "6054768590064713728")
    assert msg.conversation_key == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert msg.raw["ToUserName"] == "gh_10f6c3c3ac5a"
    # A valid plain `signature` does not make up for a wrong msg_signature (spec §1.1: 不要使用 signature 验证)...
    with pytest.raises(VerificationError):
        conn.verify(post({**query, "msg_signature": W2_MSG_SIGNATURE[:-1] + "0"}, body))
    # ...and a missing or wrong plain signature does not matter in safe mode.
    conn.verify(post({k: v for k, v in query.items() if k != "signature"}, body))


def test_w3_official_safe_mode() -> None:
    conn = WeChatConnector(MP_APPID, SECRET, MP_TOKEN, MP_KEY, clock=lambda: int(W3_TS))
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{W3_ENCRYPT}]]></Encrypt></xml>"
    query = {"timestamp": W3_TS, "nonce": W3_NONCE, "encrypt_type": "aes", "msg_signature": W3_MSG_SIGNATURE}
    msg = parse_one(conn, post(query, body.encode()))
    assert (msg.text, msg.external_message_id) == ("abcdteT", "6057404712141979648")


def _resign(req: WebhookRequest, **changes: str) -> WebhookRequest:
    return post({**req.query, **changes}, req.body)


@pytest.mark.parametrize(("mode", "tamper"), [
    ("plain", {"signature": "0" * 40}),
    ("plain", {"signature": ""}),
    ("plain", {"signature": "签名"}),  # non-ASCII must not crash the constant-time compare
    ("plain", {"nonce": "other-nonce"}),
    ("plain", {"timestamp": "abc"}),
    ("plain", {"timestamp": ""}),
    ("safe", {"msg_signature": "0" * 40}),
    ("safe", {"msg_signature": ""}),
    ("safe", {"nonce": "other-nonce"}),
    ("compat", {"msg_signature": "f" * 40}),
])
def test_bad_signatures_are_refused(mode: str, tamper: dict[str, str]) -> None:
    conn = plain() if mode == "plain" else safe()
    with pytest.raises(VerificationError):
        conn.verify(_resign(pushed(mode, text_xml()), **tamper))


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (-299, True), (299, True), (-301, False), (301, False),
                                            (-86400, False)])
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_timestamp_window(mode: str, offset: int, ok: bool) -> None:
    conn = plain() if mode == "plain" else safe()
    req = pushed(mode, text_xml(), timestamp=NOW + offset)
    if ok:
        conn.verify(req)
    else:
        with pytest.raises(VerificationError, match="away from our clock"):
            conn.verify(req)
    plain(max_skew_s=None).verify(pushed("plain", text_xml(), timestamp=NOW - 86400))  # window off


def test_safe_mode_account_refuses_plaintext_posts() -> None:
    """A configured EncodingAESKey means the body must be encrypted: a captured `signature` cannot be
    reused to post a forged plaintext body (the plain signature does not cover the body)."""
    req = pushed("plain", text_xml())
    with pytest.raises(VerificationError, match="no <Encrypt>"):
        safe().verify(req)
    with pytest.raises(PayloadError):
        safe().parse(req.body)


def test_plaintext_account_and_encrypted_body() -> None:
    conn = plain()
    compat = pushed("compat", text_xml("兼容模式"))
    conn.verify(compat)  # msg_signature needs only the token
    assert [m.text for m in conn.parse(compat.body)] == ["兼容模式"]  # no key: the plaintext copy is all there is
    with pytest.raises(VerificationError):  # <Encrypt> in the body: the plain signature alone is not enough
        conn.verify(_resign(compat, msg_signature=""))
    only_cipher = pushed("safe", text_xml())
    conn.verify(only_cipher)
    with pytest.raises(PayloadError, match="WECHAT_ENCODING_AES_KEY"):
        conn.parse(only_cipher.body)


def test_ciphertext_for_another_appid_is_refused() -> None:
    xml = text_xml()
    encrypt = WeChatCrypto(TOKEN, KEY, "wx0000000000other").encrypt(xml)  # our key, another receive id
    ts, nonce = str(NOW), "42"
    body = f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    req = post({"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                "msg_signature": msg_signature(TOKEN, ts, nonce, encrypt)}, body)
    conn = safe()
    conn.verify(req)  # the signature only proves knowledge of the token
    with pytest.raises(PayloadError, match="-40005"):
        conn.parse(req.body)


@pytest.mark.parametrize("encrypt", ["not base64!!", "QUJD", "A" * 44, ""])
def test_undecryptable_envelopes_are_400(encrypt: str) -> None:
    ts, nonce = str(NOW), "7"
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    req = post({"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                "msg_signature": msg_signature(TOKEN, ts, nonce, encrypt.strip())}, body)
    conn = safe()
    with pytest.raises(PayloadError):
        conn.verify(req)
        conn.parse(req.body)


# ---- parse: every message type and event -------------------------------------------------------------------

IMG = "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0"
CASES: list[tuple[str, str, dict[str, Any], str | None, tuple[Attachment, ...], str]] = [
    ("text", "text", {"Content": "  发票怎么开？\n", "MsgId": 1001}, "  发票怎么开？\n", (), "1001"),
    ("image", "image", {"PicUrl": IMG, "MediaId": "media_img", "MsgId": 1002}, "",
     (Attachment(kind="image", ref=IMG),), "1002"),
    ("image without url", "image", {"MediaId": "media_img", "MsgId": 1003}, "",
     (Attachment(kind="image", ref="wechat-media:media_img"),), "1003"),
    ("voice recognised", "voice", {"MediaId": "m_v", "Format": "amr", "Recognition": "我要退货", "MsgId": 1004},
     "我要退货", (Attachment(kind="audio", ref="wechat-media:m_v", mime_type="audio/amr"),), "1004"),
    ("voice", "voice", {"MediaId": "m_v", "Format": "speex", "MsgId": 1005}, "",
     (Attachment(kind="audio", ref="wechat-media:m_v", mime_type="audio/speex"),), "1005"),
    ("video", "video", {"MediaId": "m_vid", "ThumbMediaId": "m_th", "MsgId": 1006}, "",
     (Attachment(kind="video", ref="wechat-media:m_vid"),), "1006"),
    ("shortvideo", "shortvideo", {"MediaId": "m_sv", "ThumbMediaId": "m_th", "MsgId": 1007}, "",
     (Attachment(kind="video", ref="wechat-media:m_sv"),), "1007"),
    ("location", "location", {"Location_X": "23.134521", "Location_Y": "113.358803", "Scale": 20,
                              "Label": "广州市天河区", "MsgId": 1008}, "",
     (Attachment(kind="location", ref="23.134521,113.358803", name="广州市天河区"),), "1008"),
    ("link", "link", {"Title": "订单截图", "Description": "d", "Url": "https://example.com/o/1", "MsgId": 1009}, "",
     (Attachment(kind="other", ref="https://example.com/o/1", name="订单截图"),), "1009"),
    ("unknown type", "file", {"Title": "invoice.pdf", "MsgId": 1010}, "",
     (Attachment(kind="other", ref="wechat-file", name="invoice.pdf"),), "1010"),
    ("subscribe", "event", {"Event": "subscribe", "EventKey": ""}, "你好", (), f"{OPENID}:{NOW}"),
    ("subscribe by QR", "event", {"Event": "subscribe", "EventKey": "qrscene_123", "Ticket": "t"}, "你好", (),
     f"{OPENID}:{NOW}"),
    ("menu click", "event", {"Event": "CLICK", "EventKey": "怎么退货"}, "怎么退货", (), f"{OPENID}:{NOW}"),
    ("menu click, empty key", "event", {"Event": "CLICK", "EventKey": ""}, None, (), ""),
    ("unsubscribe", "event", {"Event": "unsubscribe", "EventKey": ""}, None, (), ""),
    ("menu link", "event", {"Event": "VIEW", "EventKey": "https://shop.example.com"}, None, (), ""),
    ("location report", "event", {"Event": "LOCATION", "Latitude": 23.1, "Longitude": 113.3, "Precision": 119},
     None, (), ""),
    ("scan while following", "event", {"Event": "SCAN", "EventKey": "123", "Ticket": "t"}, None, (), ""),
    ("blank text", "text", {"Content": "   ", "MsgId": 1011}, None, (), ""),
]


@pytest.mark.parametrize(("name", "msg_type", "fields", "text", "attachments", "external_id"), CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_parse_types(mode: str, name: str, msg_type: str, fields: dict[str, Any], text: str | None,
                     attachments: tuple[Attachment, ...], external_id: str) -> None:
    conn = plain() if mode == "plain" else safe()
    req = pushed(mode, callback_xml(OPENID, msg_type, NOW, **fields))
    conn.verify(req)
    messages = conn.parse(req.body)
    if text is None:
        assert messages == []
        return
    [msg] = messages
    assert (msg.text, msg.attachments, msg.external_message_id) == (text, attachments, external_id)
    assert msg.conversation_key == OPENID and msg.raw["MsgType"] == msg_type
    for key, value in fields.items():  # every decrypted field is kept verbatim in raw
        assert msg.raw[key] == str(value)


def test_subscribe_without_greeting_is_ignored_and_events_dedupe_by_user_and_time() -> None:
    quiet = WeChatConnector(APP_ID, SECRET, TOKEN, clock=lambda: NOW)
    assert quiet.parse(callback_xml(OPENID, "event", NOW, Event="subscribe", EventKey="").encode()) == []
    conn = plain()
    click = callback_xml(OPENID, "event", NOW, Event="CLICK", EventKey="查物流")
    first, again = conn.parse(click.encode()), conn.parse(click.encode())
    assert first[0].message_id == again[0].message_id  # a redelivered event is the same message
    later = conn.parse(callback_xml(OPENID, "event", NOW + 1, Event="CLICK", EventKey="查物流").encode())
    other = conn.parse(callback_xml("oOther", "event", NOW, Event="CLICK", EventKey="查物流").encode())
    assert len({first[0].message_id, later[0].message_id, other[0].message_id}) == 3


def test_nested_event_blocks_are_kept_in_raw() -> None:
    block = "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult>1</ScanResult></ScanCodeInfo>"
    xml = callback_xml(OPENID, "event", NOW, Event="CLICK", EventKey="k").replace("</xml>", block + "</xml>")
    [msg] = plain().parse(xml.encode())
    assert msg.raw["ScanCodeInfo"] == {"ScanType": "qrcode", "ScanResult": "1"}


JUNK = [
    b"", b"   ", b"not xml", b"<xml>", b"<xml><a></b></xml>", b"\xff\xfe\x00<", b"<root><MsgType>text</MsgType></root>",
    b'<?xml version="1.0" encoding="x-unknown"?><xml/>',
    b"<xml><MsgType>text</MsgType><CreateTime>1</CreateTime><Content>x</Content></xml>",  # no FromUserName
    callback_xml(OPENID, "text", NOW, MsgId=1).encode(),  # text without Content
    callback_xml(OPENID, "text", NOW, Content="x").replace(f"<CreateTime>{NOW}", "<CreateTime>soon").encode(),
    callback_xml(OPENID, "text", NOW, Content="x").replace(f"<CreateTime>{NOW}", "<CreateTime>999999999999").encode(),
    callback_xml("o u", "text", NOW, Content="x").encode(),
    callback_xml(OPENID, "text", NOW, Content="x").replace("<MsgType><![CDATA[text]]></MsgType>", "").encode(),
    b"<xml><Encrypt></Encrypt></xml>",
]


@pytest.mark.parametrize("body", JUNK)
def test_junk_is_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        plain().parse(body)


# ---- XML attacks -------------------------------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[OpenWatch, str]:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-4711")
    watch = OpenWatch()
    return watch, watch.watch(path)


def test_the_open_watch_sees_a_vulnerable_parser(secret_file: tuple[OpenWatch, str]) -> None:
    """Control: SAX with external entities on (the classic XXE setup) reads the file, and the watch sees it."""
    watch, path = secret_file
    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    parser.setContentHandler(xml.sax.ContentHandler())
    parser.parse(io.BytesIO(xxe_payloads(path, OPENID, NOW)[0].encode()))
    assert path in watch.opened()


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_xxe_and_entity_bombs_are_refused_without_reading_files(mode: str,
                                                                secret_file: tuple[OpenWatch, str]) -> None:
    watch, path = secret_file
    conn = plain() if mode == "plain" else safe()
    for body in [*xxe_payloads(path, OPENID, NOW), billion_laughs(OPENID)]:
        # Plain: an attacker who knows the token still gets refused; safe: even inside a valid ciphertext.
        req = pushed(mode, body)
        with pytest.raises(PayloadError) as info:
            conn.verify(req)
            conn.parse(req.body)
        assert "TOP-SECRET" not in str(info.value) and "DTD" in str(info.value)
        with pytest.raises(PayloadError):  # parse() on its own refuses too
            conn.parse(body.encode())
    assert watch.opened() == []


# ---- ack, config, rendering -------------------------------------------------------------------------------


def test_ack_is_always_success() -> None:
    conn = plain()
    for messages in ([], conn.parse(text_xml().encode())):
        ack = conn.ack(messages)
        assert (ack.status, ack.body, ack.content_type) == (200, b"success", "text/plain")


def test_url_check_needs_echostr_and_signature() -> None:
    push = WeChatPush(TOKEN, APP_ID)
    query = push.url_check("echo+/= 回声", timestamp=NOW)
    get = WebhookRequest("GET", "/webhooks/wechat", {}, query, b"")
    assert plain().verify_url(get) == "echo+/= 回声"  # verbatim
    with pytest.raises(PayloadError):
        plain().verify_url(WebhookRequest("GET", "/", {}, {k: v for k, v in query.items() if k != "echostr"}, b""))
    with pytest.raises(VerificationError):
        plain().verify_url(WebhookRequest("GET", "/", {}, {**query, "signature": plain_signature("x", "1", "2")}, b""))


def test_bad_aes_key_is_refused_at_construction() -> None:
    with pytest.raises(WeChatCryptoError):
        WeChatConnector(APP_ID, SECRET, TOKEN, "abcde")
    with pytest.raises(ValueError):
        WeChatConnector(APP_ID, "", TOKEN)


@pytest.mark.parametrize("text", ["短", "长" * 2000, "a" * 5000, "第一段。" * 400 + "\n\n" + "第二段！" * 400,
                                  "👨‍👩‍👧‍👦" * 300, "e\u0301" * 1500])
def test_split_utf8_is_lossless_and_within_limit(text: str) -> None:
    chunks = split_utf8(text)
    assert "".join(chunks) == text
    assert all(0 < len(c.encode()) <= MAX_TEXT_BYTES for c in chunks)
    # Nicer breaks may shorten a chunk, never below half a window: at most twice the minimum count.
    assert len(chunks) <= 2 * -(-len(text.encode()) // MAX_TEXT_BYTES)
    for chunk in chunks[1:]:  # no emoji sequence or accented letter torn apart
        assert chunk[0] not in "\u200d\u0301"


def test_quick_replies_render_as_numbered_options() -> None:
    out = OutboundMessage(channel=Channel.WECHAT, conversation_key=OPENID,
                          recipient=CustomerRef(channel=Channel.WECHAT, external_id=OPENID), text="请选择：",
                          quick_replies=(QuickReply(title="查物流", payload="/track"),
                                         QuickReply(title="转人工", payload="/human")))
    assert render(out) == "请选择：\n\n1. 查物流\n2. 转人工"


# ---- send, against the fake API ----------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatApi]:
    fake = FakeWeChatApi(app_id=APP_ID, app_secret=SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def wx(api: FakeWeChatApi, redis: aioredis.Redis, keys: Keys) -> AsyncIterator[WeChatConnector]:
    conn = WeChatConnector(APP_ID, SECRET, TOKEN, api_base=api.base_url)
    conn.tokens = SharedAccessToken(redis, keys, f"wechat:{APP_ID}", conn.fetch_access_token)
    yield conn
    await conn.aclose()


def reply(text: str, **kw: Any) -> OutboundMessage:
    return OutboundMessage(channel=Channel.WECHAT, conversation_key=OPENID,
                           recipient=CustomerRef(channel=Channel.WECHAT, external_id=OPENID), text=text, **kw)


async def test_send_text_and_reuse_the_shared_token(wx: WeChatConnector, api: FakeWeChatApi) -> None:
    for text in ("亲，您好！", "第二条"):
        result = await wx.send(reply(text))
        assert result.ok and not result.permanent
    assert [m["text"]["content"] for m in api.sent(OPENID)] == ["亲，您好！", "第二条"]
    assert api.sent()[0] == {"touser": OPENID, "msgtype": "text", "text": {"content": "亲，您好！"}}
    assert api.token_calls == 1  # cached in Redis, not fetched per send


@pytest.mark.parametrize(("errcode", "permanent", "retry_after", "words"), [
    (45015, True, None, "48 h"), (45047, True, None, "quota"), (-1, False, 5.0, "-1"), (45009, False, 60.0, "45009"),
    (40003, True, None, "40003"), (43004, True, None, "43004"),
])
async def test_send_error_mapping(wx: WeChatConnector, api: FakeWeChatApi, errcode: int, permanent: bool,
                                  retry_after: float | None, words: str) -> None:
    api.fail_next_send(errcode)
    result = await wx.send(reply("在的"))
    assert not result.ok and result.permanent is permanent and result.retry_after == retry_after
    assert result.error is not None and words in result.error and str(errcode) in result.error
    assert len(api.send_calls) == 1  # mapped, not retried inside the connector
    if errcode in (45015, 45047):
        assert "微信" in result.error and "WeChat" in result.error  # for the agent who picks up the ticket


@pytest.mark.parametrize("errcode", [40001, 42001, 40014])
async def test_invalid_token_is_refreshed_once(wx: WeChatConnector, api: FakeWeChatApi, errcode: int) -> None:
    assert (await wx.send(reply("一"))).ok
    if errcode == 40001:
        api.revoke_tokens()
    elif errcode == 42001:
        api.expire_tokens()
    else:
        api.fail_next_send(40014)
    result = await wx.send(reply("二"))
    assert result.ok, result.error
    assert api.token_calls == 2  # one refresh, shared through Redis
    assert [c.errcode for c in api.send_calls] == [0, errcode, 0]


async def test_token_rejected_twice_is_retried_later(wx: WeChatConnector, api: FakeWeChatApi) -> None:
    api.fail_next_send(40001, times=2)
    result = await wx.send(reply("x"))
    assert not result.ok and not result.permanent and result.retry_after == 60.0
    assert len(api.send_calls) == 2


async def test_bad_credentials_and_unreachable_api_are_transient(redis: aioredis.Redis, keys: Keys,
                                                                 api: FakeWeChatApi) -> None:
    wrong = WeChatConnector(APP_ID, "wrong-secret-value", TOKEN, api_base=api.base_url)
    wrong.tokens = SharedAccessToken(redis, keys, "wechat:wrong", wrong.fetch_access_token)
    with pytest.raises(WeChatApiError, match="40125") as info:
        await wrong.fetch_access_token()
    assert "wrong-secret-value" not in str(info.value)
    result = await wrong.send(reply("x"))
    assert not result.ok and not result.permanent and result.retry_after
    assert "wrong-secret-value" not in (result.error or "")
    await wrong.aclose()
    down = WeChatConnector(APP_ID, SECRET, TOKEN, api_base="http://127.0.0.1:9")
    down.tokens = SharedAccessToken(redis, keys, "wechat:down", down.fetch_access_token, wait_s=0.5)
    result = await down.send(reply("x"))
    assert not result.ok and not result.permanent and result.retry_after
    await down.aclose()


async def test_http_5xx_is_transient(wx: WeChatConnector, api: FakeWeChatApi) -> None:
    api.fail_next_send(0, http_status=502)
    result = await wx.send(reply("x"))
    assert not result.ok and not result.permanent and result.retry_after == 5.0
    assert (await wx.send(reply("x"))).ok


async def test_long_reply_is_split_and_a_retry_resumes(wx: WeChatConnector, api: FakeWeChatApi) -> None:
    text = "。".join(["这是一段很长的售后说明"] * 200)  # ~6.6 KB of UTF-8: 4 chunks
    out = reply(text, quick_replies=(QuickReply(title="满意", payload="/csat{\"score\":5}"),))
    api.fail_next_send(-1, after=1)  # the second chunk hits "system busy"
    first = await wx.send(out)
    assert not first.ok and first.retry_after == 5.0 and first.error and first.error.startswith("chunk 2/")
    second = await wx.send(out)  # the delivery worker's retry of the same OutboundMessage
    assert second.ok
    contents = [m["text"]["content"] for m in api.sent(OPENID)]
    assert "".join(contents) == render(out) and len(contents) == len(split_utf8(render(out)))
    assert contents[-1].endswith("1. 满意")


async def test_blank_or_foreign_recipient_is_permanent(wx: WeChatConnector, api: FakeWeChatApi) -> None:
    assert (await wx.send(reply("   \n "))).permanent
    bad = OutboundMessage(channel=Channel.WECHAT, conversation_key="not an openid",
                          recipient=CustomerRef(channel=Channel.WECHAT, external_id="x"), text="hi")
    assert (await wx.send(bad)).permanent
    assert api.send_calls == []
