"""What an agent sees of one customer: the profile with every linked identity (and its proof), every
conversation and order of those identities, the link audit and the open link suggestions.

A customer without a profile is shown the same way with their single identity, so an agent opening a
ticket always gets an answer. ``tickets_of`` gives the tickets an agent's visibility is checked on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.orders import STATUS_TEXT
from gateway.db.schema import (
    conversations,
    customer_identities,
    customer_link_events,
    customers,
    messages,
    order_claims,
    orders,
    tickets,
)
from ticketing.customers import Identity
from ticketing.identity_rules import LinkKind
from ticketing.priority import Tier

MAX_CONVERSATIONS = 200
MAX_EVENTS = 200


def _owned_by(channel: Any, external_id: Any, ids: list[Identity]) -> ColumnElement[bool]:
    if not ids:
        return false()
    return tuple_(channel, external_id).in_([(i.channel, i.external_id) for i in ids])


async def identities_with_proof(conn: AsyncConnection, customer_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(customer_identities.c.channel, customer_identities.c.external_id, customer_identities.c.proven_by,
               customer_identities.c.created_at.label("linked_at"))
        .where(customer_identities.c.customer_id == customer_id)
        .order_by(customer_identities.c.created_at, customer_identities.c.channel, customer_identities.c.external_id))
    return [dict(r._mapping) for r in rows]


async def tickets_of(conn: AsyncConnection, ids: list[Identity]) -> list[dict[str, Any]]:
    """Every ticket on a conversation of these identities (what agent visibility is decided on)."""
    rows = await conn.execute(
        select(tickets.c.id, tickets.c.status, tickets.c.assignee_id, tickets.c.skills)
        .join(conversations, conversations.c.id == tickets.c.conversation_id)
        .where(_owned_by(conversations.c.channel, conversations.c.customer_external_id, ids)))
    return [dict(r._mapping) for r in rows]


async def _conversations(conn: AsyncConnection, ids: list[Identity]) -> list[dict[str, Any]]:
    convs = [dict(r._mapping) for r in await conn.execute(
        select(conversations.c.id, conversations.c.channel, conversations.c.customer_external_id,
               conversations.c.customer_name, conversations.c.state, conversations.c.created_at,
               conversations.c.updated_at)
        .where(_owned_by(conversations.c.channel, conversations.c.customer_external_id, ids))
        .order_by(conversations.c.updated_at.desc(), conversations.c.id).limit(MAX_CONVERSATIONS))]
    conv_ids = [c["id"] for c in convs]
    if not conv_ids:
        return []
    # The last message of each conversation in one query (a window function: SQLite 3.25+ and PostgreSQL).
    ranked = select(messages.c.conversation_id, messages.c.direction, messages.c.author, messages.c.text,
                    messages.c.created_at,
                    func.row_number().over(partition_by=messages.c.conversation_id,
                                           order_by=(messages.c.created_at.desc(), messages.c.id.desc())).label("n")
                    ).where(messages.c.conversation_id.in_(conv_ids)).subquery()
    last = {r.conversation_id: {"direction": r.direction, "author": r.author, "text": r.text[:500],
                                "created_at": r.created_at}
            for r in await conn.execute(select(ranked).where(ranked.c.n == 1))}
    open_tickets = {r.conversation_id: {"id": r.id, "status": r.status, "priority": r.priority, "tier": r.tier,
                                        "assignee_id": r.assignee_id, "created_at": r.created_at}
                    for r in await conn.execute(
                        select(tickets.c.conversation_id, tickets.c.id, tickets.c.status, tickets.c.priority,
                               tickets.c.tier, tickets.c.assignee_id, tickets.c.created_at)
                        .where(tickets.c.conversation_id.in_(conv_ids), tickets.c.open_key.is_not(None)))}
    return [{**c, "last_message": last.get(c["id"]), "open_ticket": open_tickets.get(c["id"])} for c in convs]


async def _orders(conn: AsyncConnection, ids: list[Identity], proofs: list[str]) -> list[dict[str, Any]]:
    """Orders the identities own, first mentioned (ownerless orders), or that proved one of their links."""
    why: dict[str, set[str]] = {}
    for r in await conn.execute(select(orders.c.order_number).where(
            _owned_by(orders.c.channel, orders.c.customer_external_id, ids))):
        why.setdefault(r.order_number, set()).add("owner")
    for r in await conn.execute(select(order_claims.c.order_number).where(
            _owned_by(order_claims.c.channel, order_claims.c.external_id, ids))):
        why.setdefault(r.order_number, set()).add("first_mentioned")
    for proof in proofs:
        if proof.startswith("order:"):
            why.setdefault(proof.removeprefix("order:"), set()).add("link_proof")
    if not why:
        return []
    rows = await conn.execute(select(orders).where(orders.c.order_number.in_(sorted(why)))
                              .order_by(orders.c.updated_at.desc(), orders.c.order_number))
    out = []
    for r in rows:
        m = dict(r._mapping)
        zh, en = STATUS_TEXT.get(m["status"], (m["status"], m["status"]))
        out.append({**m, "status_text": zh, "status_text_en": en, "relation": sorted(why[m["order_number"]])})
    return out


async def _events(conn: AsyncConnection, profile_ids: list[int], ids: list[Identity]) -> list[dict[str, Any]]:
    e = customer_link_events
    conds = [_owned_by(e.c.channel, e.c.external_id, ids), _owned_by(e.c.other_channel, e.c.other_external_id, ids)]
    if profile_ids:
        conds += [e.c.customer_id.in_(profile_ids), e.c.other_customer_id.in_(profile_ids)]
    rows = await conn.execute(select(e).where(or_(*conds)).order_by(e.c.id.desc()).limit(MAX_EVENTS))
    return [{k: v for k, v in r._mapping.items() if k != "dedupe_key"} for r in rows]


async def _open_suggestions(conn: AsyncConnection, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Suggestions whose two identities are still not in one profile, with their current profiles."""
    suggested = [ev for ev in events if ev["kind"] == LinkKind.SUGGESTED.value]
    pairs = {(ev[c], ev[x]) for ev in suggested for c, x in (("channel", "external_id"),
                                                             ("other_channel", "other_external_id"))}
    if not pairs:
        return []
    current = {(r.channel, r.external_id): r.customer_id for r in await conn.execute(
        select(customer_identities.c.channel, customer_identities.c.external_id, customer_identities.c.customer_id)
        .where(tuple_(customer_identities.c.channel, customer_identities.c.external_id).in_(sorted(pairs))))}
    out = []
    for ev in suggested:
        mine = current.get((ev["channel"], ev["external_id"]))
        theirs = current.get((ev["other_channel"], ev["other_external_id"]))
        if mine is None or mine != theirs:
            out.append({"event_id": ev["id"], "at": ev["at"], "proof": ev["proof"], "why": ev["data"].get("why"),
                        "identity": {"channel": ev["channel"], "external_id": ev["external_id"], "customer_id": mine},
                        "other": {"channel": ev["other_channel"], "external_id": ev["other_external_id"],
                                  "customer_id": theirs}})
    return out


async def customer_view(conn: AsyncConnection, customer_id: int | None,
                        identity: Identity | None = None) -> dict[str, Any] | None:
    """The whole customer: by profile id (a live one), or for a single identity without a profile."""
    if customer_id is not None:
        row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
        if row is None:
            return None
        idents = await identities_with_proof(conn, customer_id)
        merged_from = sorted((await conn.execute(select(customers.c.id).where(
            customers.c.merged_into == customer_id))).scalars())
        head: dict[str, Any] = {"id": row.id, "name": row.name, "tier": row.tier, "created_at": row.created_at,
                                "updated_at": row.updated_at, "merged_from": merged_from}
    elif identity is not None:
        idents = [{"channel": identity.channel, "external_id": identity.external_id, "proven_by": None,
                   "linked_at": None}]
        merged_from = []
        head = {"id": None, "name": None, "tier": Tier.NORMAL.value, "created_at": None, "updated_at": None,
                "merged_from": []}
    else:
        raise ValueError("give a customer id or an identity")
    ids = [Identity(i["channel"], i["external_id"]) for i in idents]
    convs = await _conversations(conn, ids)
    if head["name"] is None:  # no name on the profile: the newest name a channel told us
        head["name"] = next((c["customer_name"] for c in convs if c["customer_name"]), None)
    events = await _events(conn, [customer_id, *merged_from] if customer_id is not None else [], ids)
    proofs = [str(i["proven_by"]) for i in idents if i["proven_by"]]
    mine = {(i.channel, i.external_id) for i in ids}
    proofs += [str(ev["proof"]) for ev in events if ev["proof"] and ev["kind"] == LinkKind.LINKED.value
               and (ev["channel"], ev["external_id"]) in mine]
    return {**head, "identities": idents, "conversations": convs, "orders": await _orders(conn, ids, proofs),
            "link_events": events, "suggestions": await _open_suggestions(conn, events)}

