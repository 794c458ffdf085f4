"""What a queue card in the agent console shows beyond the ticket row: the customer's profile name and
the conversation's last message.

Both are read for a whole page of tickets at once (two queries, whatever the page size), so listing
a queue stays cheap: the console reloads it on every live event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import customer_identities, customers, messages

PREVIEW_CHARS = 140


async def with_card_facts(engine: AsyncEngine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (ticket rows with ``conversation_id``, ``channel`` and ``customer_external_id``) with
    ``profile_name`` (None without a named profile) and ``last_message`` ({author, text, created_at},
    text cut to ``PREVIEW_CHARS``; None for an empty conversation) added."""
    conv_ids = sorted({r["conversation_id"] for r in rows})
    pairs = sorted({(_channel(r), r["customer_external_id"]) for r in rows if r.get("customer_external_id")})
    if not conv_ids:
        return rows
    # The newest message of each conversation in one query (a window function: SQLite 3.25+, PostgreSQL).
    ranked = select(messages.c.conversation_id, messages.c.author, messages.c.text, messages.c.created_at,
                    func.row_number().over(partition_by=messages.c.conversation_id,
                                           order_by=(messages.c.created_at.desc(), messages.c.id.desc())).label("n")
                    ).where(messages.c.conversation_id.in_(conv_ids)).subquery()
    async with engine.connect() as conn:
        last = {r.conversation_id: {"author": r.author, "text": r.text[:PREVIEW_CHARS], "created_at": r.created_at}
                for r in await conn.execute(select(ranked).where(ranked.c.n == 1))}
        names: dict[tuple[str, str], str] = {}
        if pairs:
            found = await conn.execute(
                select(customer_identities.c.channel, customer_identities.c.external_id, customers.c.name)
                .join(customers, customers.c.id == customer_identities.c.customer_id)
                .where(tuple_(customer_identities.c.channel, customer_identities.c.external_id).in_(pairs)))
            names = {(r.channel, r.external_id): r.name for r in found if r.name}
    return [{**r, "profile_name": names.get((_channel(r), r.get("customer_external_id") or "")),
             "last_message": last.get(r["conversation_id"])} for r in rows]


def _channel(row: dict[str, Any]) -> str:
    """The ticket's channel; tickets opened without triage have none, but the conversation id starts
    with it (``gateway.models.conversation_id_for``)."""
    return str(row.get("channel") or row["conversation_id"].split(":", 1)[0])
