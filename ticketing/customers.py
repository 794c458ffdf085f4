"""Customer profiles as ticketing sees them: tier and recent history, looked up by channel identity.

A profile exists only when the shop has said something about the customer (tier, name) or when
identities were linked on proof (``ticketing/identity_links.py``); a customer with no profile is a
``normal`` customer. History
is counted over every identity linked to the same profile, so a VIP who writes on a second channel
is still a VIP there -- once the link is proven.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.engine import insert_ignore
from gateway.db.schema import conversations, customer_identities, customers, tickets
from ticketing.priority import History, Tier

HISTORY_WINDOW = timedelta(days=30)


class CustomerError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Identity:
    channel: str
    external_id: str


async def identities_of(conn: AsyncConnection, identity: Identity) -> tuple[int | None, list[Identity]]:
    """The profile id (None when there is no profile) and every identity linked to it."""
    customer_id = await conn.scalar(select(customer_identities.c.customer_id).where(
        customer_identities.c.channel == identity.channel,
        customer_identities.c.external_id == identity.external_id))
    if customer_id is None:
        return None, [identity]
    rows = await conn.execute(select(customer_identities.c.channel, customer_identities.c.external_id)
                              .where(customer_identities.c.customer_id == customer_id))
    return int(customer_id), [Identity(r.channel, r.external_id) for r in rows]


async def tier_of(conn: AsyncConnection, identity: Identity) -> Tier:
    tier = await conn.scalar(
        select(customers.c.tier).join(customer_identities, customer_identities.c.customer_id == customers.c.id)
        .where(customer_identities.c.channel == identity.channel,
               customer_identities.c.external_id == identity.external_id))
    return Tier(tier) if tier in {t.value for t in Tier} else Tier.NORMAL


async def history_of(conn: AsyncConnection, identity: Identity, now: datetime, *,
                     exclude_ticket: int | None = None) -> History:
    """Tickets in the last 30 days (this one included when it exists) and earlier SLA breaches."""
    _, ids = await identities_of(conn, identity)
    owned = or_(*(and_(conversations.c.channel == i.channel, conversations.c.customer_external_id == i.external_id)
                  for i in ids))
    rows = (await conn.execute(
        select(tickets.c.id, tickets.c.created_at, tickets.c.sla_fired)
        .join(conversations, conversations.c.id == tickets.c.conversation_id)
        .where(owned, tickets.c.created_at >= now - HISTORY_WINDOW)
    )).all()
    breaches = sum(1 for r in rows if r.id != exclude_ticket and any(str(f).endswith(":breach")
                                                                    for f in (r.sla_fired or [])))
    return History(tickets_last_30d=len(rows) + (1 if exclude_ticket is None else 0), previous_breaches=breaches)


class CustomerProfiles:
    """Create/read profiles (tier and name); linking identities is ``identity_links``/``agent_links``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def set_tier(self, identity: Identity, tier: Tier, *, now: datetime, name: str | None = None,
                       proven_by: str = "staff") -> dict[str, Any]:
        """Give the customer behind ``identity`` a tier (creating their profile on first use)."""
        if not identity.channel or not identity.external_id:
            raise CustomerError("channel and external_id are required")
        async with self.engine.begin() as conn:
            customer_id, _ = await identities_of(conn, identity)
            if customer_id is None:
                created = await conn.execute(customers.insert().values(
                    name=name, tier=tier.value, created_at=now, updated_at=now))
                customer_id = int(created.inserted_primary_key[0])  # type: ignore[index]
                await conn.execute(insert_ignore(conn, customer_identities, ["channel", "external_id"]).values(
                    channel=identity.channel, external_id=identity.external_id, customer_id=customer_id,
                    proven_by=proven_by, created_at=now))
                # Lost a race with another writer: use the profile that won.
                customer_id, _ = await identities_of(conn, identity)
            values: dict[str, Any] = {"tier": tier.value, "updated_at": now}
            if name is not None:
                values["name"] = name
            await conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))
        return await self.get(identity) or {}

    async def get(self, identity: Identity) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            customer_id, ids = await identities_of(conn, identity)
            if customer_id is None:
                return None
            row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).one()._mapping
            open_count = await conn.scalar(
                select(func.count()).select_from(tickets)
                .join(conversations, conversations.c.id == tickets.c.conversation_id)
                .where(tuple_(conversations.c.channel, conversations.c.customer_external_id)
                       .in_([(i.channel, i.external_id) for i in ids]), tickets.c.open_key.is_not(None)))
        return {"id": row["id"], "name": row["name"], "tier": row["tier"],
                "identities": [{"channel": i.channel, "external_id": i.external_id} for i in ids],
                "open_tickets": int(open_count or 0)}
