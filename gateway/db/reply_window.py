"""When the customer last wrote: the start of a WeChat/WeCom reply window, read from the transcript.

The platforms count their window from the customer's message, so the transcript (where every inbound
message is stored with the customer's own send time before any reply to it can exist) is the source of
truth; Redis only counts the replies sent since (``gateway.outbound_limiter.ReplyQuota``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import messages


async def last_customer_message_at(engine: AsyncEngine, conversation_id: str) -> datetime | None:
    """Send time of the customer's latest message in the conversation, None if they never wrote."""
    async with engine.connect() as conn:
        value: datetime | None = await conn.scalar(
            select(func.max(messages.c.created_at)).where(
                messages.c.conversation_id == conversation_id, messages.c.direction == "in"
            )
        )
    return value
