"""WeCom 微信客服 session states and how they relate to ours (pure; channels spec §2.2).

WeCom keeps one session state per (kf account, customer)::

    0 未处理        new session, nobody has answered          send_msg allowed
    1 由智能助手接待  handled through the API ("assistant")    send_msg allowed
    2 待接入池排队中  queued for a WeCom servicer               send_msg refused
    3 由人工接待      a servicer answers in the WeCom client    send_msg refused
    4 已结束         ended; the customer's next message opens a new session at 0

Ours (``ConversationState``) says who answers in Huiliu: BOT, QUEUED / AGENT (a Huiliu agent through the
agent console), RESOLVED / CLOSED.

**The asymmetry that decides everything:** for WeCom, *all* of Huiliu — our bot and our agents — is the
"assistant" behind the API, because our agents' replies also go out through ``kf/send_msg``, which works
only in states 0 and 1. So:

* Ours -> WeCom (``wecom_state_for``): BOT, QUEUED and AGENT all keep the WeCom session in 1 (0 is just as
  sendable, so a session in 0 is left alone: no ``service_state/trans`` call is needed). Mirroring our
  AGENT as WeCom's 3 would hand the session to a WeCom servicer and make every reply of our agent fail with
  95018. RESOLVED/CLOSED do not end the WeCom session (no trans to 4): the CSAT question and its thank-you
  are sent *after* resolving, and WeCom ends idle sessions by itself.
* WeCom -> ours (``ours_for``): 0 and 1 say nothing about who answers inside Huiliu (None: keep ours);
  2 and 3 mean a WeCom servicer queue or servicer holds the session, so our bot must go silent — the
  conversation is escalated (a ticket, state QUEUED: the only way the bot worker stays silent) with reason
  ``channel_takeover`` so staff see who holds it; 4 means the session is over (RESOLVED): a takeover ticket
  is handed back, and the bot answers the customer's next message, which starts a new session.

We learn WeCom's state changes from ``msg_list`` (``session_status_change`` — which WeCom emits only for
actions in the WeCom client, never for API calls — and origin-5 messages a servicer typed), so
``kf_state_after`` reads them; ``service_state/get`` is not polled.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

from gateway.models import ConversationState


class KfState(IntEnum):
    """WeCom's ``service_state``."""

    NEW = 0
    ASSISTANT = 1
    QUEUED = 2
    SERVICER = 3
    ENDED = 4


SENDABLE: Final = frozenset({KfState.NEW, KfState.ASSISTANT})

# session_status_change.change_type -> the state it leaves the session in. 1: a servicer picked it up
# from the pool; 2: transferred to another servicer; 3: ended; 4: a servicer re-joined an ended or
# transferred session.
_CHANGE_TYPES: Final = {1: KfState.SERVICER, 2: KfState.SERVICER, 3: KfState.ENDED, 4: KfState.SERVICER}


class SessionEffect(StrEnum):
    """What a kf event means for Huiliu."""

    NONE = "none"
    HUMAN_TOOK_OVER = "human_took_over"  # a WeCom servicer holds the session: our bot goes silent
    ENDED = "ended"  # WeCom ended the session
    DELIVERY_FAILED = "delivery_failed"  # msg_send_fail: a reply send_msg accepted never reached the customer


def sendable(state: KfState) -> bool:
    """Whether ``kf/send_msg`` is allowed in ``state`` (spec §2.2: only 0 and 1)."""
    return state in SENDABLE


def kf_state_after(kind: str, change_type: int | None) -> KfState | None:
    """The WeCom state an event reveals (``kind`` as in ``KfEvent.kind``), or None if it says nothing."""
    if kind == "servicer_message":
        return KfState.SERVICER  # only the servicer holding the session can write from the client
    if kind == "session_status_change" and change_type is not None:
        return _CHANGE_TYPES.get(change_type)
    return None


def effect_of(kind: str, change_type: int | None) -> SessionEffect:
    """What Huiliu does about an event (pure; the gateway applies it)."""
    if kind == "msg_send_fail":
        return SessionEffect.DELIVERY_FAILED
    state = kf_state_after(kind, change_type)
    if state in (KfState.QUEUED, KfState.SERVICER):
        return SessionEffect.HUMAN_TOOK_OVER
    if state is KfState.ENDED:
        return SessionEffect.ENDED
    return SessionEffect.NONE


def wecom_state_for(ours: ConversationState) -> KfState | None:
    """The WeCom state Huiliu keeps a session in while ours is ``ours`` (None: leave it as it is).

    Always a sendable state or None: every Huiliu state answers through ``kf/send_msg``.
    """
    if ours in (ConversationState.BOT, ConversationState.QUEUED, ConversationState.AGENT):
        return KfState.ASSISTANT
    return None  # RESOLVED / CLOSED: the CSAT exchange still needs send_msg; WeCom ends idle sessions itself


def ours_for(state: KfState, current: ConversationState, *, held_by_wecom: bool) -> ConversationState:
    """Our conversation state once WeCom reports ``state`` (``current``: ours now; ``held_by_wecom``: the
    open ticket, if any, was opened because a WeCom servicer took over).

    * 0 / 1: WeCom has nothing to say about who answers inside Huiliu: unchanged.
    * 2 / 3: a WeCom servicer (pool or person) holds it. If our bot would answer (BOT, or RESOLVED/CLOSED
      where the next message reaches the bot), escalate: QUEUED. QUEUED/AGENT stay: a Huiliu ticket is
      already open (staff get a note), and never AGENT from here, since AGENT means a *Huiliu* agent.
    * 4: a session a WeCom servicer held is handed back to the bot (BOT: the customer's next message
      opens a new WeCom session at 0); otherwise unchanged (our agent's ticket is ours to close).
    """
    if state in (KfState.QUEUED, KfState.SERVICER):
        if current in (ConversationState.QUEUED, ConversationState.AGENT):
            return current
        return ConversationState.QUEUED
    if state is KfState.ENDED and held_by_wecom:
        return ConversationState.BOT
    return current
