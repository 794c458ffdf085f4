"""The email channel end to end against real servers on loopback: Dovecot (IMAP) and aiosmtpd (SMTP).

Customer mail is put in the shop's mailbox with IMAP APPEND, exactly where a mail server would deliver
it; the product (``serve_live``: poller, bot and delivery workers, real Redis and SQLite) picks it up
and answers by SMTP. Nothing of ours is faked. The poll interval is an hour, so every pickup after
start-up proves IDLE woke the poller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from mail_servers import Mailbox, SmtpServer
from sqlalchemy import select
from tests_helpers import eventually, serve_live

from connectors.email import EmailConnector, SmtpSettings
from gateway.config import Settings
from gateway.db.schema import messages
from gateway.email_poller import EmailPoller, ImapMailbox, ImapSettings
from gateway.email_threads import RedisEmailThreads
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder
from ticketing.escalation import EscalationReason

SHOP = "service@shop.example"
CUSTOMER = "wang.wei@example.com"
QUESTION = "付款后几天发货？"


def customer_mail(body: str = QUESTION, *, sender: str = f"王伟 <{CUSTOMER}>", subject: str = "发货时间",
                  message_id: str | None = None, date: str = "Fri, 01 Mar 2024 18:30:00 +0800",
                  **headers: str) -> tuple[bytes, str]:
    """A customer's mail as their client would store it, and its Message-ID."""
    msg = EmailMessage()
    mid = message_id or make_msgid(domain="example.com")
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, SHOP, subject, mid
    msg["Date"] = date
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(), mid


@pytest.fixture
def email_settings(settings: Settings, mailbox: Mailbox, smtp: SmtpServer) -> Settings:
    return settings.with_(
        email_address=SHOP, email_imap_host=mailbox.host, email_imap_port=mailbox.port,
        email_imap_user=mailbox.user, email_imap_password=mailbox.password, email_imap_ssl=False,
        email_smtp_host=smtp.host, email_smtp_port=smtp.port, email_smtp_user=None, email_smtp_tls="none",
        email_poll_interval_s=3600.0, email_token_secret="test-email-secret",
    )


async def append(box: Mailbox, raw: bytes, folder: str = "INBOX") -> None:
    await asyncio.to_thread(box.append, raw, folder)


async def cursor_ready(rt: Runtime, s: Settings) -> bool:
    """The poller finished its first pass (from here on, only IDLE or the hour-long poll can wake it)."""
    mailbox_id = f"{s.email_imap_user}@{s.email_imap_host}:{s.email_imap_port}/{s.email_imap_folder}"
    return bool(await rt.services.redis.exists(rt.services.keys.email_cursor(mailbox_id)))


async def mails(smtp: SmtpServer, n: int) -> list[EmailMessage]:
    await eventually(lambda: len(smtp.recorder.mails) >= n, timeout=30)
    return [m for _, _, m in smtp.recorder.mails]


@pytest.fixture
async def live_email(email_settings: Settings, embedder: Embedder, redis: object) -> AsyncIterator[Runtime]:
    async with serve_live(email_settings, embedder) as (rt, _client):
        await eventually(lambda: cursor_ready(rt, email_settings), timeout=30)
        yield rt


def token_of(reply: EmailMessage) -> str:
    reply_to = str(reply["Reply-To"])
    assert reply_to.startswith("service+") and reply_to.endswith("@shop.example")
    return reply_to.removeprefix("service+").removesuffix("@shop.example")


async def test_mail_answered_by_smtp_and_reply_threads_back(
    live_email: Runtime, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    rt = live_email
    raw, first_id = customer_mail()
    await append(mailbox, raw)
    [answer] = await mails(smtp, 1)
    sender, rcpts, _ = smtp.recorder.mails[0]
    assert (sender, rcpts) == (SHOP, [CUSTOMER])
    token = token_of(answer)
    assert str(answer["Message-ID"]).startswith(f"<{token}.") and str(answer["Message-ID"]).endswith("@shop.example>")
    assert str(answer["In-Reply-To"]) == first_id
    assert str(answer["References"]).split() == [first_id]
    assert str(answer["Subject"]) == "Re: 发货时间"
    assert str(answer["Auto-Submitted"]) == "auto-replied"
    assert "48小时" in answer.get_content()  # the knowledge base's shipping answer, in Chinese, intact
    conv = f"email:{token}"
    assert [(line.direction, line.author) for line in await rt.services.conversations.transcript(conv)] == [
        ("in", "customer"), ("out", "bot")]
    await eventually(lambda: asyncio.to_thread(lambda: b"\\Seen" in mailbox.flags()[1]))

    # The customer answers from their client: To is the shop (not the reply+ address), so only
    # In-Reply-To carries the thread; the quoted history must not reach the bot.
    body = f"那现货一般多久发出？\n\n在 2024年3月1日 19:00，客服 <{SHOP}> 写道：\n> {answer.get_content()[:40]}"
    raw2, second_id = customer_mail(body, subject=f"Re: {answer['Subject']}", date="Fri, 01 Mar 2024 19:30:00 +0800",
                                    In_Reply_To=str(answer["Message-ID"]),
                                    References=f"{answer['References']} {answer['Message-ID']}")
    await append(mailbox, raw2)
    second = (await mails(smtp, 2))[1]
    assert token_of(second) == token
    assert str(second["In-Reply-To"]) == second_id
    assert str(second["References"]).split() == [first_id, str(answer["Message-ID"]), second_id]
    lines = await rt.services.conversations.transcript(conv)  # ordered by the customers' Date headers
    assert sorted((line.direction, line.author) for line in lines) == [("in", "customer")] * 2 + [("out", "bot")] * 2
    assert [line.text for line in lines if line.direction == "in"][1] == "那现货一般多久发出？"


async def test_auto_reply_and_bounce_are_stored_never_answered(
    live_email: Runtime, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    rt = live_email
    raw, _ = customer_mail()
    await append(mailbox, raw)
    [answer] = await mails(smtp, 1)
    conv = f"email:{token_of(answer)}"
    # An out-of-office answering our reply: it threads into the conversation and must not be answered
    # (answering it would start a mail loop between two robots).
    ooo, _ = customer_mail("我正在休假，1月5日回来。", subject=f"自动回复: {answer['Subject']}",
                           In_Reply_To=str(answer["Message-ID"]), Auto_Submitted="auto-replied")
    await append(mailbox, ooo)
    lines = await eventually(lambda: _with_text(rt, conv, "[自动回复"), timeout=30)
    assert sorted(line.direction for line in lines) == ["in", "in", "out"]  # stored, nothing sent back
    assert await rt.services.conversations.state(conv) == "bot"  # and no ticket for an out-of-office

    # Our reply bounced (the DSN returns it): stored in the same conversation, surfaced to an agent.
    dsn = _dsn(smtp.recorder.mails[0][2].as_bytes())
    await append(mailbox, dsn)
    lines = await eventually(lambda: _with_text(rt, conv, "退信"), timeout=30)
    assert sorted(line.direction for line in lines) == ["in", "in", "in", "out"]
    [bounce] = [line for line in lines if line.text.startswith("退信")]
    assert CUSTOMER in bounce.text and "5.1.1" in bounce.text
    ticket = await rt.services.tickets.open_ticket(conv)
    assert ticket is not None and ticket.reason == "channel_failure" and CUSTOMER in ticket.summary
    # The agent's transcript says why the bot kept quiet (the console shows it as a badge).
    rows = await rt.services.conversations.transcript_with_sentiment(conv)
    assert sorted(str(r["automated"]) for r in rows if r["direction"] == "in") == ["None", "auto_reply", "bounce"]

    # A mailing list mail starts no conversation the bot answers either.
    news, news_id = customer_mail("本周特惠", sender="news@deals.example", subject="特惠", Precedence="bulk",
                                  List_Unsubscribe="<mailto:unsub@deals.example>")
    await append(mailbox, news)
    news_conv = await eventually(lambda: _stored(rt, news_id), timeout=30)
    assert [line.direction for line in await rt.services.conversations.transcript(news_conv)] == ["in"]
    assert len(smtp.recorder.mails) == 1


async def _with_text(rt: Runtime, conv: str, needle: str) -> list[object] | None:
    lines = await rt.services.conversations.transcript(conv)
    return lines if any(needle in line.text for line in lines) else None  # type: ignore[return-value]


async def _stored(rt: Runtime, external_id: str) -> str | None:
    """The conversation a mail was stored in, or None."""
    async with rt.services.engine.connect() as conn:
        found = await conn.scalar(select(messages.c.conversation_id).where(messages.c.external_id == external_id))
    return str(found) if found else None


def _dsn(returned: bytes) -> bytes:
    return (b"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
            b"To: service@shop.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            b"Message-ID: <dsn-" + uuid.uuid4().hex.encode() + b"@mx.example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
            b"Final-Recipient: rfc822; " + CUSTOMER.encode() + b"\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + returned + b"\r\n--B--\r\n")


async def test_ticket_number_and_own_references_thread(
    live_email: Runtime, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    rt = live_email
    raw, first_id = customer_mail()
    await append(mailbox, raw)
    [answer] = await mails(smtp, 1)
    conv = f"email:{token_of(answer)}"
    esc = await rt.services.tickets.escalate(conv, EscalationReason.ASKED_FOR_HUMAN, summary="needs a human",
                                             now=rt.services.clock())
    # A new mail (no In-Reply-To, to the plain shop address) naming the ticket: same conversation.
    by_ticket, ticket_mid = customer_mail("快递到了，但是少了一件", subject=f"关于工单 [#{esc.ticket.id}]")
    # A mail that only references the customer's own first mail (a reply to their sent copy).
    by_refs, refs_mid = customer_mail("补充：订单号 12345", subject="补充", References=first_id)
    # The same ticket number from someone else must not enter the conversation.
    stranger, stranger_mid = customer_mail("我也想问", sender="mallory@evil.example",
                                           subject=f"关于工单 [#{esc.ticket.id}]")
    for m in (by_ticket, by_refs, stranger):
        await append(mailbox, m)
    for mid in (ticket_mid, refs_mid, stranger_mid):
        await eventually(functools.partial(_stored, rt, mid), timeout=30)
    assert await _stored(rt, ticket_mid) == conv
    assert await _stored(rt, refs_mid) == conv
    assert await _stored(rt, stranger_mid) not in (None, conv)


async def test_restart_continues_from_the_cursor(
    email_settings: Settings, embedder: Embedder, redis: object, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    raw_a, mid_a = customer_mail()
    async with serve_live(email_settings, embedder) as (rt, _):
        await eventually(lambda: cursor_ready(rt, email_settings), timeout=30)
        await append(mailbox, raw_a)
        await mails(smtp, 1)
        keys = rt.services.keys
    # While we are down: mail A loses its \Seen flag and its dedupe marker, so only the cursor stands
    # between it and a second answer; mail B arrives.
    def unsee() -> None:
        with mailbox.client() as c:
            c.select_folder("INBOX")
            c.remove_flags([1], [b"\\Seen"])

    await asyncio.to_thread(unsee)
    async with serve_live(email_settings, embedder) as (rt, _):
        await rt.services.redis.delete(keys.dedupe("email", mid_a))
        raw_b, _mid_b = customer_mail("退货地址是哪里？", subject="退货")
        await append(mailbox, raw_b)
        await mails(smtp, 2)
        # Had A been fetched again, it would have been ingested before B (UID order) and its dedupe
        # marker would exist again.
        assert not await rt.services.redis.exists(keys.dedupe("email", mid_a))
        assert await rt.services.redis.exists(keys.dedupe("email", _mid_b))
        await eventually(lambda: asyncio.to_thread(lambda: b"\\Seen" in mailbox.flags()[2]))
        assert b"\\Seen" not in (await asyncio.to_thread(mailbox.flags))[1]  # A was left alone
    assert [rc for _, rc, _ in smtp.recorder.mails] == [[CUSTOMER], [CUSTOMER]]
    assert str(smtp.recorder.mails[0][2]["In-Reply-To"]) == mid_a


# ---- the poller on its own ----------------------------------------------------------------------

def _poller(rt: Runtime, box: Mailbox, *, folder: str = "INBOX", idle: bool = True) -> EmailPoller:
    connector = EmailConnector(address=SHOP, token_secret="test-email-secret",
                               smtp=SmtpSettings(host="127.0.0.1", port=25, tls="none"))
    imap = ImapSettings(host=box.host, port=box.port, user=box.user, password=box.password, ssl=False,
                        folder=folder, poll_interval_s=0.2, idle=idle)
    return EmailPoller(rt.services, connector, RedisEmailThreads(rt.services.redis, rt.services.keys), imap)


async def _stream_ids(rt: Runtime) -> list[str]:
    from gateway.models import InboundMessage
    from gateway.streams import read_entries

    entries = await read_entries(rt.services.redis, rt.services.keys.inbound, "0-0", count=1000)
    return [InboundMessage.model_validate_json(f[b"m"]).external_message_id for _, f in entries]


async def test_uidvalidity_change_resyncs_without_duplicates(runtime: Runtime, mailbox: Mailbox) -> None:
    poller = _poller(runtime, mailbox, folder="Support")
    raw_a, mid_a = customer_mail()
    await asyncio.to_thread(mailbox.recreate, "Support")
    await append(mailbox, raw_a, "Support")
    box = ImapMailbox(poller.imap)
    await asyncio.to_thread(box.open)
    try:
        assert await poller.sync(box) == 1
        assert await poller.sync(box) == 0  # nothing new: the cursor holds
        first_validity = box.uidvalidity
    finally:
        await asyncio.to_thread(box.close)
    # The folder is rebuilt (a server migration): new UIDVALIDITY, A delivered again, B is new.
    await asyncio.to_thread(mailbox.recreate, "Support")
    raw_b, mid_b = customer_mail("还有发票吗？")
    await append(mailbox, raw_a, "Support")
    await append(mailbox, raw_b, "Support")
    box = ImapMailbox(poller.imap)
    await asyncio.to_thread(box.open)
    try:
        assert box.uidvalidity != first_validity
        assert await poller.sync(box) == 2
    finally:
        await asyncio.to_thread(box.close)
    assert await _stream_ids(runtime) == [mid_a, mid_b]  # A deduplicated by its Message-ID
    cursor = await runtime.services.redis.hgetall(poller.cursor_key)
    assert int(cursor[b"uidvalidity"]) == box.uidvalidity and int(cursor[b"last_uid"]) == 2


async def test_polling_without_idle_and_junk_to_dead_letters(runtime: Runtime, mailbox: Mailbox) -> None:
    poller = _poller(runtime, mailbox, idle=False)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await eventually(lambda: runtime.services.redis.exists(poller.cursor_key), timeout=30)
        await append(mailbox, b"Subject: no sender at all\r\n\r\nhello\r\n")
        raw, mid = customer_mail()
        await append(mailbox, raw)
        await eventually(lambda: _stream_ids_equal(runtime, [mid]), timeout=30)
        keys = runtime.services.keys
        dead_letters: Any = await runtime.services.redis.xrange(keys.dead_letter(keys.inbound))
        [(_, dead)] = dead_letters
        assert b"no sender" in dead[b"error"] and dead[b"source_id"].endswith(b":1")
        assert b"Subject: no sender at all" in dead[b"raw"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _stream_ids_equal(rt: Runtime, ids: list[str]) -> bool:
    return await _stream_ids(rt) == ids


async def test_mail_announced_on_another_response_is_not_lost(mailbox: Mailbox) -> None:
    """Regression (CI flake): mail that lands while a command runs is announced (EXISTS) on that
    command's response, and IDLE never announces it again; the poller went idle for its whole poll
    interval with the mail unread. Any announcement since the last sync must count."""
    box = ImapMailbox(ImapSettings(host=mailbox.host, port=mailbox.port, user=mailbox.user,
                                   password=mailbox.password, ssl=False, timeout_s=10))
    await asyncio.to_thread(box.open)
    try:
        assert not await asyncio.to_thread(box.mail_announced)  # SELECT's count is no news
        await append(mailbox, customer_mail()[0])
        await asyncio.to_thread(box.uids_after, 10**6)  # any command picks up the announcement
        assert await asyncio.to_thread(box.mail_announced)
        assert not await asyncio.to_thread(box.mail_announced)  # read once

        await append(mailbox, customer_mail()[0])
        await asyncio.to_thread(box.uids_after, 10**6)
        # Left unread, the announcement still wakes IDLE at once instead of after the interval.
        assert await asyncio.to_thread(box.idle_wait, 20, lambda: False)
    finally:
        await asyncio.to_thread(box.close)


async def test_one_poller_per_mailbox_and_takeover(runtime: Runtime, mailbox: Mailbox) -> None:
    first, second = _poller(runtime, mailbox), _poller(runtime, mailbox)
    first.lock_ttl_ms = second.lock_ttl_ms = 1000
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    task_first = asyncio.create_task(first.run(stop_first))
    await eventually(lambda: runtime.services.redis.exists(first.cursor_key), timeout=30)
    holder = await runtime.services.redis.get(first.lock_key)
    task_second = asyncio.create_task(second.run(stop_second))
    try:
        raw, mid = customer_mail()
        await append(mailbox, raw)
        await eventually(lambda: _stream_ids_equal(runtime, [mid]), timeout=30)
        assert await runtime.services.redis.get(first.lock_key) == holder  # the first kept the mailbox
        stop_first.set()
        await asyncio.wait_for(task_first, 10)
        raw2, mid2 = customer_mail("第二封")
        await append(mailbox, raw2)
        await eventually(lambda: _stream_ids_equal(runtime, [mid, mid2]), timeout=30)  # the second took over
        assert await runtime.services.redis.get(first.lock_key) not in (None, holder)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(task_first, task_second)


async def test_bad_password_never_crashes_the_poller(
    runtime: Runtime, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    poller = _poller(runtime, Mailbox(mailbox.host, mailbox.port, mailbox.user, "wrong"))
    poller.max_backoff_s = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    with caplog.at_level(logging.WARNING, logger="gateway.email_poller"):
        await eventually(lambda: sum("reconnecting" in r.getMessage() for r in caplog.records) >= 3, timeout=30)
    assert not task.done()  # failed logins are retried with backoff, never raised
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not await runtime.services.redis.exists(poller.cursor_key)
    assert not await runtime.services.redis.exists(poller.lock_key)  # released between attempts


async def test_idle_wakes_the_poller(runtime: Runtime, mailbox: Mailbox) -> None:
    poller = _poller(runtime, mailbox)
    poller.imap = ImapSettings(**{**{f: getattr(poller.imap, f) for f in poller.imap.__dataclass_fields__},
                                  "poll_interval_s": 3600.0})
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await eventually(lambda: runtime.services.redis.exists(poller.cursor_key), timeout=30)
        raw, mid = customer_mail()
        await append(mailbox, raw)  # only the server's IDLE push can wake a poller that polls hourly
        await eventually(lambda: _stream_ids_equal(runtime, [mid]), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
