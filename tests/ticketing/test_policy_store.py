"""PolicyStore against real SQLite and PostgreSQL: admin SLA overrides persist in ``app_settings``,
every process sees them, ``current_sla`` applies them (VIP derived, peak factor), reset goes back to
the configured policy, and a hand-broken row falls back instead of failing intake."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import app_settings
from ticketing.policy import POLICY_KEY, PolicyStore, TicketingPolicy
from ticketing.priority import Priority, Tier
from ticketing.sla import Profile, SlaTargets
from ticketing.sla_settings import parse_change

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
CONFIGURED = TicketingPolicy.from_settings(warn_before_min=20, peak_factor=3.0)


async def test_overrides_persist_and_apply_to_new_policies(engine: AsyncEngine) -> None:
    store = PolicyStore(engine, CONFIGURED)
    before = await store.describe()
    assert before["customized"] is False and before["updated_at"] is None and before["updated_by"] is None
    assert before["peak_factor"] == 3.0 and before["warn_before_s"] == 1200
    assert before["standard"]["P0"] == {"first_response_s": 600, "next_response_s": 600, "resolution_s": 14_400}
    assert before["peak"]["P0"] == {"first_response_s": 1800, "next_response_s": 1800, "resolution_s": 43_200}
    assert before["targets"] == before["standard"]
    assert before["vip"] == {"first_response_factor": 0.5, "next_response_factor": 0.5, "resolution_factor": 1.0}

    change = parse_change({"targets": {"P0": {"first_response_s": 900}, "P3": {"resolution_s": 4 * 86_400}},
                           "peak_factor": 1.5, "warn_before_s": 300}, (await store.state()).settings)
    assert change.settings is not None
    await store.set_policy(change.settings, actor="admin", now=NOW)

    # Another process (a fresh store on the same database) sees the overrides.
    other = PolicyStore(engine, CONFIGURED)
    after = await other.describe()
    assert after["customized"] is True and after["updated_by"] == "admin"
    assert datetime.fromisoformat(after["updated_at"]) == NOW
    assert after["peak_factor"] == 1.5 and after["warn_before_s"] == 300
    assert after["standard"]["P0"]["first_response_s"] == 900 and after["peak"]["P0"]["first_response_s"] == 1350
    assert after["standard"]["P3"]["resolution_s"] == 4 * 86_400
    assert after["standard"]["P1"] == before["standard"]["P1"]  # untouched priorities keep their targets
    sla = await other.current_sla()
    assert sla.profile is Profile.STANDARD and sla.warn_before == timedelta(minutes=5)
    assert sla.targets_for(Priority.P0, Tier.NORMAL, None).first_response == timedelta(minutes=15)
    assert sla.targets_for(Priority.P0, Tier.VIP, None) == SlaTargets(  # VIP: half the response times
        timedelta(minutes=7, seconds=30), timedelta(minutes=5), timedelta(hours=4))

    # The profile switch and the overrides combine; both can go in one write.
    await other.set_policy(None, profile=Profile.PEAK, actor="ops", now=NOW + timedelta(minutes=1))
    peak = await store.current_sla()
    assert peak.profile is Profile.PEAK
    assert peak.targets_for(Priority.P0, Tier.NORMAL, None).first_response == timedelta(minutes=22, seconds=30)
    described = await store.describe()
    assert described["profile"] == "peak" and described["targets"] == described["peak"]
    assert described["updated_by"] == "admin"  # a bare profile switch does not touch the overrides


async def test_current_sla_inside_a_transaction_uses_the_callers_connection(engine: AsyncEngine) -> None:
    store = PolicyStore(engine, TicketingPolicy())
    change = parse_change({"targets": {"P2": {"first_response_s": 3600}}}, (await store.state()).settings)
    await store.set_policy(change.settings, profile=Profile.PEAK, actor="admin", now=NOW)
    async with engine.begin() as conn:
        await conn.execute(insert(app_settings).values(key="other", value=1, updated_at=NOW, updated_by="t"))
        # SQLite has one pooled connection: a second one here would wait forever.
        sla = await asyncio.wait_for(store.current_sla(conn), timeout=10)
    assert sla.profile is Profile.PEAK
    assert sla.targets_for(Priority.P2, Tier.NORMAL, None).first_response == timedelta(hours=2)


async def test_reset_returns_to_the_configured_policy(engine: AsyncEngine) -> None:
    store = PolicyStore(engine, CONFIGURED, default_profile=Profile.STANDARD)
    configured = await store.describe()
    assert await store.reset_policy(actor="admin") is False  # nothing stored yet
    change = parse_change({"profile": "peak", "warn_before_s": 60, "targets": {"P1": {"resolution_s": 3600}}},
                          (await store.state()).settings)
    await store.set_policy(change.settings, profile=change.profile, actor="admin", now=NOW)
    assert (await store.describe())["standard"]["P1"]["resolution_s"] == 3600
    assert await store.reset_policy(actor="admin") is True
    after = await store.describe()
    assert after["profile"] == "peak"  # reset is about targets; the 双11 switch stays where it is
    assert {k: after[k] for k in ("standard", "peak", "peak_factor", "warn_before_s", "customized", "updated_at")} == {
        k: configured[k] for k in ("standard", "peak", "peak_factor", "warn_before_s", "customized", "updated_at")}
    assert (await store.current_sla()).warn_before == timedelta(minutes=20)


async def test_a_broken_stored_row_falls_back_to_the_configured_policy(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(app_settings).values(
            key=POLICY_KEY, value={"targets": {"P0": {"first_response_s": -5}}}, updated_at=NOW, updated_by="sql"))
    store = PolicyStore(engine, CONFIGURED)
    sla = await store.current_sla()
    assert sla.targets_for(Priority.P0, Tier.NORMAL, None).first_response == timedelta(minutes=10)
    described = await store.describe()
    assert described["customized"] is False and described["warn_before_s"] == 1200
