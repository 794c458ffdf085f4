"""Every Redis key Huiliu uses, built in one place.

A prefix isolates deployments (and test runs) sharing one Redis. Hash tags ``{...}`` are not used:
the streams are independent keys, and nothing needs multi-key atomicity except the intake script,
whose two keys (dedupe marker and stream) would need a shared tag on Redis Cluster — noted in the README.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder. ``Keys("huiliu").inbound`` -> ``"huiliu:stream:in"``."""

    prefix: str = "huiliu"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- streams (at-least-once pipelines) ---
    @property
    def inbound(self) -> str:
        return self._k("stream", "in")

    @property
    def outbound(self) -> str:
        return self._k("stream", "out")

    def dead_letter(self, stream: str) -> str:
        """Dead-letter stream for entries of ``stream`` that kept failing."""
        return f"{stream}:dead"

    def errors(self, stream: str) -> str:
        """Hash entry id -> last error text, so a retried entry carries its history."""
        return f"{stream}:errors"

    # --- idempotency ---
    def dedupe(self, channel: str, external_id: str) -> str:
        return self._k("dedupe", channel, external_id)

    def delivered(self, outbound_message_id: str) -> str:
        return self._k("delivered", outbound_message_id)

    # --- per-conversation serialization ---
    def conversation_lock(self, conversation_id: str) -> str:
        return self._k("lock", "conv", conversation_id)

    # --- dialogue memory (last answer, offered quick replies; expires) ---
    def dialogue(self, conversation_id: str) -> str:
        return self._k("dialogue", conversation_id)

    # --- web chat ---
    def webchat_outbox(self, visitor_id: str) -> str:
        """Per-visitor stream of replies; SSE reads it with Last-Event-ID, so reconnects lose nothing."""
        return self._k("webchat", "out", visitor_id)

    # --- telegram long polling ---
    def telegram_offset(self, bot_id: str) -> str:
        return self._k("telegram", "offset", bot_id)

    # --- knowledge base change log (index sync across workers) ---
    @property
    def kb_changes(self) -> str:
        return self._k("kb", "changes")

    # --- live conversation events (pub/sub) ---
    def events_channel(self) -> str:
        return self._k("events")

    # --- ticketing ---
    def agent_presence(self, agent_id: str) -> str:
        """``online``/``away`` with a TTL: an agent whose heartbeats stop expires to offline."""
        return self._k("agent", "presence", agent_id)

    @property
    def agent_presence_index(self) -> str:
        """Sorted set agent id -> last heartbeat (epoch s): who to check without SCAN."""
        return self._k("agent", "presence", "index")

    @property
    def routing_lock(self) -> str:
        """Serialises every assignment (dispatcher plans, claims, transfers): capacity is never overshot."""
        return self._k("routing", "lock")

    @property
    def routing_kick(self) -> str:
        """Pub/sub channel: "something changed, plan now" (new ticket, agent online, ticket freed)."""
        return self._k("routing", "kick")

    @property
    def supervisor_alerts(self) -> str:
        """Stream of SLA warnings/breaches and permanent delivery failures for the supervisor queue."""
        return self._k("stream", "supervisor")

    @property
    def sla_scan_lock(self) -> str:
        return self._k("sla", "scan", "lock")

    # --- health ---
    def heartbeat(self, component: str) -> str:
        return self._k("heartbeat", component)
