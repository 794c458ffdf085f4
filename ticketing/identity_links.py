"""Linking a customer's identities in the database: order proofs on the bot worker's path, and the
agents' verified identities, unlinks and merges. The rules are in ``ticketing.identity_rules``.

Race safety. Every change runs in one transaction on the connection it is given (SQLite has a single
pooled connection: opening a second one inside a transaction would wait for itself). On PostgreSQL a
change first takes transaction-scoped advisory locks on the identities it adds or removes (sorted, so
two changes never wait for each other in a circle), then row locks on the profiles involved (sorted by
id), then re-reads what it decided on; if a concurrent merge moved anything in between, the
transaction is rolled back and run again. Merges lock the two profile rows only: nothing else can
change a locked profile's identities. SQLite runs one writer at a time, so the same code is safe there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.engine import insert_ignore
from gateway.db.schema import customer_identities, customer_link_events, customers, order_claims, orders
from gateway.models import InboundMessage
from ticketing.customers import CustomerError, Identity
from ticketing.identity_rules import (
    LinkAction,
    LinkKind,
    LinkState,
    decide_order_link,
    mentioned_orders,
    order_anchor,
    order_proof,
    owner_of,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
ATTEMPTS = 5
_LOCK_NAMESPACE = 0x6C696E6B  # "link": the first key of our two-key advisory locks


class ProfileNotFound(CustomerError):
    """No such customer profile, or the identity is not linked to it (404)."""


class LinkConflict(CustomerError):
    """The change contradicts the current links (409): e.g. the identity belongs to another profile."""


class LinksChanged(Exception):
    """A concurrent change moved what this transaction decided on: roll back and run it again."""


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """What one order proof did."""

    order_number: str
    action: LinkAction
    customer_id: int | None  # the writer's profile afterwards (None: still none)
    writer: Identity
    anchor: Identity


async def retrying(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction, again from the start when a concurrent change got in the way."""
    for _ in range(ATTEMPTS):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except LinksChanged:
            continue
    raise LinkConflict("the customer's links are changing right now; retry")


# --- reading and locking, on the caller's connection ----------------------------------------------
async def profile_of(conn: AsyncConnection, identity: Identity) -> int | None:
    value = await conn.scalar(select(customer_identities.c.customer_id).where(
        customer_identities.c.channel == identity.channel, customer_identities.c.external_id == identity.external_id))
    return int(value) if value is not None else None


async def live_profile(conn: AsyncConnection, customer_id: int) -> int | None:
    """The profile id, or the profile it was merged into (merges keep that one hop deep); None if unknown."""
    row = (await conn.execute(select(customers.c.id, customers.c.merged_into)
                              .where(customers.c.id == customer_id))).first()
    if row is None:
        return None
    return int(row.merged_into if row.merged_into is not None else row.id)


async def was_unlinked(conn: AsyncConnection, identity: Identity) -> bool:
    """An agent once unlinked this identity: automatic links leave it alone from then on."""
    found = await conn.scalar(select(customer_link_events.c.id).where(
        customer_link_events.c.channel == identity.channel, customer_link_events.c.external_id == identity.external_id,
        customer_link_events.c.kind == LinkKind.UNLINKED.value).limit(1))
    return found is not None


def _lock_key(identity: Identity) -> int:
    digest = hashlib.blake2b(f"{identity.channel}\x1f{identity.external_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_identities(conn: AsyncConnection, identities: Iterable[Identity]) -> None:
    """PostgreSQL: serialise changes to these identities until the transaction ends (a hash collision
    only serialises two unrelated identities). SQLite has one writer at a time already."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({_lock_key(i) for i in identities}):
        await conn.execute(select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, key)))


async def lock_profiles(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Row-lock live profiles in id order; a profile merged away meanwhile means "run again"."""
    rows: dict[int, Row[Any]] = {}
    for customer_id in sorted(set(ids)):
        row = (await conn.execute(select(customers).where(customers.c.id == customer_id).with_for_update())).first()
        if row is None or row.merged_into is not None:
            raise LinksChanged(customer_id)
        rows[customer_id] = row
    return rows


async def record(conn: AsyncConnection, kind: LinkKind, *, at: datetime, actor: str, customer_id: int | None,
                 identity: Identity | None = None, other: Identity | None = None, other_customer_id: int | None = None,
                 proof: str | None = None, reason: str | None = None, data: dict[str, Any] | None = None,
                 dedupe_key: str | None = None) -> None:
    """Append one row to the link audit (a suggestion with a ``dedupe_key`` is stored once)."""
    values = dict(at=at, actor=actor, kind=kind.value, customer_id=customer_id, other_customer_id=other_customer_id,
                  channel=identity.channel if identity else None,
                  external_id=identity.external_id if identity else None,
                  other_channel=other.channel if other else None,
                  other_external_id=other.external_id if other else None,
                  proof=proof, reason=reason, data=data or {}, dedupe_key=dedupe_key)
    if dedupe_key is None:
        await conn.execute(customer_link_events.insert().values(**values))
    else:
        await conn.execute(insert_ignore(conn, customer_link_events, ["dedupe_key"]).values(**values))


async def attach_identity(conn: AsyncConnection, identity: Identity, customer_id: int, proof: str,
                          now: datetime) -> None:
    """Link an identity that has no profile (the caller holds its lock). A profile created for it without
    our locks (a supervisor setting a tier) wins: then we run again and see it."""
    await conn.execute(insert_ignore(conn, customer_identities, ["channel", "external_id"]).values(
        channel=identity.channel, external_id=identity.external_id, customer_id=customer_id, proven_by=proof,
        created_at=now))
    if await profile_of(conn, identity) != customer_id:
        raise LinksChanged(identity)
    await conn.execute(update(customers).where(customers.c.id == customer_id).values(updated_at=now))


# --- order proofs (the bot worker) -----------------------------------------------------------------
async def link_order_mentions(engine: AsyncEngine, writer: Identity, text: str, now: datetime) -> list[LinkOutcome]:
    """Link the writer of a customer message by the order numbers it mentions. A regex first; the
    database only when an order-like number appears; a transaction only for numbers that are orders."""
    numbers = mentioned_orders(text)
    if not numbers:
        return []
    async with engine.connect() as conn:
        known = set((await conn.execute(select(orders.c.order_number)
                                        .where(orders.c.order_number.in_(numbers)))).scalars())
    outcomes = []
    for number in (n for n in numbers if n in known):
        async def work(conn: AsyncConnection, number: str = number) -> LinkOutcome | None:
            return await link_by_order(conn, writer, number, now)
        outcome = await retrying(engine, work)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


async def link_by_order(conn: AsyncConnection, writer: Identity, order_number: str,
                        now: datetime) -> LinkOutcome | None:
    """Apply one order proof inside the caller's transaction (None: no such order)."""
    row = (await conn.execute(select(orders.c.channel, orders.c.customer_external_id)
                              .where(orders.c.order_number == order_number))).first()
    if row is None:
        return None
    owner = owner_of(row.channel, row.customer_external_id)
    claimant = None
    if owner is None:  # the first identity to mention an ownerless order anchors it (PK: one winner)
        claim_query = select(order_claims.c.channel, order_claims.c.external_id).where(
            order_claims.c.order_number == order_number)
        claim = (await conn.execute(claim_query)).first()
        if claim is None:  # written once per order, not on every mention (no write lock on repeats)
            await conn.execute(insert_ignore(conn, order_claims, ["order_number"]).values(
                order_number=order_number, channel=writer.channel, external_id=writer.external_id, created_at=now))
            claim = (await conn.execute(claim_query)).one()
        claimant = Identity(claim.channel, claim.external_id)
    anchor = order_anchor(owner, claimant)
    assert anchor is not None  # an owner or, failing that, a claim always exists here
    if anchor == writer:
        return LinkOutcome(order_number, LinkAction.NONE, await profile_of(conn, writer), writer, anchor)
    wp = await profile_of(conn, writer)
    if wp is not None and wp == await profile_of(conn, anchor):
        return LinkOutcome(order_number, LinkAction.NONE, wp, writer, anchor)  # linked already: no locks
    await lock_identities(conn, (writer, anchor))
    wp, ap = await profile_of(conn, writer), await profile_of(conn, anchor)
    await lock_profiles(conn, [p for p in (wp, ap) if p is not None])
    if (await profile_of(conn, writer), await profile_of(conn, anchor)) != (wp, ap):
        raise LinksChanged(order_number)
    action = decide_order_link(LinkState(wp, ap, writer_unlinked=await was_unlinked(conn, writer),
                                         anchor_unlinked=await was_unlinked(conn, anchor)))
    proof = order_proof(order_number)
    result = wp
    if action is LinkAction.CREATE:
        created = await conn.execute(customers.insert().values(tier="normal", created_at=now, updated_at=now))
        result = int(created.inserted_primary_key[0])  # type: ignore[index]
        for identity, other in sorted([(anchor, writer), (writer, anchor)], key=lambda p: astuple(p[0])):
            await attach_identity(conn, identity, result, proof, now)
            await record(conn, LinkKind.LINKED, at=now, actor="system", customer_id=result, identity=identity,
                         other=other, proof=proof)
    elif action in (LinkAction.ADD_WRITER, LinkAction.ADD_ANCHOR):
        joining, present = (writer, anchor) if action is LinkAction.ADD_WRITER else (anchor, writer)
        result = ap if action is LinkAction.ADD_WRITER else wp
        assert result is not None
        await attach_identity(conn, joining, result, proof, now)
        await record(conn, LinkKind.LINKED, at=now, actor="system", customer_id=result, identity=joining,
                     other=present, proof=proof)
    elif action is LinkAction.SUGGEST:
        key = hashlib.sha256(f"suggest\x1f{order_number}\x1f{writer.channel}\x1f{writer.external_id}".encode())
        await record(conn, LinkKind.SUGGESTED, at=now, actor="system", customer_id=wp, identity=writer,
                     other=anchor, other_customer_id=ap, proof=proof, dedupe_key=key.hexdigest(),
                     data={"why": "conflict" if wp is not None and ap is not None else "unlinked_before"})
    return LinkOutcome(order_number, action, result, writer, anchor)


async def link_on_message(engine: AsyncEngine, msg: InboundMessage, now: datetime) -> list[LinkOutcome]:
    """The bot worker's call for every customer message, before it is answered (so a tier proven by
    this very message already counts if it escalates). A link that keeps colliding with concurrent
    changes is skipped, not fatal: the message must still be answered, and the customer's next
    mention of the order tries again."""
    try:
        return await link_order_mentions(engine, Identity(msg.channel.value, msg.customer.external_id), msg.text, now)
    except LinkConflict as exc:
        log.warning("identity link skipped for %s: %s", msg.message_id, exc)
        return []
