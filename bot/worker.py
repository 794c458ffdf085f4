"""The bot worker: consumes the inbound stream, keeps the transcript, answers or escalates.

One message per conversation at a time (a short Redis lock), so replies keep the customer's order
even with several workers. Every effect is idempotent — the transcript row and the reply carry ids
derived from the inbound message — so a redelivered or reclaimed entry never answers twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.replies import language_of
from bot.reply import BotReply
from gateway.db.conversations import ConversationStore, insert_inbound, insert_outbound, read_state, set_sentiment
from gateway.keys import Keys
from gateway.models import (
    ConversationEvent,
    ConversationState,
    EventKind,
    InboundMessage,
    OutboundMessage,
)
from gateway.redis_lock import TokenLocks
from gateway.streams import PoisonMessage, StreamBus
from ticketing import csat
from ticketing.escalation import EscalationReason, TicketStore, escalate_in
from ticketing.escalator import RECENT_MESSAGES, Escalator, score_json
from ticketing.identity_links import link_on_message
from ticketing.live import kick_router, publish
from ticketing.sentiment import SentimentScorer
from ticketing.service import CustomerTurn, TicketService

log = logging.getLogger(__name__)



class Bot(Protocol):
    async def reply(self, msg: InboundMessage) -> BotReply: ...


class ConversationBusy(Exception):
    """Another worker holds the conversation too long; the entry is retried later."""


def reply_id(inbound_id: str, n: int = 0) -> str:
    return f"out_{inbound_id.removeprefix('in_')}_{n}"


class BotWorker:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: Keys,
        bus: StreamBus,
        conversations: ConversationStore,
        tickets: TicketStore,
        bot: Bot,
        clock: Callable[[], datetime],
        ticket_service: TicketService | None = None,
        escalator: Escalator | None = None,
        scorer: SentimentScorer | None = None,
        lock_ttl_ms: int = 30_000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.bus = bus
        self.conversations = conversations
        self.tickets = tickets
        self.bot = bot
        self.clock = clock
        self.ticket_service = ticket_service
        self.escalator = escalator
        self.scorer = scorer
        self.lock_ttl_ms = lock_ttl_ms
        self._locks = TokenLocks(redis)

    async def handle(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        """Stream handler (see ``StreamConsumer``)."""
        try:
            msg = InboundMessage.model_validate_json(fields[b"m"])
        except (KeyError, ValidationError) as exc:
            raise PoisonMessage(f"unreadable inbound entry: {exc}") from exc
        async with self._conversation_lock(msg.conversation_id):
            await self.process(msg)

    async def process(self, msg: InboundMessage) -> OutboundMessage | None:
        """Record, decide, reply (returns the last reply message). All database writes of one message
        commit together."""
        if msg.automated is not None:
            await self._record_automated(msg)
            return None
        # An order number that exists links the writer to its customer (proof, never a guess); first,
        # so a tier it brings counts if this message escalates. Cheap: the database only on a number.
        await link_on_message(self.conversations.engine, msg, self.clock())
        conv_id = msg.conversation_id
        data: dict[str, object] = {"text": msg.text[:500]}
        if (await self.conversations.state(conv_id) or ConversationState.BOT) != ConversationState.BOT:
            # Messages that reach ticketing are scored as they arrive (agents see the mood); messages
            # the bot answers are scored only if the conversation escalates (see _score_recent), which
            # keeps an encoder pass off the FAQ hot path.
            sentiment = await self._score(msg.text)
            if sentiment:
                data["sentiment"] = sentiment
            # Queued, with an agent, or resolved: the ticket decides (a resolved ticket records a CSAT
            # rating or reopens when the customer writes within the window; after it, or after a
            # hand-back, the bot answers).
            async with self.conversations.engine.begin() as conn:
                await insert_inbound(conn, msg, sentiment=sentiment)
                turn = (await self.ticket_service.on_customer_message(conn, conv_id, self.clock(), msg.text)
                        if self.ticket_service else CustomerTurn(True))
            if turn.human:
                # The bot stays silent; the message is in the transcript and on the agents' live view.
                for out in turn.replies:
                    await self.bus.send(out)
                live = [ConversationEvent(kind=EventKind.MESSAGE_RECEIVED, conversation_id=conv_id,
                                          message_id=msg.message_id, data={**data, **(turn.event_data or {})})]
                if turn.event_data and "csat" in turn.event_data:
                    live.append(ConversationEvent(kind=EventKind.CSAT_RECORDED, conversation_id=conv_id,
                                                  data=turn.event_data))
                await self._publish(live)
                return turn.replies[-1] if turn.replies else None
        received = ConversationEvent(kind=EventKind.MESSAGE_RECEIVED, conversation_id=conv_id,
                                     message_id=msg.message_id, data=data)
        if csat.is_payload(msg.text):
            # A late or repeated rating button press: recorded, never answered (the bot would not
            # understand it and would open a ticket).
            async with self.conversations.engine.begin() as conn:
                await insert_inbound(conn, msg)
            await self._publish([received])
            return None
        # Deciding (retrieval, dialogue engine) happens before the transaction opens, so no write lock
        # is held while we think.
        reply = await self.bot.reply(msg)
        outs = [
            OutboundMessage(
                message_id=reply_id(msg.message_id, n),
                channel=msg.channel,
                conversation_key=msg.conversation_key,
                recipient=msg.customer,
                text=part.text,
                quick_replies=part.quick_replies,
                author="bot",
                in_reply_to=msg.message_id,
                metadata={k: v for k, v in {"article_id": reply.article_id, "score": reply.score,
                                            "engine": reply.engine}.items() if v is not None},
            )
            for n, part in enumerate(reply.parts)
        ]
        events = [received]
        escalated = False
        scores = await self._score_recent(msg) if reply.escalate is not None else {}
        async with self.conversations.engine.begin() as conn:
            await insert_inbound(conn, msg, sentiment=scores.pop(msg.message_id, None))
            for message_id, score in scores.items():
                await set_sentiment(conn, message_id, score)
            if await read_state(conn, conv_id) != ConversationState.BOT:
                return None  # taken over while we were deciding: the human answers, not the bot
            if reply.escalate is not None:
                now = self.clock()
                plan = None
                summary = msg.text or "(attachment)"
                details = {"message_id": msg.message_id, **reply.details}
                if self.escalator is not None:
                    esc, plan = await self.escalator.escalate(
                        conn, conversation_id=conv_id, channel=msg.channel,
                        customer_external_id=msg.customer.external_id, reason=reply.escalate, summary=summary,
                        now=now, language=language_of(msg.text, msg.customer.language or "zh"), details=details)
                    if plan is not None:  # tell the customer how long a human will take
                        outs.append(OutboundMessage(
                            message_id=reply_id(msg.message_id, len(outs)), channel=msg.channel,
                            conversation_key=msg.conversation_key, recipient=msg.customer, text=plan.wait_notice,
                            author="bot", in_reply_to=msg.message_id, metadata={"ticket_id": esc.ticket.id}))
                else:
                    esc = await escalate_in(conn, conv_id, reply.escalate, summary=summary, now=now, details=details)
                escalated = esc.created
                triage = ({"priority": int(plan.priority.priority), "skills": sorted(plan.skills)}
                          if plan is not None else {})
                events.append(ConversationEvent(kind=EventKind.ESCALATED, conversation_id=conv_id,
                                                message_id=msg.message_id,
                                                data={"ticket_id": esc.ticket.id, "reason": reply.escalate.value,
                                                      "status": "new", "assignee_id": None, **triage}))
            for out in outs:
                await insert_outbound(conn, out)
        if escalated:
            await kick_router(self.redis, self.keys)
        for out in outs:  # after the commit: a reply is never sent for an unrecorded message
            await self.bus.send(out)
            events.append(ConversationEvent(kind=EventKind.BOT_REPLIED, conversation_id=conv_id,
                                            message_id=out.message_id,
                                            data={"article_id": reply.article_id, "engine": reply.engine}))
        await self._publish(events)
        return outs[-1] if outs else None

    async def _record_automated(self, msg: InboundMessage) -> None:
        """Machine mail (auto-reply, bounce, list, our own mail looping back): stored and shown to agents,
        never answered (answering an out-of-office starts a mail loop) and never a ticket transition. A
        bounce in an existing conversation no human is on means our reply did not arrive: it opens a
        ticket, with the failed recipient and status in the summary (the message text)."""
        conv_id = msg.conversation_id
        events = [ConversationEvent(kind=EventKind.MESSAGE_RECEIVED, conversation_id=conv_id,
                                    message_id=msg.message_id, data={"text": msg.text[:500],
                                                                     "automated": msg.automated})]
        escalated = False
        async with self.conversations.engine.begin() as conn:
            state = await read_state(conn, conv_id)
            inserted = await insert_inbound(conn, msg)
            if (inserted and msg.automated == "bounce" and state is not None
                    and state not in (ConversationState.QUEUED, ConversationState.AGENT)):
                esc = await escalate_in(conn, conv_id, EscalationReason.CHANNEL_FAILURE, summary=msg.text,
                                        now=self.clock(), details={"message_id": msg.message_id, "bounce": True})
                escalated = esc.created
                events.append(ConversationEvent(kind=EventKind.ESCALATED, conversation_id=conv_id,
                                                message_id=msg.message_id,
                                                data={"ticket_id": esc.ticket.id, "status": "new",
                                                      "reason": EscalationReason.CHANNEL_FAILURE.value,
                                                      "assignee_id": None}))
        if escalated:
            await kick_router(self.redis, self.keys)
        await self._publish(events)

    async def _score(self, text: str) -> dict[str, object] | None:
        if self.scorer is None or not text.strip():
            return None
        return score_json(await asyncio.to_thread(self.scorer.score, text))

    async def _score_recent(self, msg: InboundMessage) -> dict[str, dict[str, object]]:
        """Scores for the escalating message and the customer's recent unscored ones (the priority
        reads the last few), in one encoder batch, before the transaction opens."""
        if self.scorer is None:
            return {}
        pending = [(msg.message_id, msg.text)] if msg.text.strip() else []
        pending += [(mid, text) for mid, text in
                    await self.conversations.unscored_customer_messages(msg.conversation_id, RECENT_MESSAGES)
                    if mid != msg.message_id]
        if not pending:
            return {}
        scores = await asyncio.to_thread(self.scorer.score_many, [text for _, text in pending])
        return {mid: score_json(score) for (mid, _), score in zip(pending, scores, strict=True)}

    async def _publish(self, events: list[ConversationEvent]) -> None:
        await publish(self.redis, self.keys, events)  # live views only; the transcript is the record

    def _conversation_lock(self, conversation_id: str, wait_s: float = 10.0) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(self.keys.conversation_lock(conversation_id), self.lock_ttl_ms, wait_s=wait_s,
                                max_delay_s=0.02, busy=lambda: ConversationBusy(conversation_id))
