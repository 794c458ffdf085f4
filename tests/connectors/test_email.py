"""Email connector: parsing, threading, machine-mail detection, reply headers, SMTP outcomes.

Parsing is pure and tested on mails built with the stdlib; ``send`` talks to a real SMTP server on
loopback (aiosmtpd, ``tests/mail_servers.py``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from mail_servers import SmtpServer, smtp_server

from connectors.base import PayloadError
from connectors.email import EmailConnector, SmtpSettings, ThreadContext
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply
from gateway.redis_conn import free_port

SHOP = "Service@Shop.example"
SECRET = "test-email-token-secret"
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TOKEN_RE = re.compile(r"[a-z2-7]{26}")


class StaticThreads:
    def __init__(self, context: ThreadContext | None = None, fail: bool = False) -> None:
        self.context = context
        self.fail = fail
        self.asked: list[tuple[str, str | None]] = []

    async def read(self, conversation_key: str, inbound_message_id: str | None) -> ThreadContext | None:
        self.asked.append((conversation_key, inbound_message_id))
        if self.fail:
            raise ConnectionError("redis is down")
        return self.context


def conn(port: int = 25, threads: StaticThreads | None = None, secret: str = SECRET) -> EmailConnector:
    return EmailConnector(address=SHOP, token_secret=secret, threads=threads,
                          smtp=SmtpSettings(host="127.0.0.1", port=port, tls="none", timeout_s=5))


def mail(body: str = "我的订单 12345 什么时候发货？", *, html: str | None = None, **headers: str) -> bytes:
    msg = EmailMessage(policy=policy.default)
    defaults = {"From": "王伟 <Wang.Wei@Example.COM>", "To": SHOP, "Subject": "订单问题",
                "Message-ID": "<cust-1@example.com>", "Date": "Fri, 01 Mar 2024 18:30:00 +0800"}
    for name, value in {**defaults, **{k.replace("_", "-"): v for k, v in headers.items()}}.items():
        if value:
            msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def our_id(c: EmailConnector, token: str, n: str = "out_x") -> str:
    return c.message_id(token, n)


# ---- identity, dedupe, dates --------------------------------------------------------------------

def test_customer_external_id_and_new_token() -> None:
    c = conn()
    parsed = c.parse_mail(mail(), now=NOW)
    m = parsed.message
    assert m.channel is Channel.EMAIL
    assert m.customer.external_id == "wang.wei@example.com"
    assert m.customer.display_name == "王伟"
    assert m.external_message_id == "<cust-1@example.com>"
    assert parsed.threaded_by == "new" and TOKEN_RE.fullmatch(m.conversation_key)
    assert m.conversation_key == c.parse_mail(mail(), now=NOW).message.conversation_key  # redelivery: same
    assert m.conversation_key != conn(secret="another-secret").parse_mail(mail()).message.conversation_key
    assert m.sent_at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    assert m.automated is None


def test_missing_message_id_falls_back_to_a_hash_of_the_bytes() -> None:
    raw = mail(Message_ID="")
    first, again = conn().parse_mail(raw).message, conn().parse_mail(raw).message
    assert first.external_message_id.startswith("sha256:") and first.external_message_id == again.external_message_id
    assert conn().parse_mail(mail("other", Message_ID="")).message.external_message_id != first.external_message_id


def test_missing_or_broken_date_uses_now() -> None:
    assert conn().parse_mail(mail(Date=""), now=NOW).message.sent_at == NOW
    assert conn().parse_mail(mail(Date="not a date"), now=NOW).message.sent_at == NOW


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"this is not a mail at all", b"Subject: no sender\r\n\r\nhi"])
def test_junk_is_a_payload_error(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        conn().parse_mail(raw)


# ---- threading ----------------------------------------------------------------------------------

TOKEN = "abcdefghijklmnopqrstuvwxyz"


def _threading_cases() -> list[tuple[str, dict[str, str], str, str | None]]:
    c = conn()
    ours = our_id(c, TOKEN)
    older = our_id(c, "zyxwvutsrqponmlkjihgfedcba", "out_old")
    return [
        # (case, headers, threaded_by, token or None for a new one)
        ("plus address in To", {"To": f"service+{TOKEN}@shop.example"}, "address", TOKEN),
        ("plus address in Cc", {"Cc": f"Shop <service+{TOKEN}@Shop.Example>"}, "address", TOKEN),
        ("upper-cased by a client", {"To": f"SERVICE+{TOKEN.upper()}@SHOP.EXAMPLE"}, "address", TOKEN),
        ("reply+ local part", {"To": f"reply+{TOKEN}@shop.example"}, "address", TOKEN),
        ("Delivered-To", {"Delivered_To": f"service+{TOKEN}@shop.example"}, "address", TOKEN),
        ("other domain ignored", {"To": f"service+{TOKEN}@evil.example"}, "new", None),
        ("not a token", {"To": "service+promo@shop.example"}, "new", None),
        ("In-Reply-To ours", {"In_Reply_To": ours}, "our_message_id", TOKEN),
        ("References ours", {"In_Reply_To": "<x@gmail.com>", "References": f"{ours} <x@gmail.com>"},
         "our_message_id", TOKEN),
        ("newest of ours wins", {"In_Reply_To": ours, "References": f"{older} {ours}"}, "our_message_id", TOKEN),
        ("address beats message id", {"To": f"service+{TOKEN}@shop.example", "In_Reply_To": older},
         "address", TOKEN),
        ("foreign ids only", {"In_Reply_To": "<a@gmail.com>", "References": "<b@gmail.com> <a@gmail.com>"},
         "new", None),
        ("look-alike id on another domain", {"In_Reply_To": f"<{TOKEN}.0123456789abcdef0123@evil.example>"},
         "new", None),
    ]


@pytest.mark.parametrize(("headers", "threaded_by", "token"), [c[1:] for c in _threading_cases()],
                         ids=[c[0] for c in _threading_cases()])
def test_threading(headers: dict[str, str], threaded_by: str, token: str | None) -> None:
    parsed = conn().parse_mail(mail(**headers))
    assert parsed.threaded_by == threaded_by
    if token is not None:
        assert parsed.message.conversation_key == token
    else:
        assert parsed.message.conversation_key == conn().new_token("<cust-1@example.com>")


def test_hints_for_the_gateway_lookups() -> None:
    parsed = conn().parse_mail(mail(Subject="Re: 订单问题 [#42]", In_Reply_To="<c@x.com>",
                                    References="<a@x.com> <b@x.com> <c@x.com>"))
    assert parsed.ticket_number == 42
    assert parsed.references == ("<c@x.com>", "<b@x.com>", "<a@x.com>")  # newest first
    assert parsed.context == ThreadContext(subject="Re: 订单问题 [#42]", parent_message_id="<cust-1@example.com>",
                                           parent_references=("<a@x.com>", "<b@x.com>", "<c@x.com>"))
    only_irt = conn().parse_mail(mail(In_Reply_To="<c@x.com>", Reply_To="Boss <boss@example.com>")).context
    assert only_irt.parent_references == ("<c@x.com>",) and only_irt.reply_to == "boss@example.com"


# ---- machine mail -------------------------------------------------------------------------------

AUTOMATED_CASES = [
    ("person", {}, None),
    ("auto-submitted no", {"Auto-Submitted": "no"}, None),
    ("auto-replied", {"Auto-Submitted": "auto-replied"}, "auto_reply"),
    ("auto-generated", {"Auto-Submitted": "auto-generated"}, "auto_reply"),
    ("zimbra vacation", {"Auto-Submitted": "auto-replied (vacation)"}, "auto_reply"),
    ("x-autoreply", {"X-Autoreply": "yes"}, "auto_reply"),
    ("x-autorespond", {"X-Autorespond": "Out of office"}, "auto_reply"),
    ("exchange suppress all", {"X-Auto-Response-Suppress": "All"}, "auto_reply"),
    ("precedence auto_reply", {"Precedence": "auto_reply"}, "auto_reply"),
    ("precedence bulk", {"Precedence": "bulk"}, "bulk"),
    ("precedence list", {"Precedence": "list"}, "bulk"),
    ("precedence junk", {"Precedence": "junk"}, "bulk"),
    ("list-id", {"List-Id": "<news.shop.example>"}, "bulk"),
    ("list-unsubscribe", {"List-Unsubscribe": "<mailto:unsub@news.example>"}, "bulk"),
    ("exim failed recipients", {"X-Failed-Recipients": "gone@example.com"}, "bounce"),
    ("mailer-daemon", {"From": "Mail Delivery System <MAILER-DAEMON@mx.example.com>"}, "bounce"),
    ("postmaster", {"From": "postmaster@mx.example.com"}, "bounce"),
    ("null return path", {"Return-Path": "<>"}, "bounce"),
    ("our own address", {"From": "service@shop.example"}, "loop"),
    ("x-loop", {"X-Loop": "service@shop.example"}, "loop"),
]


@pytest.mark.parametrize(("headers", "expected"), [c[1:] for c in AUTOMATED_CASES],
                         ids=[c[0] for c in AUTOMATED_CASES])
def test_machine_mail_is_marked(headers: dict[str, str], expected: str | None) -> None:
    raw = mail(**{k.replace("-", "_"): v for k, v in headers.items()})
    assert conn().parse_mail(raw).message.automated == expected


def test_our_own_message_id_looping_back() -> None:
    c = conn()
    assert c.parse_mail(mail(Message_ID=our_id(c, TOKEN))).message.automated == "loop"


def _dsn(original: bytes, *, headers_only: bool = False) -> bytes:
    """A Postfix-style delivery status notification (RFC 3464) returning ``original``."""
    returned = original.split(b"\r\n\r\n")[0] + b"\r\n" if headers_only else original
    kind = b"text/rfc822-headers" if headers_only else b"message/rfc822"
    return (b"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.shop.example>\r\n"
            b"To: service@shop.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            b"Message-ID: <dsn-1@mx.shop.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUND\"\r\n\r\n"
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message "
            b"could not be delivered.\r\n"
            b"--BOUND\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.shop.example\r\n"
            b"\r\nFinal-Recipient: rfc822; Gone@Example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            b"--BOUND\r\nContent-Type: " + kind + b"\r\n\r\n" + returned + b"\r\n--BOUND--\r\n")


@pytest.mark.parametrize("headers_only", [False, True], ids=["message/rfc822", "text/rfc822-headers"])
def test_bounce_of_our_reply_threads_into_its_conversation(headers_only: bool) -> None:
    c = conn()
    out = OutboundMessage(channel=Channel.EMAIL, conversation_key=TOKEN, text="您好，已发货。",
                          recipient=CustomerRef(channel=Channel.EMAIL, external_id="gone@example.com"))
    ours = c.build_reply(out, None).as_bytes()
    parsed = c.parse_mail(_dsn(ours, headers_only=headers_only))
    m = parsed.message
    assert m.automated == "bounce"
    assert (parsed.threaded_by, m.conversation_key) == ("our_message_id", TOKEN)
    assert "gone@example.com" in m.text and "5.1.1" in m.text and m.text.startswith("退信")
    assert m.raw["bounce"]["failed_recipients"] == ["gone@example.com"]
    assert m.raw["bounce"]["original_message_id"] == c.message_id(TOKEN, out.message_id)


# ---- what the bot reads, attachments ------------------------------------------------------------

def test_first_mail_text_includes_the_subject_and_drops_the_signature() -> None:
    m = conn().parse_mail(mail("请问什么时候发货？\n\n-- \n王伟\n13800000000")).message
    assert m.text == "订单问题\n\n请问什么时候发货？"
    assert "13800000000" in m.raw["body"]  # the full body is kept for agents


def test_reply_text_is_only_the_new_words() -> None:
    body = "好的，谢谢\n\n在 2024年3月1日 10:00，客服 <service@shop.example> 写道：\n> 您的订单已发货"
    m = conn().parse_mail(mail(body, Subject="Re: 订单问题", In_Reply_To="<x@shop.example>")).message
    assert m.text == "好的，谢谢"


def test_empty_body_gives_the_subject() -> None:
    assert conn().parse_mail(mail("\n", Subject="Re: 退货地址？")).message.text == "退货地址？"


def test_html_only_mail() -> None:
    msg = EmailMessage(policy=policy.default)
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", SHOP, "Re: 发票"
    msg["In-Reply-To"] = "<x@shop.example>"
    msg.set_content("<p>需要开<b>发票</b></p><blockquote>旧内容</blockquote>", subtype="html")
    assert conn().parse_mail(msg.as_bytes()).message.text == "需要开发票"


def test_gb2312_declared_mail_with_gbk_characters() -> None:
    text = "请问镕铁制品什么时候到？"  # 镕 is GBK, not GB2312: clients mislabel such mail all the time
    raw = (b"From: a@example.com\r\nTo: service@shop.example\r\nSubject: =?gb2312?B?"
           + base64.b64encode("咨询".encode("gb2312")) + b"?=\r\nMessage-ID: <gb@x>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(text.encode("gbk")) + b"\r\n")
    assert conn().parse_mail(raw).message.text == f"咨询\n\n{text}"


def test_alternative_prefers_plain_text() -> None:
    m = conn().parse_mail(mail("plain words", html="<p>html words</p>", Subject="Re: x",
                               In_Reply_To="<x@y>")).message
    assert m.text == "plain words" and m.attachments == ()


def test_attachments_are_references_with_imap_sections() -> None:
    msg = EmailMessage(policy=policy.default)
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@example.com", SHOP, "破损照片", "<att@x>"
    msg.set_content("见附件")
    msg.add_alternative("<p>见附件<img src='cid:photo'></p>", subtype="html")
    html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(b"\x89PNG fake image bytes" * 10, maintype="image", subtype="png", cid="<photo>")
    pdf = b"%PDF-1.4 " + b"x" * 5000
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="发票.pdf")
    m = conn().parse_mail(msg.as_bytes(), source="imap:7:42").message
    by_name = {a.mime_type: a for a in m.attachments}
    assert set(by_name) == {"image/png", "application/pdf"}
    assert by_name["application/pdf"].model_dump() == {"kind": "file", "ref": "imap:7:42:2", "name": "发票.pdf",
                                                       "mime_type": "application/pdf", "size": len(pdf)}
    assert by_name["image/png"].kind == "image" and by_name["image/png"].ref == "imap:7:42:1.2.2"
    dumped = m.model_dump_json()
    assert base64.b64encode(pdf[:30]).decode()[:20] not in dumped and "xxxxxxxxxx" not in dumped  # no bytes


# ---- replies ------------------------------------------------------------------------------------

def _out(**kw: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": "out_abc_0", "channel": Channel.EMAIL, "conversation_key": TOKEN, "text": "您好，订单已发货。",
        "recipient": CustomerRef(channel=Channel.EMAIL, external_id="wang.wei@example.com", display_name="王伟"),
        "in_reply_to": "in_123", "created_at": NOW, **kw}
    return OutboundMessage(**fields)


CTX = ThreadContext(subject="回复: 订单问题", parent_message_id="<m2@example.com>",
                    parent_references=("<m0@example.com>", "<m1@example.com>", "<m2@example.com>"))


def test_reply_headers() -> None:
    c = conn()
    reply = c.build_reply(_out(metadata={"ticket_id": 5}), CTX)
    assert reply["From"].addresses[0].addr_spec == "service@shop.example"
    assert str(reply["To"]) == "王伟 <wang.wei@example.com>"
    assert str(reply["Reply-To"]) == f"service+{TOKEN}@shop.example"
    assert str(reply["Subject"]) == "Re: 订单问题 [#5]"
    assert str(reply["Message-ID"]) == c.message_id(TOKEN, "out_abc_0")
    assert c.token_of_message_id(str(reply["Message-ID"])) == TOKEN
    assert str(reply["In-Reply-To"]) == "<m2@example.com>"
    assert str(reply["References"]).split() == ["<m0@example.com>", "<m1@example.com>", "<m2@example.com>"]
    assert str(reply["Auto-Submitted"]) == "auto-replied" and str(reply["X-Auto-Response-Suppress"]) == "All"
    assert reply["Content-Transfer-Encoding"] == "quoted-printable"
    assert reply.get_content_charset() == "utf-8"
    assert reply.get_content().strip() == "您好，订单已发货。"
    assert c.build_reply(_out(), CTX)["Message-ID"] == reply["Message-ID"]  # a resend keeps its id


@pytest.mark.parametrize(("author", "auto_submitted"), [("bot", "auto-replied"), ("system", "auto-generated"),
                                                        ("agent", None)])
def test_only_automatic_replies_say_so(author: str, auto_submitted: str | None) -> None:
    reply = conn().build_reply(_out(author=author), CTX)
    assert reply.get("Auto-Submitted") == auto_submitted
    assert (reply.get("X-Auto-Response-Suppress") == "All") is (auto_submitted is not None)


def test_references_from_in_reply_to_only_and_reply_to() -> None:
    ctx = ThreadContext(subject="Q", parent_message_id="<p@x>", parent_references=("<q@x>",), reply_to="boss@x.com")
    reply = conn().build_reply(_out(), ctx)
    assert str(reply["References"]).split() == ["<q@x>", "<p@x>"]
    assert str(reply["To"]) == "boss@x.com"


def test_reply_without_context_still_threads_by_token() -> None:
    reply = conn().build_reply(_out(quick_replies=(QuickReply(title="查物流", payload="track"),)), None)
    assert str(reply["Subject"]) == "Re: 您的咨询 / Your enquiry"
    assert "In-Reply-To" not in reply and "References" not in reply
    assert str(reply["Reply-To"]) == f"service+{TOKEN}@shop.example"
    assert reply.get_content().strip().endswith("1. 查物流")


def test_customer_reply_to_our_mail_threads_back() -> None:
    c = conn()
    ours = c.build_reply(_out(), CTX)
    answer = mail("好的", Subject=f"Re: {ours['Subject']}", In_Reply_To=str(ours["Message-ID"]),
                  References=f"{ours['References']} {ours['Message-ID']}", To=str(ours["Reply-To"]),
                  Message_ID="<cust-2@example.com>")
    parsed = c.parse_mail(answer)
    assert parsed.message.conversation_key == TOKEN and parsed.message.automated is None
    assert c.parse_mail(ours.as_bytes()).message.automated == "loop"  # our own reply fed back


# ---- SMTP ---------------------------------------------------------------------------------------

@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


async def test_send_over_smtp(smtp: SmtpServer) -> None:
    threads = StaticThreads(CTX)
    result = await conn(smtp.port, threads).send(_out())
    assert result.ok and result.external_ids == (conn().message_id(TOKEN, "out_abc_0"),)
    assert threads.asked == [(TOKEN, "in_123")]
    [(sender, rcpts, received)] = smtp.recorder.mails
    assert (sender, rcpts) == ("service@shop.example", ["wang.wei@example.com"])
    assert str(received["In-Reply-To"]) == "<m2@example.com>"
    assert received.get_content().strip() == "您好，订单已发货。"


@pytest.mark.parametrize(("reply", "permanent"), [("550 5.1.1 <wang.wei@example.com>: user unknown", True),
                                                  ("451 4.7.1 greylisted, try again later", False)])
async def test_refused_recipient(smtp: SmtpServer, reply: str, permanent: bool) -> None:
    smtp.recorder.refuse = reply
    result = await conn(smtp.port, StaticThreads(CTX)).send(_out())
    assert not result.ok and result.permanent is permanent
    assert (result.retry_after is None) is permanent
    assert reply.split()[0] in (result.error or "")


async def test_unreachable_server_is_retried() -> None:
    result = await conn(free_port(), StaticThreads(CTX)).send(_out())
    assert not result.ok and not result.permanent and result.retry_after


async def test_context_store_down_is_retried() -> None:
    result = await conn(free_port(), StaticThreads(fail=True)).send(_out())
    assert not result.ok and not result.permanent and result.retry_after and "redis is down" in (result.error or "")


@pytest.mark.parametrize(("kw", "why"), [({"conversation_key": "12345"}, "token"),
                                         ({"recipient": CustomerRef(channel=Channel.EMAIL, external_id="nobody")},
                                          "address")])
async def test_unsendable_is_permanent(kw: dict[str, Any], why: str) -> None:
    result = await conn(free_port(), StaticThreads(CTX)).send(_out(**kw))
    assert not result.ok and result.permanent and why in (result.error or "")


def test_thread_context_json_round_trip() -> None:
    assert ThreadContext.from_json(json.loads(json.dumps(CTX.to_json()))) == CTX
