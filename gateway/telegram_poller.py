"""Telegram long polling for local use: persist each batch, then advance the offset.

getUpdates confirms earlier updates only when called with a higher offset, and we call it with the
next offset only after the batch is on our stream — so a crash re-fetches, and dedupe absorbs it.
"""

from __future__ import annotations

import asyncio
import json
import logging

from connectors.base import PayloadError
from gateway.services import Services

log = logging.getLogger(__name__)


async def poll_telegram(services: Services, connector: object, stop: asyncio.Event, timeout: int = 25) -> None:
    bot_id = str(getattr(connector, "bot_id", "bot"))
    offset_key = services.keys.telegram_offset(bot_id)
    await connector.delete_webhook()  # type: ignore[attr-defined]  # getUpdates is refused while a webhook is set
    while not stop.is_set():
        try:
            raw_offset = await services.redis.get(offset_key)
            offset = int(raw_offset) if raw_offset else None
            updates: list[bytes] = await connector.get_updates(offset, timeout)  # type: ignore[attr-defined]
            highest = await persist_updates(services, connector, updates)
            if highest is not None:
                await services.redis.set(offset_key, highest + 1)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("telegram polling failed; retrying in 3 s")
            await asyncio.sleep(3)


async def persist_updates(services: Services, connector: object, updates: list[bytes]) -> int | None:
    """Put every update on the stream; a malformed one goes to the dead-letter stream, not lost."""
    highest: int | None = None
    for raw in updates:
        update_id = int(json.loads(raw)["update_id"])
        try:
            messages = connector.parse(raw)  # type: ignore[attr-defined]
        except PayloadError as exc:
            log.error("unparseable telegram update %s: %s", update_id, exc)
            await services.redis.xadd(
                services.keys.dead_letter(services.keys.inbound),
                {"raw": raw, "error": f"telegram parse: {exc}", "source_id": f"telegram:{update_id}"},
            )
        else:
            await services.bus.ingest(messages)
        highest = update_id if highest is None else max(highest, update_id)
    return highest
