"""Bot v0 through the real worker: answers from the demo knowledge base, escalates what it can't."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.replies import HUMAN_FOLLOW_UP
from bot.retrieval_bot import RetrievalBot
from bot.worker import BotWorker
from gateway.db.schema import messages
from gateway.delivery import DeliveryWorker
from gateway.models import Channel, ConversationState, CustomerRef, InboundMessage, utcnow
from gateway.runtime import Runtime


def worker(rt: Runtime) -> BotWorker:
    s = rt.services
    return BotWorker(redis=s.redis, keys=s.keys, bus=s.bus, conversations=s.conversations,
                     tickets=s.tickets, bot=RetrievalBot(s.kb), clock=utcnow)


def webchat(text: str, n: int = 1, visitor: str = "v_testvisitor0000000001") -> InboundMessage:
    return InboundMessage.build(
        channel=Channel.WEBCHAT, external_message_id=f"{visitor}:{n:08d}", conversation_key=visitor,
        customer=CustomerRef(channel=Channel.WEBCHAT, external_id=visitor), text=text,
        sent_at=datetime.now(UTC),
    )


async def test_faq_answered_from_knowledge_base(runtime: Runtime) -> None:
    out = await worker(runtime).process(webchat("怎么退货?"))
    article = runtime.services.kb.article("return-how")
    assert out is not None and article is not None
    assert out.text == article.answer and out.author == "bot"
    assert await runtime.services.tickets.list_open() == []
    assert await runtime.services.redis.xlen(runtime.services.keys.outbound) == 1


async def test_english_question_gets_english_article(runtime: Runtime) -> None:
    out = await worker(runtime).process(webchat("How long does a refund take?"))
    assert out is not None and out.metadata["article_id"] == "refund-time-en"


async def test_unanswerable_question_becomes_ticket_and_human_follow_up(runtime: Runtime) -> None:
    w = worker(runtime)
    msg = webchat("你们老板的星座是什么，适合和双子座做朋友吗")
    out = await w.process(msg)
    assert out is not None and out.text == HUMAN_FOLLOW_UP["zh"]
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.conversation_id == msg.conversation_id
    assert ticket.reason in {"out_of_scope", "low_confidence"}
    assert ticket.summary == msg.text
    assert await runtime.services.conversations.state(msg.conversation_id) == ConversationState.QUEUED
    # The conversation now belongs to a human: the bot stays silent, the message is kept.
    assert await w.process(webchat("怎么退货?", n=2)) is None
    lines = await runtime.services.conversations.transcript(msg.conversation_id)
    assert [line.author for line in lines] == ["customer", "bot", "customer"]


async def test_request_for_human_escalates(runtime: Runtime) -> None:
    out = await worker(runtime).process(webchat("转人工"))
    assert out is not None
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.reason == "asked_for_human"


async def test_redelivered_entry_is_answered_once(runtime: Runtime) -> None:
    s = runtime.services
    w = worker(runtime)
    msg = webchat("发票怎么开")
    await w.process(msg)
    await w.process(msg)  # e.g. a reclaimed entry whose first run died before XACK
    async with s.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.direction))).scalars().all()
    assert sorted(rows) == ["in", "out"]
    delivery = DeliveryWorker(redis=s.redis, keys=s.keys, connectors=s.connectors,
                              tickets=s.tickets, clock=utcnow)
    entries = await s.redis.xrange(s.keys.outbound)
    assert len(entries) == 2  # both runs queued the same reply id ...
    results = [await delivery.handle(eid.decode(), fields) for eid, fields in entries]
    assert results == [None, None]
    outbox = await s.redis.xrange(s.keys.webchat_outbox(msg.conversation_key))
    assert len(outbox) == 1  # ... and the customer receives it once
