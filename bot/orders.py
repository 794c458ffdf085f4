"""Order lookup: one interface, a database implementation over the demo order book.

A shop connects its real order system by implementing ``OrderLookup`` (e.g. over a marketplace API).
The bot worker resolves order numbers it sees in a message before the dialogue engine runs, so the
Rasa action server needs neither database access nor credentials.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import orders
from gateway.models import utcnow

ORDER_NUMBER_RE = re.compile(r"(?<!\d)\d{5,20}(?!\d)")

STATUS_TEXT = {
    "pending": ("待发货", "awaiting shipment"),
    "shipped": ("已发货", "shipped"),
    "in_transit": ("运输中", "in transit"),
    "delivered": ("已签收", "delivered"),
    "cancelled": ("已取消", "cancelled"),
}


@dataclass(frozen=True, slots=True)
class Order:
    order_number: str
    status: str
    carrier: str | None
    tracking_number: str | None
    items: tuple[str, ...]
    detail: str
    detail_en: str
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        zh, en = STATUS_TEXT.get(self.status, (self.status, self.status))
        data = asdict(self)
        data.update(items=list(self.items), updated_at=self.updated_at.isoformat(),
                    status_text=zh, status_text_en=en)
        return data


class OrderLookup(Protocol):
    async def find(self, order_number: str) -> Order | None:
        """The order, or None when the number is unknown."""


def order_numbers_in(text: str, limit: int = 3) -> list[str]:
    """Candidate order numbers in a message (5-20 digits standing alone)."""
    return ORDER_NUMBER_RE.findall(text)[:limit]


class DbOrderLookup:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, order_number: str) -> Order | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(orders).where(orders.c.order_number == order_number))).first()
        if row is None:
            return None
        m = row._mapping
        return Order(order_number=m["order_number"], status=m["status"], carrier=m["carrier"],
                     tracking_number=m["tracking_number"], items=tuple(m["items"] or ()), detail=m["detail"],
                     detail_en=m["detail_en"], updated_at=m["updated_at"])

    async def seed_demo(self) -> int:
        """Load ``bot/demo_orders.jsonl`` into an empty order table (demo only)."""
        async with self.engine.begin() as conn:
            if await conn.scalar(select(func.count()).select_from(orders)):
                return 0
            text = resources.files("bot").joinpath("demo_orders.jsonl").read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            now = utcnow()
            await conn.execute(orders.insert(), [{**r, "updated_at": now} for r in rows])
        return len(rows)
