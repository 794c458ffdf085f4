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

    # --- typing indicator ---
    def typing_throttle(self, conversation_id: str) -> str:
        """Set NX with a short TTL: at most one customer-typing event per conversation per window."""
        return self._k("typing", conversation_id)
    # --- end typing indicator ---

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

    # --- platform access tokens (one cache per account, shared by every process) ---
    def access_token(self, name: str) -> str:
        return self._k("access_token", name)

    def access_token_lock(self, name: str) -> str:
        return self._k("access_token", name, "lock")

    # --- wechat (Official Account) ---
    # --- wecom kf ---
    def wecom_cursor(self, open_kfid: str) -> str:
        """The ``kf/sync_msg`` ``next_cursor`` of one kf account, written after its page is on the stream."""
        return self._k("wecom", "cursor", open_kfid)

    def wecom_pull_lock(self, open_kfid: str) -> str:
        """Serialises pulls per kf account: overlapping callbacks must not pull the same cursor twice."""
        return self._k("wecom", "pull_lock", open_kfid)

    @property
    def wecom_pending(self) -> str:
        """Hash open_kfid -> latest callback token: a pull someone asked for and nobody finished yet."""
        return self._k("wecom", "pending")

    @property
    def wecom_accounts(self) -> str:
        """Set of kf accounts seen in callbacks: the periodic catch-up pull covers these."""
        return self._k("wecom", "accounts")

    @property
    def wecom_kick(self) -> str:
        """Pub/sub channel: "a pull is pending" (pullers also look at the pending hash on a timer)."""
        return self._k("wecom", "kick")

    def wecom_poll_gate(self, open_kfid: str) -> str:
        """Set NX with the poll interval as TTL: one catch-up pull per account per interval, deployment-wide."""
        return self._k("wecom", "poll_gate", open_kfid)

    # --- email ---
    def email_thread(self, conversation_key: str) -> str:
        """JSON reply context (subject, Message-ID, References) of an email conversation's latest mail."""
        return self._k("email", "thread", "conv", conversation_key)

    def email_thread_of(self, inbound_message_id: str) -> str:
        """JSON reply context of one inbound mail (the bot answers that mail, not the latest one)."""
        return self._k("email", "thread", "msg", inbound_message_id)

    def email_cursor(self, mailbox: str) -> str:
        """Hash ``uidvalidity``/``last_uid``: the IMAP poller's position in one mailbox folder."""
        return self._k("email", "cursor", mailbox)

    def email_poller_lock(self, mailbox: str) -> str:
        """Held by the one process polling a mailbox folder."""
        return self._k("email", "poller", mailbox)

    # --- marketplaces and signed webhook ---
    def webhook_replay(self, signature: str) -> str:
        """Set after a signed webhook push was accepted: the same signed request again is a replay."""
        return self._k("webhook", "seen", signature)

    def feed_lock(self, feed: str) -> str:
        """Held by the one process consuming an exclusive marketplace feed (PDD socket, JD cursor)."""
        return self._k("feed", feed, "lock")

    def feed_cursor(self, feed: str) -> str:
        """A feed's position the platform does not keep for us (JD: end of the last stored window)."""
        return self._k("feed", feed, "cursor")

    def feed_status(self, feed: str) -> str:
        """Hash: state ok|error, error text, at — how an operator sees bad credentials."""
        return self._k("feed", feed, "status")

    # --- outbound limits ---
    def outbound_rate(self, scope: str) -> str:
        """GCRA theoretical arrival time (epoch ms) of one outbound rate, e.g. ``telegram:chat:42``."""
        return self._k("outlimit", "rate", scope)

    def outbound_window(self, conversation_id: str) -> str:
        """Hash ``start``/``sent``: replies sent in a WeChat/WeCom conversation's current reply window."""
        return self._k("outlimit", "window", conversation_id)

    @property
    def outbound_delayed(self) -> str:
        """Sorted set outbound message id -> due time (epoch ms): replies waiting to be retried."""
        return self._k("outbound", "delayed")

    @property
    def outbound_delayed_payloads(self) -> str:
        """Hash outbound message id -> its stream fields (JSON) while it waits in ``outbound_delayed``."""
        return self._k("outbound", "delayed", "payloads")

    def outbound_sending(self, outbound_message_id: str) -> str:
        """In-flight lock: held by the one worker sending this reply right now."""
        return self._k("outbound", "sending", outbound_message_id)

    def outbound_failed(self, outbound_message_id: str) -> str:
        """Set once a reply failed permanently (handed to an agent): later copies are dropped."""
        return self._k("outbound", "failed", outbound_message_id)

    # --- customer identity linking ---

    # --- console sessions ---
    def console_session(self, session_hash: str) -> str:
        """Hash of one console login (who, csrf token, times). Keyed by sha256 of the cookie's session
        id, so a Redis dump or ``KEYS`` listing holds no usable cookies."""
        return self._k("console", "session", session_hash)

    def console_sessions_of(self, principal_id: str) -> str:
        """Set of one staff member's session hashes: all of them end on a password change or deactivation."""
        return self._k("console", "sessions_of", principal_id)

    def login_failures(self, scope: str, subject: str) -> str:
        """Failed console logins in the current window, per ``user`` (hashed username) or ``ip``."""
        return self._k("console", "login_failures", scope, subject)
    # --- end console sessions ---

    # --- health ---
    def heartbeat(self, component: str) -> str:
        return self._k("heartbeat", component)
