"""What the bot reads of an email: quoted history and signatures stripped, HTML turned into text."""

from __future__ import annotations

import pytest

from connectors.email_text import (
    clean_subject,
    html_to_text,
    is_forward,
    is_reply,
    reply_subject,
    strip_reply,
    ticket_number,
)

STRIP_CASES = [
    # (case, mail body, what the bot should see)
    ("gmail english", "Where is my order 12345?\n\nOn Tue, 2 Jan 2024 at 10:00, Shop <s@shop.example> wrote:\n"
     "> Thanks for your order\n> Shop", "Where is my order 12345?"),
    ("gmail wrapped attribution", "Still waiting.\n\nOn Tue, 2 Jan 2024 at 10:00, Shop Support\n"
     "<support@shop.example> wrote:\n> earlier", "Still waiting."),
    ("apple mail english", "OK thanks\n\nOn Jan 2, 2024, at 10:00, Shop <s@shop.example> wrote:\n\n> hi",
     "OK thanks"),
    ("163 chinese attribution", "我的订单还没到\n\n在 2024-01-02 10:00:00，\"客服\" <s@shop.example> 写道：\n> 您好",
     "我的订单还没到"),
    ("gmail chinese attribution", "好的谢谢\n\n张三 <z@qq.com> 于2024年1月2日周二 10:00写道：\n> 原文", "好的谢谢"),
    ("apple mail chinese", "收到了\n\n2024年1月2日 10:00，客服 <s@shop.example> 写道：\n\n> 原文", "收到了"),
    ("traditional chinese", "謝謝\n\n在 2024年1月2日 上午10:00，客服 <s@shop.example> 寫道：\n> 原文", "謝謝"),
    ("outlook original message", "Please cancel.\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\n\nold",
     "Please cancel."),
    ("chinese original message", "请取消订单\n\n-----原始邮件-----\n发件人: 客服\n发送时间: 2024年1月2日\n\n旧内容",
     "请取消订单"),
    ("qq mail separator", "收到\n\n------------------&nbsp;原始邮件&nbsp;------------------\n"
     "发件人: \"客服\"<s@shop.example>;\n发送时间: 2024年1月2日(星期二) 上午10:00\n\n旧内容", "收到"),
    ("qq mail separator nbsp", "收到\n\n------------------\u00a0原始邮件\u00a0------------------\n发件人: 客服\n",
     "收到"),
    ("foxmail english separator", "ok\n\n------------------ Original ------------------\nFrom: x\nDate: y\n",
     "ok"),
    ("outlook chinese header block", "收到\n\n发件人: 客服 <s@shop.example>\n发送时间: 2024年1月2日 10:00\n"
     "收件人: me\n主题: 回复: 订单\n\n原文", "收到"),
    ("outlook web rule", "Thanks\n\n________________________________\nFrom: Shop <s@shop.example>\n"
     "Sent: Tuesday\nTo: me\n\nold", "Thanks"),
    ("outlook bold header", "Thanks\n\n*From:* Shop <s@shop.example>\n*Sent:* Tuesday\n\nold", "Thanks"),
    ("quoted lines interleaved", "answer one\n> question one\nanswer two\n>> deeper", "answer one\nanswer two"),
    ("rfc 3676 signature", "Where is it?\n\n-- \nJohn Smith\nACME Ltd\n+1 555 0100", "Where is it?"),
    ("iphone chinese", "请尽快发货\n\n发自我的iPhone", "请尽快发货"),
    ("huawei chinese", "请尽快发货\n\n发自我的华为手机", "请尽快发货"),
    ("netease master", "退货地址是？\n\n发自网易邮箱大师", "退货地址是？"),
    ("iphone english", "Please refund\n\nSent from my iPhone", "Please refund"),
    ("outlook mobile", "Please refund\n\nGet Outlook for Android", "Please refund"),
    ("signature then quote", "Where?\n\n发自我的iPhone\n\n在 2024年1月2日，客服 <s@shop.example> 写道：\n> 原文",
     "Where?"),
    ("forward keeps content", "see below\n\n---------- Forwarded message ---------\nFrom: A <a@b.example>\n"
     "Date: Mon\nSubject: x\nTo: me\n\nforwarded body", "see below\n\n---------- Forwarded message ---------\n"
     "From: A <a@b.example>\nDate: Mon\nSubject: x\nTo: me\n\nforwarded body"),
    ("prose with wrote stays", "My friend wrote a review of your shop and I liked it.",
     "My friend wrote a review of your shop and I liked it."),
    ("dashes mid-text stay", "Part one\n--\n" + "\n".join(f"line {i}" for i in range(20)),
     "Part one\n--\n" + "\n".join(f"line {i}" for i in range(20))),
    ("only a quote", "On Tue, 2 Jan 2024, Shop <s@shop.example> wrote:\n> q", ""),
    ("crlf and blank lines", "Line one\r\n\r\n\r\n\r\nLine two\r\n", "Line one\n\nLine two"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in STRIP_CASES], ids=[c[0] for c in STRIP_CASES])
def test_strip_reply(body: str, expected: str) -> None:
    assert strip_reply(body) == expected


def test_forwarded_mail_keeps_quotes_but_not_signature() -> None:
    body = "FYI\n\n> the supplier said it ships Monday\n\n-- \nWang Wei"
    assert strip_reply(body, forwarded=True) == "FYI\n\n> the supplier said it ships Monday"


HTML_CASES = [
    ("paragraphs and entities", "<p>你好&nbsp;世界</p><p>second &amp; last</p>", "你好 世界\n\nsecond & last"),
    ("line breaks", "<div>Line<br>two<br><br>three</div>", "Line\ntwo\n\nthree"),
    ("scripts styles head skipped", "<html><head><title>T</title><style>p{color:red}</style></head>"
     "<body><script>alert(1)</script><p>body</p></body></html>", "body"),
    ("blockquote becomes quote lines", "<p>new</p><blockquote>old<br>stuff</blockquote>", "new\n\n> old\n> stuff"),
    ("lists", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
    ("pre keeps lines", "<pre>a\n  b</pre>", "a\n  b"),
    ("table cells", "<table><tr><td>订单</td><td>12345</td></tr></table>", "订单 12345"),
    ("outlook reply marker", "<div>Thanks</div><div id=\"divRplyFwdMsg\"><b>From:</b> Shop</div><div>old</div>",
     "Thanks\n-----Original Message-----\nFrom: Shop\nold"),
    ("whitespace collapsed", "<p>  a \n\t b  </p>", "a b"),
    ("broken markup", "<p>unclosed <b>bold<div>next", "unclosed bold\nnext"),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in HTML_CASES], ids=[c[0] for c in HTML_CASES])
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_reply_is_stripped_like_text() -> None:
    html = ("<div dir=ltr>什么时候发货？</div><br><div class=gmail_quote><div class=gmail_attr>"
            "On Tue, 2 Jan 2024 at 10:00, Shop &lt;s@shop.example&gt; wrote:<br></div>"
            "<blockquote class=gmail_quote>您好，已收到</blockquote></div>")
    assert strip_reply(html_to_text(html)) == "什么时候发货？"
    outlook = "<p>请退款</p><div id=divRplyFwdMsg><b>发件人:</b> 客服</div><div>旧内容</div>"
    assert strip_reply(html_to_text(outlook)) == "请退款"


SUBJECT_CASES = [
    ("Re: 回复：RE: [#12] 订单问题", "订单问题", 12, True, False),
    ("Fwd: invoice", "invoice", None, False, True),
    ("转发: 发票", "发票", None, False, True),
    ("答复: 退货 [#7]", "退货", 7, True, False),
    ("AW: Lieferung", "Lieferung", None, True, False),
    ("Re[2]: question", "question", None, True, False),
    ("订单 [#3] 和 [#45]", "订单 和", 45, False, False),
    ("Where is my order?", "Where is my order?", None, False, False),
    ("", "", None, False, False),
]


@pytest.mark.parametrize(("subject", "clean", "ticket", "reply", "forward"), SUBJECT_CASES)
def test_subjects(subject: str, clean: str, ticket: int | None, reply: bool, forward: bool) -> None:
    assert clean_subject(subject) == clean
    assert ticket_number(subject) == ticket
    assert is_reply(subject) is reply
    assert is_forward(subject) is forward


@pytest.mark.parametrize(("original", "ticket", "expected"), [
    ("订单问题", None, "Re: 订单问题"),
    ("回复: 订单问题", 7, "Re: 订单问题 [#7]"),
    ("Re: Re: [#7] refund", 7, "Re: refund [#7]"),
    ("", None, "Re: 您的咨询 / Your enquiry"),
])
def test_reply_subject(original: str, ticket: int | None, expected: str) -> None:
    assert reply_subject(original, ticket) == expected
