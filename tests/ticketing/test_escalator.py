"""Escalation with triage, against real databases: tier from the customer profile, history, the
peak-season switch, and the recorded reasons. Runs inside one transaction, as the bot worker does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.conversations import insert_inbound
from gateway.db.schema import ticket_events, tickets
from gateway.models import Channel, CustomerRef, InboundMessage
from ticketing.customers import CustomerProfiles, Identity, history_of, tier_of
from ticketing.escalation import EscalationReason
from ticketing.escalator import Escalator, score_json
from ticketing.policy import PolicyStore, TicketingPolicy
from ticketing.priority import Tier
from ticketing.sentiment import SentimentScore
from ticketing.sla import Profile

NOW = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)
TAGS = {"ship-1": ("物流", "shipping"), "refund-1": ("退款",)}


def _msg(visitor: str, n: int, text: str) -> InboundMessage:
    return InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"{visitor}-{n}",
                                conversation_key=visitor, text=text, sent_at=NOW + timedelta(seconds=n),
                                customer=CustomerRef(channel=Channel.WEBCHAT, external_id=visitor))


async def _escalate(engine: AsyncEngine, esc: Escalator, visitor: str, text: str, sentiment: SentimentScore,
                    details: dict[str, object]) -> dict[str, object]:
    msg = _msg(visitor, 1, text)
    async with engine.begin() as conn:  # one transaction, as in the bot worker (regression: SQLite deadlock)
        await insert_inbound(conn, msg, sentiment=score_json(sentiment))
        result, plan = await esc.escalate(conn, conversation_id=msg.conversation_id, channel=Channel.WEBCHAT,
                                          customer_external_id=visitor, reason=EscalationReason.OUT_OF_SCOPE,
                                          summary=text, now=NOW, language="zh", details=details)
    assert plan is not None and result.created
    async with engine.connect() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.id == result.ticket.id))).one()._mapping
    return {**row, "wait_notice": plan.wait_notice}


async def test_vip_threat_gets_priority_skills_and_reasons(engine: AsyncEngine) -> None:
    profiles = CustomerProfiles(engine)
    await profiles.set_tier(Identity("webchat", "v-vip"), Tier.VIP, now=NOW, name="王女士")
    esc = Escalator(PolicyStore(engine, TicketingPolicy()), lambda a: TAGS.get(a, ()))
    angry = SentimentScore(negative=0.9, anger=0.8, urgency=0.3, reasons=("threatens 12315",),
                           flags=frozenset({"threat"}))
    row = await _escalate(engine, esc, "v-vip", "快递一周没动，再不处理我就投诉12315", angry,
                          {"hits": [{"article_id": "ship-1", "score": 0.3}]})
    assert row["priority"] == 0 and row["tier"] == "vip"
    assert set(row["skills"]) == {"logistics", "vip"}
    assert {r["code"] for r in row["priority_reasons"]} >= {"threat", "vip", "anger"}
    assert row["first_response_due"] == NOW + timedelta(minutes=5)  # P0 VIP: half of 10 minutes
    assert row["sla_next_check_at"] == NOW + timedelta(minutes=2, seconds=30)
    async with engine.connect() as conn:
        kinds = (await conn.execute(select(ticket_events.c.kind).order_by(ticket_events.c.id))).scalars().all()
    assert kinds == ["escalated", "triaged"]


async def test_peak_switch_relaxes_the_promise(engine: AsyncEngine) -> None:
    policies = PolicyStore(engine, TicketingPolicy())
    assert await policies.profile() is Profile.STANDARD
    await policies.set_profile(Profile.PEAK, actor="admin", now=NOW)
    await policies.set_profile(Profile.PEAK, actor="admin", now=NOW)  # idempotent
    assert (await policies.describe())["profile"] == "peak"
    calm = SentimentScore(0.1, 0.0, 0.0, (), frozenset())
    row = await _escalate(engine, Escalator(policies), "v-calm", "你们支持开专票吗", calm, {})
    assert row["priority"] == 3
    assert row["first_response_due"] == NOW + timedelta(minutes=960)  # P3 480 min, doubled in peak
    assert str(row["wait_notice"]).startswith("当前咨询量较大")


async def test_tier_and_history_follow_the_profile(engine: AsyncEngine) -> None:
    ident = Identity("webchat", "v-h")
    async with engine.connect() as conn:
        assert await tier_of(conn, ident) is Tier.NORMAL
    profiles = CustomerProfiles(engine)
    saved = await profiles.set_tier(ident, Tier.VIP, now=NOW)
    again = await profiles.set_tier(ident, Tier.NORMAL, now=NOW, name="李")
    assert saved["id"] == again["id"] and again["tier"] == "normal" and again["name"] == "李"
    esc = Escalator(PolicyStore(engine, TicketingPolicy()))
    await _escalate(engine, esc, "v-h", "在吗", SentimentScore(0.2, 0, 0, (), frozenset()), {})
    async with engine.connect() as conn:
        history = await history_of(conn, ident, NOW)
    assert history.tickets_last_30d == 2  # the existing ticket plus the one being opened
    assert (await profiles.get(ident) or {})["open_tickets"] == 1
