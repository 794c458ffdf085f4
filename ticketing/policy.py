"""The ticketing policies in force: the peak-season (双11) switch and the SLA targets an admin edits.

Policies are plain frozen values (``SlaPolicy``, ``PriorityPolicy``, ``SkillMap``) passed to pure
functions; this module only decides *which* SLA policy applies now. Two rows of ``app_settings`` hold
the runtime choices, so every process sees the same policy and it survives restarts:

- ``sla_profile``: ``"standard"`` or ``"peak"`` (absent: the configured ``SLA_PROFILE``);
- ``sla_policy``: the admin's default targets, peak factor and warning lead
  (``ticketing.sla_settings``; absent: the configured policy -- built-in targets, ``SLA_PEAK_FACTOR``,
  ``SLA_WARN_BEFORE_MIN``). VIP targets are derived from the defaults, never stored.

Changes apply to new SLA clocks only. Due times are computed once and stored on the ticket: the
first-response and resolution dues when the ticket is opened (``intake.plan_ticket`` via the
escalator), a next-response due when a customer message starts that clock (``TicketService``), and a
reopened ticket's next-response due when it reopens. Tickets already open keep every due time they
have, so nothing is breached (or un-breached) retroactively. The SLA scheduler reads the policy on
each scan only to place *warnings* (``warn_before``, at most half the target of the ticket's priority,
both as the policy says now):
an existing ticket's next warning therefore follows the new lead time from its next scheduled check
on, while its due and breach instants never move.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.engine import insert_ignore
from gateway.db.schema import app_settings
from ticketing.priority import PriorityPolicy
from ticketing.skills import SkillMap
from ticketing.sla import DEFAULT_WARN_BEFORE, Profile, SlaPolicy
from ticketing.sla_settings import VIP_RESPONSE_FACTOR, SlaSettings, SlaSettingsError, from_json, targets_json

log = logging.getLogger(__name__)

PROFILE_KEY = "sla_profile"
POLICY_KEY = "sla_policy"


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


@dataclass(frozen=True, slots=True)
class SlaState:
    """What ``app_settings`` says now: the profile, the settings in force (stored or configured), and
    who stored the overrides when (None: no overrides, the configured policy applies)."""

    profile: Profile
    settings: SlaSettings
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def customized(self) -> bool:
        return self.updated_at is not None


class PolicyStore:
    """Reads and writes the SLA profile and overrides; ``current_sla()`` is what intake and the
    scheduler use (see the module docstring for what a change does to tickets already open)."""

    def __init__(self, engine: AsyncEngine, policy: TicketingPolicy, default_profile: Profile = Profile.STANDARD):
        self.engine = engine
        self.policy = policy
        self.default_profile = default_profile
        self._bad_stored: Any = None  # the stored document last found invalid (logged once, not per ticket)

    @property
    def configured(self) -> SlaSettings:
        """The settings without overrides: built-in targets, ``SLA_PEAK_FACTOR``, ``SLA_WARN_BEFORE_MIN``."""
        return SlaSettings.of(self.policy.sla, self.policy.peak_factor)

    async def state(self, conn: AsyncConnection | None = None) -> SlaState:
        """Profile and settings in one query. Pass the caller's connection when inside a transaction
        (SQLite runs with one pooled connection, so opening a second one there would wait forever)."""
        if conn is None:
            async with self.engine.connect() as own:
                return await self.state(own)
        rows = {r.key: r for r in await conn.execute(
            select(app_settings.c.key, app_settings.c.value, app_settings.c.updated_at, app_settings.c.updated_by)
            .where(app_settings.c.key.in_([PROFILE_KEY, POLICY_KEY])))}
        profile_row, policy_row = rows.get(PROFILE_KEY), rows.get(POLICY_KEY)
        profile = self.default_profile
        if profile_row is not None and isinstance(profile_row.value, str) and profile_row.value in set(Profile):
            profile = Profile(profile_row.value)
        if policy_row is not None:
            try:
                return SlaState(profile, from_json(policy_row.value), policy_row.updated_at, policy_row.updated_by)
            except SlaSettingsError as exc:
                # Only a hand-edited row gets here (writes are validated): keep serving tickets with the
                # configured policy rather than failing every intake.
                if policy_row.value != self._bad_stored:
                    log.warning("ignoring invalid stored SLA settings (%s); using the configured policy", exc)
                    self._bad_stored = policy_row.value
        return SlaState(profile, self.configured)

    async def profile(self, conn: AsyncConnection | None = None) -> Profile:
        """The profile in force (same connection rule as ``state``)."""
        return (await self.state(conn)).profile

    async def set_profile(self, profile: Profile, *, actor: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await _put(conn, PROFILE_KEY, profile.value, actor=actor, now=now)

    async def set_policy(self, settings: SlaSettings | None = None, *, profile: Profile | None = None,
                         actor: str, now: datetime) -> None:
        """Store validated ``settings`` (``sla_settings.parse_change``) and/or switch ``profile``, in one
        transaction. Applies to new tickets and new clocks only (module docstring)."""
        async with self.engine.begin() as conn:
            if settings is not None:
                await _put(conn, POLICY_KEY, settings.to_json(), actor=actor, now=now)
            if profile is not None:
                await _put(conn, PROFILE_KEY, profile.value, actor=actor, now=now)

    async def reset_policy(self, *, actor: str) -> bool:
        """Drop the overrides: the configured targets, peak factor and warning lead apply again (to new
        tickets). The profile switch is left as it is. False when there was nothing to reset."""
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(app_settings).where(app_settings.c.key == POLICY_KEY))
        if done.rowcount:
            # The row (and its updated_by) is gone; the log keeps who went back to the defaults.
            log.info("SLA overrides reset to the configured policy by %s", actor)
        return bool(done.rowcount)

    async def current_sla(self, conn: AsyncConnection | None = None) -> SlaPolicy:
        """The SLA policy for tickets opened now (same connection rule as ``state``)."""
        return sla_policy(self.policy.sla, await self.state(conn))

    async def describe(self) -> dict[str, Any]:
        """Everything the SLA page shows: ``targets`` in force (the profile's), the effective
        ``standard`` and ``peak`` targets, factor, warning lead, the VIP rule and who changed what."""
        state = await self.state()
        standard = state.settings.apply(self.policy.sla)
        peak = standard.peak(state.settings.peak_factor)
        return {
            "profile": state.profile.value,
            "peak_factor": state.settings.peak_factor,
            "warn_before_s": round(state.settings.warn_before.total_seconds()),
            "targets": targets_json((peak if state.profile is Profile.PEAK else standard).defaults),
            "standard": targets_json(standard.defaults),
            "peak": targets_json(peak.defaults),
            "vip": {"first_response_factor": VIP_RESPONSE_FACTOR, "next_response_factor": VIP_RESPONSE_FACTOR,
                    "resolution_factor": 1.0},
            "customized": state.customized,
            "updated_at": state.updated_at.isoformat() if state.updated_at else None,
            "updated_by": state.updated_by,
        }


def sla_policy(base: SlaPolicy, state: SlaState) -> SlaPolicy:
    """``base`` (the configured policy) with the state's settings, in the state's profile."""
    standard = state.settings.apply(base)
    return standard.peak(state.settings.peak_factor) if state.profile is Profile.PEAK else standard


async def _put(conn: AsyncConnection, key: str, value: Any, *, actor: str, now: datetime) -> None:
    """Upsert one ``app_settings`` row (portable: insert-if-absent, then update)."""
    await conn.execute(insert_ignore(conn, app_settings, ["key"]).values(
        key=key, value=value, updated_at=now, updated_by=actor))
    await conn.execute(update(app_settings).where(app_settings.c.key == key).values(
        value=value, updated_at=now, updated_by=actor))


__all__ = ["DEFAULT_WARN_BEFORE", "POLICY_KEY", "PROFILE_KEY", "PolicyStore", "SlaState", "TicketingPolicy",
           "sla_policy"]
