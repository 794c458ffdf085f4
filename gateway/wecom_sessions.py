"""What WeCom 微信客服 events do to our conversations and tickets (the rules are the pure
``connectors/wecom_kf_states.py``; this module applies them).

* A WeCom servicer took over in the WeCom client (``session_status_change`` 1/2/4, or an origin-5 message):
  our bot must stop answering, so a conversation the bot owns is escalated (reason ``channel_takeover``);
  an open Huiliu ticket gets a note instead. What the servicer wrote is kept in our transcript as an agent
  message (never sent by us: WeCom already delivered it), so staff see the whole exchange.
* WeCom ended the session (change 3): a takeover ticket is handed back (the bot answers the customer's next
  message, which opens a new WeCom session); a ticket our own agents hold only gets a note.
* ``msg_send_fail``: a reply ``send_msg`` had accepted never reached the customer: escalated like a
  permanent delivery failure (or noted on the open ticket).

Every effect is idempotent (a re-pull after a crash applies the same events again): escalation finds the
open ticket, transcript rows have ids derived from WeCom's ``msgid``, and a handed-back ticket is closed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.wecom_kf import KfEvent
from connectors.wecom_kf_states import KfState, SessionEffect, effect_of, kf_state_after, ours_for
from gateway.db.conversations import insert_outbound, read_state
from gateway.db.engine import insert_ignore
from gateway.db.schema import conversations, tickets
from gateway.models import (
    Channel,
    ConversationEvent,
    ConversationState,
    CustomerRef,
    EventKind,
    OutboundMessage,
    utcnow,
)
from gateway.services import Services
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.lifecycle import InvalidTransition
from ticketing.live import kick_router, publish
from ticketing.ticket_rows import TicketConflict

log = logging.getLogger(__name__)

TAKEOVER_SUMMARY = "微信客服接待人员已在企业微信中接入 / a WeCom servicer took over in the WeCom client"
ENDED_NOTE = ("微信客服会话已在企业微信中结束，客户再次发消息前无法回复 / the WeCom session was ended; "
              "replies fail until the customer writes again")


def servicer_message_id(msgid: str) -> str:
    """Transcript id of a servicer's message (fits the 64-char column whatever WeCom's msgid length)."""
    return f"out_wk_{hashlib.sha256(msgid.encode()).hexdigest()[:24]}"


async def ensure_conversation(conn: AsyncConnection, conversation_id: str, key: str, external_userid: str) -> None:
    """Create the conversation row if the first thing we hear of it is an event (the customer's message
    may still be on the stream): tickets and transcript rows reference it."""
    now = utcnow()
    await conn.execute(insert_ignore(conn, conversations, ["id"]).values(
        id=conversation_id, channel=Channel.WECOM.value, conversation_key=key, customer_external_id=external_userid,
        customer_name=None, state=ConversationState.BOT.value, created_at=now, updated_at=now))


async def _open_ticket(conn: AsyncConnection, conversation_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(tickets).where(tickets.c.open_key == conversation_id))).first()
    return dict(row._mapping) if row else None


class WeComSessions:
    """Applies kf events; one instance per puller."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def apply(self, event: KfEvent) -> None:
        """Apply one event (events without a customer, e.g. ``servicer_status_change``, change nothing)."""
        key = event.conversation_key
        effect = effect_of(event.kind, event.change_type)
        if key is None or event.external_userid is None:
            if effect is not SessionEffect.NONE:
                log.warning("wecom kf %s event %s names no customer; ignored", event.kind, event.msgid)
            return
        conv_id = f"{Channel.WECOM.value}:{key}"
        if event.kind == "servicer_message":
            await self._record_servicer_message(event, conv_id, key)
        if effect is SessionEffect.HUMAN_TOOK_OVER:
            await self._took_over(event, conv_id, key)
        elif effect is SessionEffect.ENDED:
            await self._ended(event, conv_id)
        elif effect is SessionEffect.DELIVERY_FAILED:
            await self._delivery_failed(event, conv_id, key)
        elif event.kind not in {"enter_session", "servicer_status_change"}:
            log.info("wecom kf event %s (%s) on %s: nothing to do", event.kind, event.msgid, conv_id)

    async def _record_servicer_message(self, event: KfEvent, conv_id: str, key: str) -> None:
        assert event.external_userid is not None
        out = OutboundMessage(
            message_id=servicer_message_id(event.msgid), channel=Channel.WECOM, conversation_key=key,
            recipient=CustomerRef(channel=Channel.WECOM, external_id=event.external_userid),
            text=event.text[:50_000] or "[message]", author="agent", created_at=event.sent_at,
            metadata={"via": "wecom_client", "servicer_userid": event.servicer_userid, "wecom_msgid": event.msgid},
        )
        async with self.s.engine.begin() as conn:
            await ensure_conversation(conn, conv_id, key, event.external_userid)
            await insert_outbound(conn, out)

    async def _took_over(self, event: KfEvent, conv_id: str, key: str) -> None:
        assert event.external_userid is not None
        state = kf_state_after(event.kind, event.change_type) or KfState.SERVICER
        details = {"open_kfid": event.open_kfid, "servicer_userid": event.servicer_userid,
                   "wecom_msgid": event.msgid, "wecom_state": int(state)}
        async with self.s.engine.begin() as conn:
            await ensure_conversation(conn, conv_id, key, event.external_userid)
            current = await read_state(conn, conv_id) or ConversationState.BOT
            ticket = await _open_ticket(conn, conv_id)
            target = ours_for(state, current, held_by_wecom=bool(
                ticket and ticket["reason"] == EscalationReason.CHANNEL_TAKEOVER.value))
            esc = None
            if target != current or ticket is None:
                esc = await escalate_in(conn, conv_id, EscalationReason.CHANNEL_TAKEOVER, summary=TAKEOVER_SUMMARY,
                                        now=self.s.clock(), details=details)
        if esc is not None and esc.created:
            log.info("wecom kf: servicer %s took over %s; ticket %s", event.servicer_userid, conv_id, esc.ticket.id)
            await kick_router(self.s.redis, self.s.keys)
            await publish(self.s.redis, self.s.keys, [ConversationEvent(
                kind=EventKind.ESCALATED, conversation_id=conv_id,
                data={"ticket_id": esc.ticket.id, "reason": EscalationReason.CHANNEL_TAKEOVER.value,
                      "status": "new", "assignee_id": None})])
        elif esc is None and ticket is not None and event.kind == "session_status_change":
            # A Huiliu ticket is open (our agent may be on it): tell them who holds the session now.
            # Not for every servicer message: one note per hand-over is enough.
            await self.s.ticket_service.note(ticket["id"], actor="wecom", text=f"{TAKEOVER_SUMMARY} "
                                             f"({event.servicer_userid or '?'})")

    async def _ended(self, event: KfEvent, conv_id: str) -> None:
        async with self.s.engine.connect() as conn:
            current = await read_state(conn, conv_id)
            ticket = await _open_ticket(conn, conv_id)
        if current is None or ticket is None:
            return  # the bot's own session ended (or already handled): nothing to reflect
        held = ticket["reason"] == EscalationReason.CHANNEL_TAKEOVER.value
        try:
            if ours_for(KfState.ENDED, current, held_by_wecom=held) == ConversationState.BOT:
                await self.s.ticket_service.hand_back(ticket["id"], actor="wecom")
            else:
                await self.s.ticket_service.note(ticket["id"], actor="wecom", text=ENDED_NOTE)
        except (InvalidTransition, TicketConflict) as exc:
            log.info("wecom kf: session end on %s not applied to ticket %s: %s", conv_id, ticket["id"], exc)

    async def _delivery_failed(self, event: KfEvent, conv_id: str, key: str) -> None:
        assert event.external_userid is not None
        error = f"微信客服消息发送失败 / WeCom could not deliver reply {event.fail_msgid} (fail_type {event.fail_type})"
        async with self.s.engine.begin() as conn:
            await ensure_conversation(conn, conv_id, key, event.external_userid)
            ticket = await _open_ticket(conn, conv_id)
            if ticket is None:
                await escalate_in(conn, conv_id, EscalationReason.CHANNEL_FAILURE, summary=error, now=self.s.clock(),
                                  details={"fail_msgid": event.fail_msgid, "fail_type": event.fail_type})
        if ticket is not None:
            await self.s.ticket_service.note(ticket["id"], actor="wecom", text=error)
        else:
            await kick_router(self.s.redis, self.s.keys)
