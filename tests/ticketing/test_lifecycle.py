"""The ticket lifecycle table, row by row, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.models import ConversationState
from ticketing.lifecycle import (
    InvalidTransition,
    TicketEvent,
    TicketStatus,
    Transition,
    conversation_state,
    transition,
)

S, E = TicketStatus, TicketEvent
NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "event", "expected"), [
    (S.NEW, E.ASSIGN, S.ASSIGNED),
    (S.ASSIGNED, E.AGENT_REPLY, S.OPEN),
    (S.OPEN, E.WAIT_CUSTOMER, S.PENDING_CUSTOMER),
    (S.PENDING_CUSTOMER, E.CUSTOMER_REPLY, S.OPEN),
    (S.OPEN, E.RESOLVE, S.RESOLVED),
    (S.NEW, E.RESOLVE, S.RESOLVED),
    (S.RESOLVED, E.CLOSE, S.CLOSED),
    (S.ASSIGNED, E.UNASSIGN, S.NEW),
    (S.OPEN, E.UNASSIGN, S.NEW),
    (S.OPEN, E.HAND_BACK, S.RESOLVED),
    (S.ASSIGNED, E.ASSIGN, S.ASSIGNED),
    (S.NEW, E.CUSTOMER_REPLY, S.NEW),
])
def test_allowed(status: TicketStatus, event: TicketEvent, expected: TicketStatus) -> None:
    assert transition(status, event, now=NOW) == Transition(expected)


@pytest.mark.parametrize(("status", "event"), [
    (S.NEW, E.AGENT_REPLY),  # nobody is assigned to reply
    (S.NEW, E.WAIT_CUSTOMER),
    (S.NEW, E.UNASSIGN),
    (S.RESOLVED, E.RESOLVE),
    (S.RESOLVED, E.ASSIGN),
    (S.CLOSED, E.ASSIGN),
    (S.CLOSED, E.CLOSE),
    (S.PENDING_CUSTOMER, E.WAIT_CUSTOMER),
])
def test_forbidden(status: TicketStatus, event: TicketEvent) -> None:
    with pytest.raises(InvalidTransition, match=f"cannot {event.value}"):
        transition(status, event, now=NOW)


@pytest.mark.parametrize(("resolved_ago", "expected"), [
    (timedelta(hours=1), Transition(S.OPEN, reopened=True)),
    (timedelta(days=7), Transition(S.OPEN, reopened=True)),
    (timedelta(days=7, seconds=1), Transition(S.RESOLVED, new_ticket=True)),
])
def test_customer_reply_after_resolve(resolved_ago: timedelta, expected: Transition) -> None:
    got = transition(S.RESOLVED, E.CUSTOMER_REPLY, now=NOW, resolved_at=NOW - resolved_ago,
                     reopen_window=timedelta(days=7))
    assert got == expected


def test_closed_ticket_never_reopens() -> None:
    assert transition(S.CLOSED, E.CUSTOMER_REPLY, now=NOW, resolved_at=NOW) == Transition(S.CLOSED, new_ticket=True)


@pytest.mark.parametrize(("status", "state"), [
    (S.NEW, ConversationState.QUEUED),
    (S.ASSIGNED, ConversationState.AGENT),
    (S.OPEN, ConversationState.AGENT),
    (S.PENDING_CUSTOMER, ConversationState.AGENT),
    (S.RESOLVED, ConversationState.RESOLVED),
    (S.CLOSED, ConversationState.CLOSED),
])
def test_owner_of_the_conversation(status: TicketStatus, state: ConversationState) -> None:
    assert conversation_state(status) == state
    assert conversation_state(status, handed_back=True) == ConversationState.BOT
