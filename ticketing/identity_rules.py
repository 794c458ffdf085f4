"""The rules of linking a customer's identities across channels -- pure, so they are tested as tables.

An identity is linked to another only on proof, never on a guess (a similar or equal display name is
no proof: two customers called 王芳 are two customers):

* ``order:<number>`` -- the customer wrote an order number that exists; the writer joins the profile
  of the order's owner, or of the identity that first mentioned an order with no known owner;
* ``agent:<id>`` -- an agent verified a phone number, an e-mail address or another channel identity;
* ``merge:<id>`` -- an agent merged two profiles (tier = the higher of the two).

Automatic (order) links only ever *add* an identity that has no profile yet. An identity already in
another profile is never moved by them, and an identity an agent once unlinked is never linked again
by them: both become a link *suggestion* that agents see on the customer view and settle by merging.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from bot.orders import order_numbers_in
from gateway.models import Channel
from ticketing.customers import CustomerError, Identity
from ticketing.priority import Tier

PHONE = "phone"  # an identity kind with no channel of its own: a verified phone number
IDENTITY_KINDS = frozenset({c.value for c in Channel} | {PHONE})
TIER_RANK = {Tier.NORMAL: 0, Tier.VIP: 1}
MAX_ORDER_MENTIONS = 3  # order numbers looked at per message (the bot reads as many)

_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_PHONE_JUNK_RE = re.compile(r"[\s\-().]")
_CN_MOBILE_RE = re.compile(r"^(?:\+?86|0086)?(1\d{10})$")
_PHONE_RE = re.compile(r"^\+?\d{5,20}$")


class LinkAction(StrEnum):
    NONE = "none"  # the writer is the order's anchor, or both already share a profile
    CREATE = "create"  # neither has a profile: a new profile holds both
    ADD_WRITER = "add_writer"  # the writer joins the anchor's profile
    ADD_ANCHOR = "add_anchor"  # the anchor joins the writer's profile (the proof is symmetric)
    SUGGEST = "suggest"  # a conflict, or an identity agents unlinked: agents decide


class LinkKind(StrEnum):
    """Kinds of rows in the link audit (``customer_link_events``)."""

    LINKED = "linked"
    UNLINKED = "unlinked"
    MERGED = "merged"
    SUGGESTED = "suggested"


@dataclass(frozen=True, slots=True)
class LinkState:
    """What an order proof finds: the profiles of the writer and of the order's anchor identity."""

    writer_profile: int | None
    anchor_profile: int | None
    same_identity: bool = False
    writer_unlinked: bool = False  # an agent unlinked this identity once: no more automatic links
    anchor_unlinked: bool = False


def decide_order_link(state: LinkState) -> LinkAction:
    """What one order proof does. Only identities without a profile are ever added automatically."""
    w, a = state.writer_profile, state.anchor_profile
    if state.same_identity or (w is not None and w == a):
        return LinkAction.NONE
    if w is not None and a is not None:
        return LinkAction.SUGGEST  # two profiles: moving one identity silently could be wrong
    if w is None and a is None:
        return LinkAction.SUGGEST if state.writer_unlinked or state.anchor_unlinked else LinkAction.CREATE
    if w is None:
        return LinkAction.SUGGEST if state.writer_unlinked else LinkAction.ADD_WRITER
    return LinkAction.SUGGEST if state.anchor_unlinked else LinkAction.ADD_ANCHOR


def order_anchor(owner: Identity | None, first_claimant: Identity | None) -> Identity | None:
    """The identity an order proves a link to: its owner when the order system knows one, else the
    identity that mentioned it first."""
    return owner if owner is not None else first_claimant


def owner_of(channel: str | None, external_id: str | None) -> Identity | None:
    """The owner identity of an order row (demo orders have none)."""
    return Identity(channel, external_id) if channel and external_id else None


def mentioned_orders(text: str) -> list[str]:
    """Order-like numbers in a customer message, as ASCII digits (the bot's own pattern; ``\\d`` also
    matches full-width digits typed with a Chinese IME). Cheap: no I/O, so it runs on every message."""
    found = order_numbers_in(text, limit=MAX_ORDER_MENTIONS) if text else []
    return list(dict.fromkeys("".join(str(unicodedata.digit(c)) for c in n) for n in found))


def order_proof(order_number: str) -> str:
    return f"order:{order_number}"


def agent_proof(agent_id: str) -> str:
    return f"agent:{agent_id}"


def merge_proof(agent_id: str) -> str:
    return f"merge:{agent_id}"


def merged_tier(a: Tier, b: Tier) -> Tier:
    """A merged profile keeps the higher tier: a VIP stays a VIP on every channel."""
    return a if TIER_RANK[a] >= TIER_RANK[b] else b


def tier_of_value(value: str | None) -> Tier:
    return Tier(value) if value in {t.value for t in Tier} else Tier.NORMAL


def normalize_identity(kind: str, external_id: str) -> Identity:
    """An agent-entered identity in the form channels use, or ``CustomerError`` saying what is wrong.

    E-mail addresses are compared lower-case; phone numbers keep digits (and a leading +), mainland
    mobile numbers lose their +86/0086 prefix so "+86 138-0013-8000" and "13800138000" are one phone.
    """
    kind = (kind or "").strip().lower()
    if kind not in IDENTITY_KINDS:
        raise CustomerError(f"channel must be one of {', '.join(sorted(IDENTITY_KINDS))}")
    value = (external_id or "").strip()
    if not value or len(value) > 256 or any(unicodedata.category(c).startswith("C") for c in value):
        raise CustomerError("external_id must be a non-empty printable string of at most 256 characters")
    if kind == Channel.EMAIL.value:
        value = value.lower()
        if not _EMAIL_RE.match(value):
            raise CustomerError(f"{external_id!r} is not an e-mail address")
    elif kind == PHONE:
        digits = _PHONE_JUNK_RE.sub("", value)
        mobile = _CN_MOBILE_RE.match(digits)
        if mobile:
            digits = mobile.group(1)
        if not _PHONE_RE.match(digits):
            raise CustomerError(f"{external_id!r} is not a phone number")
        value = digits
    return Identity(kind, value)
