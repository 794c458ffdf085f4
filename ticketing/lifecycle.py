"""The ticket lifecycle as one transition table (pure; the clock is passed in).

    new ──assign──► assigned ──agent_reply──► open ──wait_customer──► pending_customer
     ▲                 │  ▲                    │ ▲                         │
     └──unassign───────┘  └──────unassign──────┘ └──────customer_reply─────┘
    assigned / open / pending_customer ──resolve──► resolved ──close──► closed
    resolved ──customer_reply (within the reopen window) or reopen (staff)──► open (reopened)
    any active state ──hand_back──► resolved (the bot owns the conversation again)

Each status maps to who owns the conversation (``conversation_state``): the bot answers only when
no ticket is active, which is how "the bot stays silent during a takeover" is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.models import ConversationState


class TicketStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketEvent(StrEnum):
    ASSIGN = "assign"
    UNASSIGN = "unassign"  # agent went offline or transferred back to the queue
    AGENT_REPLY = "agent_reply"
    WAIT_CUSTOMER = "wait_customer"
    CUSTOMER_REPLY = "customer_reply"
    RESOLVE = "resolve"
    HAND_BACK = "hand_back"
    CLOSE = "close"
    REOPEN = "reopen"  # staff reopen a resolved ticket (the customer's reopen is CUSTOMER_REPLY)


class InvalidTransition(ValueError):
    """The event is not allowed in the ticket's current status (answered 409 by the agent API)."""


S, E = TicketStatus, TicketEvent
ACTIVE = frozenset({S.NEW, S.ASSIGNED, S.OPEN, S.PENDING_CUSTOMER})

_TABLE: dict[tuple[TicketStatus, TicketEvent], TicketStatus] = {
    (S.NEW, E.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, E.ASSIGN): S.ASSIGNED,  # transfer to another agent
    (S.OPEN, E.ASSIGN): S.OPEN,
    (S.PENDING_CUSTOMER, E.ASSIGN): S.PENDING_CUSTOMER,
    (S.ASSIGNED, E.UNASSIGN): S.NEW,
    (S.OPEN, E.UNASSIGN): S.NEW,
    (S.PENDING_CUSTOMER, E.UNASSIGN): S.NEW,
    (S.ASSIGNED, E.AGENT_REPLY): S.OPEN,
    (S.OPEN, E.AGENT_REPLY): S.OPEN,
    (S.PENDING_CUSTOMER, E.AGENT_REPLY): S.PENDING_CUSTOMER,
    (S.OPEN, E.WAIT_CUSTOMER): S.PENDING_CUSTOMER,
    (S.NEW, E.CUSTOMER_REPLY): S.NEW,
    (S.ASSIGNED, E.CUSTOMER_REPLY): S.ASSIGNED,
    (S.OPEN, E.CUSTOMER_REPLY): S.OPEN,
    (S.PENDING_CUSTOMER, E.CUSTOMER_REPLY): S.OPEN,
    (S.NEW, E.RESOLVE): S.RESOLVED,
    (S.ASSIGNED, E.RESOLVE): S.RESOLVED,
    (S.OPEN, E.RESOLVE): S.RESOLVED,
    (S.PENDING_CUSTOMER, E.RESOLVE): S.RESOLVED,
    (S.NEW, E.HAND_BACK): S.RESOLVED,
    (S.ASSIGNED, E.HAND_BACK): S.RESOLVED,
    (S.OPEN, E.HAND_BACK): S.RESOLVED,
    (S.PENDING_CUSTOMER, E.HAND_BACK): S.RESOLVED,
    (S.RESOLVED, E.CLOSE): S.CLOSED,
    (S.RESOLVED, E.REOPEN): S.OPEN,
}


@dataclass(frozen=True, slots=True)
class Transition:
    status: TicketStatus
    reopened: bool = False
    new_ticket: bool = False  # the customer wrote after the reopen window: open a fresh ticket instead


def transition(
    status: TicketStatus,
    event: TicketEvent,
    *,
    now: datetime,
    resolved_at: datetime | None = None,
    reopen_window: timedelta = timedelta(days=7),
) -> Transition:
    """Apply ``event``; raise ``InvalidTransition`` when the table has no such edge."""
    if status == S.RESOLVED and event == E.CUSTOMER_REPLY:
        if resolved_at is not None and now - resolved_at <= reopen_window:
            return Transition(S.OPEN, reopened=True)
        return Transition(S.RESOLVED, new_ticket=True)
    if status == S.CLOSED and event == E.CUSTOMER_REPLY:
        return Transition(S.CLOSED, new_ticket=True)
    try:
        return Transition(_TABLE[(status, event)])
    except KeyError:
        raise InvalidTransition(f"cannot {event.value} a ticket that is {status.value}") from None


def conversation_state(status: TicketStatus, *, handed_back: bool = False) -> ConversationState:
    """Who owns the conversation while the ticket is in ``status``."""
    if handed_back:
        return ConversationState.BOT
    return {
        S.NEW: ConversationState.QUEUED,
        S.ASSIGNED: ConversationState.AGENT,
        S.OPEN: ConversationState.AGENT,
        S.PENDING_CUSTOMER: ConversationState.AGENT,
        S.RESOLVED: ConversationState.RESOLVED,
        S.CLOSED: ConversationState.CLOSED,
    }[status]
