"""The ticketing policies in force, including the peak-season (双11) switch an admin flips at runtime.

Policies are plain frozen values (``SlaPolicy``, ``PriorityPolicy``, ``SkillMap``) passed to pure
functions; this module only decides *which* SLA profile applies now. The switch is a row in
``app_settings`` so every process sees the same profile and it survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.engine import insert_ignore
from gateway.db.schema import app_settings
from ticketing.priority import PriorityPolicy
from ticketing.skills import SkillMap
from ticketing.sla import DEFAULT_WARN_BEFORE, Profile, SlaPolicy

PROFILE_KEY = "sla_profile"


@dataclass(frozen=True, slots=True)
class TicketingPolicy:
    sla: SlaPolicy = field(default_factory=SlaPolicy.standard)
    peak_factor: float = 2.0
    priority: PriorityPolicy = field(default_factory=PriorityPolicy)
    skills: SkillMap = field(default_factory=SkillMap)
    reopen_window: timedelta = timedelta(days=7)
    claim_cap_per_day: int = 20
    ask_csat: bool = True

    @classmethod
    def from_settings(cls, *, warn_before_min: int | None = None, peak_factor: float | None = None,
                      reopen_days: int | None = None, claim_cap: int | None = None,
                      ask_csat: bool = True) -> TicketingPolicy:
        sla = SlaPolicy.standard()
        if warn_before_min is not None:
            sla = SlaPolicy(defaults=sla.defaults, targets=sla.targets,
                            warn_before=timedelta(minutes=warn_before_min), calendar=sla.calendar)
        return cls(
            sla=sla,
            peak_factor=peak_factor or 2.0,
            reopen_window=timedelta(days=reopen_days) if reopen_days is not None else timedelta(days=7),
            claim_cap_per_day=claim_cap if claim_cap is not None else 20,
            ask_csat=ask_csat,
        )

    def sla_for(self, profile: Profile) -> SlaPolicy:
        return self.sla.peak(self.peak_factor) if profile is Profile.PEAK else self.sla


class PolicyStore:
    """Reads and flips the SLA profile; ``current_sla()`` is what the intake and the scheduler use."""

    def __init__(self, engine: AsyncEngine, policy: TicketingPolicy, default_profile: Profile = Profile.STANDARD):
        self.engine = engine
        self.policy = policy
        self.default_profile = default_profile

    async def profile(self, conn: AsyncConnection | None = None) -> Profile:
        """The profile in force; pass the caller's connection when inside a transaction (SQLite runs
        with one pooled connection, so opening a second one there would wait forever)."""
        if conn is None:
            async with self.engine.connect() as own:
                return await self.profile(own)
        value = await conn.scalar(select(app_settings.c.value).where(app_settings.c.key == PROFILE_KEY))
        try:
            return Profile(value) if isinstance(value, str) else self.default_profile
        except ValueError:
            return self.default_profile

    async def set_profile(self, profile: Profile, *, actor: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(conn, app_settings, ["key"]).values(
                key=PROFILE_KEY, value=profile.value, updated_at=now, updated_by=actor))
            await conn.execute(update(app_settings).where(app_settings.c.key == PROFILE_KEY).values(
                value=profile.value, updated_at=now, updated_by=actor))

    async def current_sla(self, conn: AsyncConnection | None = None) -> SlaPolicy:
        return self.policy.sla_for(await self.profile(conn))

    async def describe(self) -> dict[str, Any]:
        profile = await self.profile()
        sla = self.policy.sla_for(profile)
        return {
            "profile": profile.value,
            "peak_factor": self.policy.peak_factor,
            "warn_before_s": int(sla.warn_before.total_seconds()),
            "targets": {
                p.name: {"first_response_s": int(t.first_response.total_seconds()),
                         "next_response_s": int(t.next_response.total_seconds()),
                         "resolution_s": int(t.resolution.total_seconds())}
                for p, t in sla.defaults.items()
            },
        }


__all__ = ["DEFAULT_WARN_BEFORE", "PROFILE_KEY", "PolicyStore", "TicketingPolicy"]
