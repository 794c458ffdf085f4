"""The store on both databases: schema == migrations, idempotent writes, escalation invariant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.articles import ArticleStore
from gateway.db.conversations import ConversationStore
from gateway.db.schema import messages, metadata, tickets
from gateway.models import Channel, ConversationState, CustomerRef, InboundMessage, OutboundMessage
from knowledge_index.article import Article, ArticleStatus
from ticketing.escalation import EscalationReason, TicketStore

NOW = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def inbound(ext: str, text: str = "你好") -> InboundMessage:
    return InboundMessage.build(
        channel=Channel.WEBCHAT, external_message_id=ext, conversation_key="v_abc",
        customer=CustomerRef(channel=Channel.WEBCHAT, external_id="v_abc", display_name="小王"),
        text=text, sent_at=NOW, raw={"note": "原始"},
    )


async def test_migrations_match_the_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert diff == []


async def test_inbound_recorded_once(engine: AsyncEngine) -> None:
    store = ConversationStore(engine)
    state, new = await store.record_inbound(inbound("1"))
    assert (state, new) == (ConversationState.BOT, True)
    state, new = await store.record_inbound(inbound("1"))
    assert (state, new) == (ConversationState.BOT, False)
    await store.record_inbound(inbound("2", "第二条"))
    lines = await store.transcript("webchat:v_abc")
    assert [line.text for line in lines] == ["你好", "第二条"]
    conv = await store.get("webchat:v_abc")
    assert conv is not None and conv["customer_name"] == "小王"


async def test_outbound_recorded_once(engine: AsyncEngine) -> None:
    store = ConversationStore(engine)
    msg = inbound("1")
    await store.record_inbound(msg)
    out = OutboundMessage(message_id="out_1", channel=msg.channel, conversation_key=msg.conversation_key,
                          recipient=msg.customer, text="您好")
    assert await store.record_outbound(out) is True
    assert await store.record_outbound(out) is False
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(messages)) == 2


async def test_escalation_opens_one_ticket_and_queues(engine: AsyncEngine) -> None:
    convs, store = ConversationStore(engine), TicketStore(engine)
    await convs.record_inbound(inbound("1", "我要投诉"))
    first = await store.escalate("webchat:v_abc", EscalationReason.OUT_OF_SCOPE, summary="我要投诉", now=NOW)
    again = await store.escalate("webchat:v_abc", EscalationReason.ASKED_FOR_HUMAN, summary="人呢", now=NOW)
    assert first.created and not again.created
    assert again.ticket.id == first.ticket.id and again.ticket.reason == "out_of_scope"
    assert await convs.state("webchat:v_abc") == ConversationState.QUEUED
    assert [t.id for t in await store.list_open()] == [first.ticket.id]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(tickets)) == 1


async def test_articles_crud(engine: AsyncEngine) -> None:
    store = ArticleStore(engine)
    art = Article(id="return-how", title="怎么退货？", questions=("如何退货",), answer="七天无理由",
                  tags=("returns",), language="zh", status=ArticleStatus.DRAFT, updated_at=NOW)
    saved = await store.upsert(art)
    assert saved.updated_at > NOW
    assert (await store.list_articles(ArticleStatus.PUBLISHED)) == []
    published = await store.set_status("return-how", ArticleStatus.PUBLISHED)
    assert published is not None and published.questions == ("如何退货",)
    await store.upsert(art.model_copy(update={"answer": "新的答案", "status": ArticleStatus.PUBLISHED}))
    got = await store.get("return-how")
    assert got is not None and got.answer == "新的答案"
    assert await store.count() == 1
    assert await store.delete("return-how") and not await store.delete("return-how")
    assert await store.set_status("missing", ArticleStatus.PUBLISHED) is None


async def test_escalation_starts_the_audit_log(engine: AsyncEngine) -> None:
    from gateway.db.schema import ticket_events

    convs, store = ConversationStore(engine), TicketStore(engine)
    await convs.record_inbound(inbound("1", "转人工"))
    first = await store.escalate("webchat:v_abc", EscalationReason.ASKED_FOR_HUMAN, summary="转人工", now=NOW,
                                 details={"message_id": "in_1"})
    await store.escalate("webchat:v_abc", EscalationReason.ASKED_FOR_HUMAN, summary="转人工", now=NOW)
    assert first.ticket.status == "new"
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ticket_events))).all()
    assert [(r.ticket_id, r.actor, r.kind, r.data) for r in rows] == [
        (first.ticket.id, "bot", "escalated", {"reason": "asked_for_human", "message_id": "in_1"})]


async def test_upgrade_renames_foundation_open_tickets_to_new(tmp_path: Path) -> None:
    from sqlalchemy import text

    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(eng, "0002")
        async with eng.begin() as conn:
            await conn.execute(text(
                "INSERT INTO conversations VALUES ('c', 'webchat', 'k', 'x', NULL, 'queued', :t, :t)"), {"t": NOW})
            await conn.execute(text(
                "INSERT INTO tickets (conversation_id, status, reason, summary, open_key, details, created_at,"
                " updated_at) VALUES ('c', 'open', 'out_of_scope', 's', 'c', '{}', :t, :t)"), {"t": NOW})
        await upgrade(eng)
        async with eng.connect() as conn:
            status, priority = (await conn.execute(text("SELECT status, priority FROM tickets"))).one()
        assert (status, priority) == ("new", 2)
    finally:
        await eng.dispose()


async def test_datetimes_come_back_timezone_aware(engine: AsyncEngine) -> None:
    # Regression: SQLite returned naive datetimes, and comparing one with the aware clock (the
    # ticket reopen window) raised TypeError in the bot worker.
    store = ConversationStore(engine)
    await store.record_inbound(inbound("1"))
    conv = await store.get("webchat:v_abc")
    assert conv is not None and conv["created_at"].tzinfo is not None
    [line] = await store.transcript("webchat:v_abc")
    assert line.created_at == NOW and line.created_at.utcoffset() is not None
