"""Queue cards: each listed ticket gets its customer's profile name and its conversation's last message."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.conversations import insert_inbound, insert_outbound
from gateway.models import Channel, CustomerRef, InboundMessage, OutboundMessage, utcnow
from gateway.queue_cards import PREVIEW_CHARS, with_card_facts
from ticketing.customers import CustomerProfiles, Identity
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.priority import Tier
from ticketing.queues import Viewer, list_tickets

SUPERVISOR = Viewer("sup", frozenset(), sees_all=True)


async def _escalated(engine: AsyncEngine, visitor: str, text: str, *, name: str | None = None) -> str:
    now = utcnow()
    customer = CustomerRef(channel=Channel.WEBCHAT, external_id=visitor, display_name=name)
    msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"m-{visitor}", conversation_key=visitor,
                               customer=customer, text=text, sent_at=now)
    async with engine.begin() as conn:
        await insert_inbound(conn, msg)
        await escalate_in(conn, msg.conversation_id, EscalationReason.ASKED_FOR_HUMAN, summary=text, now=now)
    return msg.conversation_id


async def test_cards_carry_profile_name_and_last_message(engine: AsyncEngine) -> None:
    named = await _escalated(engine, "v_named", "转人工", name="channel name")
    plain = await _escalated(engine, "v_plain", "x" * (PREVIEW_CHARS + 50))
    await CustomerProfiles(engine).set_tier(Identity("webchat", "v_named"), Tier.VIP, now=utcnow(), name="王芳")
    later = utcnow() + timedelta(seconds=5)
    reply = OutboundMessage(message_id="out_bot_1", channel=Channel.WEBCHAT, conversation_key="v_named",
                            recipient=CustomerRef(channel=Channel.WEBCHAT, external_id="v_named"),
                            text="好的，正在为您转接人工客服", author="bot", created_at=later)
    async with engine.begin() as conn:
        await insert_outbound(conn, reply)

    rows = await with_card_facts(engine, await list_tickets(engine, SUPERVISOR, view="active"))
    cards = {r["conversation_id"]: r for r in rows}
    assert cards[named]["profile_name"] == "王芳"  # the profile wins over the channel's display name
    assert cards[named]["customer_name"] == "channel name"
    assert (cards[named]["last_message"]["author"], cards[named]["last_message"]["text"]) == (
        "bot", "好的，正在为您转接人工客服")
    assert cards[plain]["profile_name"] is None
    assert cards[plain]["last_message"]["author"] == "customer"
    assert len(cards[plain]["last_message"]["text"]) == PREVIEW_CHARS


async def test_no_tickets_no_queries(engine: AsyncEngine) -> None:
    assert await with_card_facts(engine, []) == []
