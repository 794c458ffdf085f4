"""Agents' changes to a customer's identity links: a verified identity, an unlink, a merge of two
profiles -- each one transaction, audited with who, when and why (``customer_link_events``).

The locking protocol is ``ticketing.identity_links``'s: identity locks, then profile row locks, then a
re-read; a change a concurrent merge got in the way of runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.schema import customer_identities, customers
from ticketing.customers import CustomerError, Identity
from ticketing.identity_links import (
    LinkConflict,
    LinksChanged,
    ProfileNotFound,
    attach_identity,
    live_profile,
    lock_identities,
    lock_profiles,
    profile_of,
    record,
    retrying,
)
from ticketing.identity_rules import LinkKind, agent_proof, merge_proof, merged_tier, tier_of_value


class AgentLinks:
    """Agents' changes to links, each one transaction, audited with who, when and why."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    async def resolve(self, customer_id: int) -> int | None:
        """The live profile id for ``customer_id`` (following a merge), None when there is none."""
        async with self.engine.connect() as conn:
            return await live_profile(conn, customer_id)

    async def add_identity(self, customer_id: int, identity: Identity, *, actor: str, note: str | None) -> int:
        """Link an identity the agent verified (``proven_by=agent:<id>``); returns the profile id."""
        async def work(conn: AsyncConnection) -> int:
            await lock_identities(conn, [identity])
            pid = await _live_or_404(conn, customer_id)
            await lock_profiles(conn, [pid])
            return await _verified(conn, pid, identity, actor=actor, note=note, now=self.clock())
        return await retrying(self.engine, work)

    async def add_identity_for(self, anchor: Identity, identity: Identity, *, actor: str, note: str | None) -> int:
        """The agent verified that the customer behind ``anchor`` (a conversation's identity, maybe
        without a profile yet) is also ``identity``. Whichever of the two has a profile, the other joins
        it; with none, a new profile holds both; with two different ones, merge them instead (409)."""
        if anchor == identity:
            raise CustomerError("that is the conversation's own identity")

        async def work(conn: AsyncConnection) -> int:
            now = self.clock()
            await lock_identities(conn, [anchor, identity])
            ap, ip = await profile_of(conn, anchor), await profile_of(conn, identity)
            await lock_profiles(conn, [p for p in (ap, ip) if p is not None])
            if (await profile_of(conn, anchor), await profile_of(conn, identity)) != (ap, ip):
                raise LinksChanged(anchor)
            if ap is not None:
                return await _verified(conn, ap, identity, actor=actor, note=note, now=now)
            if ip is not None:
                return await _verified(conn, ip, anchor, actor=actor, note=note, now=now, other=identity)
            created = await conn.execute(customers.insert().values(tier="normal", created_at=now, updated_at=now))
            pid = int(created.inserted_primary_key[0])  # type: ignore[index]
            await _verified(conn, pid, anchor, actor=actor, note=note, now=now, other=identity)
            return await _verified(conn, pid, identity, actor=actor, note=note, now=now, other=anchor)
        return await retrying(self.engine, work)

    async def unlink(self, customer_id: int, identity: Identity, *, actor: str, reason: str | None) -> int:
        """Undo a wrong link: the identity leaves the profile (and order proofs never link it again)."""
        async def work(conn: AsyncConnection) -> int:
            now = self.clock()
            await lock_identities(conn, [identity])
            pid = await _live_or_404(conn, customer_id)
            await lock_profiles(conn, [pid])
            ident_where = (customer_identities.c.channel == identity.channel,
                           customer_identities.c.external_id == identity.external_id,
                           customer_identities.c.customer_id == pid)
            proven_by = await conn.scalar(select(customer_identities.c.proven_by).where(*ident_where))
            if proven_by is None:
                raise ProfileNotFound(f"{identity.channel}:{identity.external_id} is not linked to customer {pid}")
            count = await conn.scalar(select(func.count()).select_from(customer_identities)
                                      .where(customer_identities.c.customer_id == pid))
            if int(count or 0) <= 1:
                raise LinkConflict("this is the profile's only identity: there is no link to undo")
            await conn.execute(customer_identities.delete().where(*ident_where))
            await conn.execute(update(customers).where(customers.c.id == pid).values(updated_at=now))
            await record(conn, LinkKind.UNLINKED, at=now, actor=actor, customer_id=pid, identity=identity,
                         proof=str(proven_by), reason=reason)
            return pid
        return await retrying(self.engine, work)

    async def merge(self, customer_id: int, other_id: int, *, actor: str, reason: str) -> int:
        """Move every identity of ``other_id`` into ``customer_id`` (which keeps the higher tier)."""
        if customer_id == other_id:
            raise CustomerError("a profile cannot be merged with itself")

        async def work(conn: AsyncConnection) -> int:
            now = self.clock()
            a, b = await _live_or_404(conn, customer_id), await _live_or_404(conn, other_id)
            if a == b:
                raise LinkConflict(f"customers {customer_id} and {other_id} are already one profile ({a})")
            rows = await lock_profiles(conn, [a, b])
            moved = (await conn.execute(select(customer_identities).where(customer_identities.c.customer_id == b)
                                        .order_by(customer_identities.c.channel,
                                                  customer_identities.c.external_id))).all()
            await conn.execute(update(customer_identities).where(customer_identities.c.customer_id == b)
                               .values(customer_id=a, proven_by=merge_proof(actor), created_at=now))
            tiers = (tier_of_value(rows[a].tier), tier_of_value(rows[b].tier))
            tier = merged_tier(*tiers)
            await conn.execute(update(customers).where(customers.c.id == a).values(
                tier=tier.value, name=rows[a].name or rows[b].name, updated_at=now))
            await conn.execute(update(customers).where(customers.c.id.in_([b]) | (customers.c.merged_into == b))
                               .values(merged_into=a, updated_at=now))
            await record(conn, LinkKind.MERGED, at=now, actor=actor, customer_id=a, other_customer_id=b,
                         proof=merge_proof(actor), reason=reason, data={
                             "moved": [{"channel": r.channel, "external_id": r.external_id, "proven_by": r.proven_by}
                                       for r in moved],
                             "tier": tier.value, "tiers": {str(a): tiers[0].value, str(b): tiers[1].value}})
            return a
        return await retrying(self.engine, work)


async def _verified(conn: AsyncConnection, pid: int, identity: Identity, *, actor: str, note: str | None,
                    now: datetime, other: Identity | None = None) -> int:
    """Add an agent-verified identity to a locked live profile (the caller holds the identity's lock)."""
    current = await profile_of(conn, identity)
    if current == pid:
        return pid  # already linked: nothing to do, nothing to audit
    if current is not None:
        raise LinkConflict(f"{identity.channel}:{identity.external_id} belongs to customer {current}; "
                           f"merge the two profiles instead")
    proof = agent_proof(actor)
    await attach_identity(conn, identity, pid, proof, now)
    await record(conn, LinkKind.LINKED, at=now, actor=actor, customer_id=pid, identity=identity, other=other,
                 proof=proof, reason=note)
    return pid


async def _live_or_404(conn: AsyncConnection, customer_id: int) -> int:
    pid = await live_profile(conn, customer_id)
    if pid is None:
        raise ProfileNotFound(f"no customer {customer_id}")
    return pid
