"""Editing the SLA policy over real HTTP, against the whole product (bot worker, intake, SQLite):
a ticket opened after ``PUT /api/sla`` gets the new due times, one opened before keeps its own; bad
input is refused whole with the field named; ``DELETE /api/sla/policy`` goes back to the defaults."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from tests_helpers import eventually

from gateway.db.schema import tickets
from gateway.models import Channel, CustomerRef, InboundMessage, utcnow
from gateway.runtime import Runtime

ADMIN = {"Authorization": "Bearer test-admin-token"}
NEW_FIRST, NEW_RESOLUTION = 50 * 60, 10 * 3600  # for every priority: whatever the intake decides


async def _ticket_for_new_customer(rt: Runtime, visitor: str) -> dict[str, Any]:
    """A web chat customer asks for a human; returns the ticket the bot worker opened."""
    msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=uuid.uuid4().hex,
                               conversation_key=visitor, text="转人工", sent_at=utcnow(),
                               customer=CustomerRef(channel=Channel.WEBCHAT, external_id=visitor))
    [result] = await rt.services.bus.ingest([msg])
    assert result.stream_id is not None

    async def opened() -> dict[str, Any] | None:
        async with rt.services.engine.connect() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.conversation_id == msg.conversation_id,
                                                            tickets.c.first_response_due.is_not(None)))).first()
        return dict(row._mapping) if row else None

    row: dict[str, Any] = await eventually(opened, timeout=20)
    return row


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_new_tickets_get_the_new_targets_existing_ones_keep_theirs(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    before = await _ticket_for_new_customer(rt, "v-before")
    default = await _json(await client.get("/api/sla", headers=ADMIN), 200)
    assert default["customized"] is False
    prio = f"P{before['priority']}"
    target = default["standard"][prio]
    assert before["first_response_due"] - before["created_at"] == timedelta(seconds=target["first_response_s"])

    # Bad input: refused whole (the valid profile part is not applied either), the field named.
    bad = await _json(await client.put("/api/sla", headers=ADMIN, json={
        "profile": "peak", "targets": {"P1": {"first_response_s": 7200, "resolution_s": 3600}}}), 400)
    assert bad["error"] == "bad_request" and bad["field"] == "targets.P1.first_response_s"
    assert bad["message"].startswith("targets.P1.first_response_s: 首次响应") and "/ first response" in bad["message"]
    assert (await _json(await client.get("/api/sla", headers=ADMIN), 200)) == default

    edited = await _json(await client.put("/api/sla", headers=ADMIN, json={
        "targets": {p: {"first_response_s": NEW_FIRST, "resolution_s": NEW_RESOLUTION} for p in default["standard"]},
        "warn_before_s": 600}), 200)
    assert edited["customized"] is True and edited["updated_by"] == "admin" and edited["profile"] == "standard"
    assert edited["standard"][prio] == {**target, "first_response_s": NEW_FIRST, "resolution_s": NEW_RESOLUTION}
    assert edited["peak"][prio]["first_response_s"] == NEW_FIRST * 2 and edited["warn_before_s"] == 600
    assert edited["targets"] == edited["standard"]

    after = await _ticket_for_new_customer(rt, "v-after")
    assert after["tier"] == "normal"
    created = after["created_at"]
    expected_first = timedelta(seconds=edited["standard"][f"P{after['priority']}"]["first_response_s"])
    assert after["first_response_due"] - created == expected_first
    assert after["resolution_due"] - created == timedelta(seconds=NEW_RESOLUTION)
    assert after["sla_next_check_at"] == after["first_response_due"] - timedelta(seconds=600)  # the new lead

    async with rt.services.engine.connect() as conn:  # the ticket opened before keeps its due times
        kept = (await conn.execute(select(tickets).where(tickets.c.id == before["id"]))).one()._mapping
    assert kept["first_response_due"] == before["first_response_due"]
    assert kept["resolution_due"] == before["resolution_due"]

    # The old request shape still works and answers in the old shape (plus the new fields).
    peak = await _json(await client.put("/api/sla", headers=ADMIN, json={"profile": "peak"}), 200)
    assert peak["profile"] == "peak" and peak["targets"] == peak["peak"] == edited["peak"]

    # Reset: the built-in targets again (for new tickets); the peak switch stays on.
    reset = await _json(await client.delete("/api/sla/policy", headers=ADMIN), 200)
    assert reset["customized"] is False and reset["profile"] == "peak"
    assert reset["standard"] == default["standard"] and reset["warn_before_s"] == default["warn_before_s"]
    assert (await _json(await client.get("/api/sla", headers=ADMIN), 200)) == reset
