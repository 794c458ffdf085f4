"""The canonical, frozen message model shared by every boundary of Huiliu.

Connectors turn provider payloads into these and back; the streams, the bot, ticketing and the store
only ever see these types. Provider payloads are kept verbatim in ``raw`` so nothing the channel sent
is lost, but no code outside the owning connector may read ``raw``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    """Every channel a customer can reach the shop on."""

    WEBCHAT = "webchat"
    TELEGRAM = "telegram"
    WECHAT = "wechat"
    WECOM = "wecom"
    EMAIL = "email"
    TAOBAO = "taobao"
    JD = "jd"
    PINDUODUO = "pinduoduo"
    WEBHOOK = "webhook"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CustomerRef(_Frozen):
    """Who wrote, as the channel knows them (one identity; profiles link several later)."""

    channel: Channel
    external_id: str = Field(min_length=1, max_length=256)
    display_name: str | None = Field(default=None, max_length=256)
    language: str | None = Field(default=None, max_length=16)


class Attachment(_Frozen):
    """A file the customer sent, kept as a reference (never downloaded on the hot path)."""

    kind: Literal["image", "audio", "video", "file", "sticker", "location", "other"]
    ref: str = Field(description="channel-specific reference, e.g. a Telegram file_id or a URL")
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None


class QuickReply(_Frozen):
    """A button offered with a reply; channels without buttons render it as a numbered option."""

    title: str = Field(min_length=1, max_length=64)
    payload: str = Field(min_length=1, max_length=256)


def message_id_for(channel: Channel, external_id: str) -> str:
    """Our message id for a channel message: deterministic, so a redelivery maps to the same row."""
    digest = hashlib.sha256(f"{channel.value}\x1f{external_id}".encode()).hexdigest()
    return f"in_{digest[:24]}"


def conversation_id_for(channel: Channel, conversation_key: str) -> str:
    """Our conversation id: the channel plus the channel's own thread key (chat id, visitor id...)."""
    return f"{channel.value}:{conversation_key}"


def utcnow() -> datetime:
    return datetime.now(UTC)


# Mail no human wrote to us: stored like any message (nothing is lost) but never answered by the bot,
# since answering an out-of-office or a bounce starts a mail loop. "auto_reply": RFC 3834
# Auto-Submitted, vacation/out-of-office responders; "bounce": delivery status notifications; "bulk":
# mailing lists and bulk mail; "loop": our own mail coming back.
Automated = Literal["auto_reply", "bounce", "bulk", "loop"]


class InboundMessage(_Frozen):
    """One customer message as it enters the conversation stream."""

    message_id: str
    channel: Channel
    external_message_id: str = Field(min_length=1, max_length=256)
    conversation_key: str = Field(min_length=1, max_length=256)
    customer: CustomerRef
    text: str = Field(default="", max_length=20_000)
    attachments: tuple[Attachment, ...] = ()
    sent_at: datetime
    received_at: datetime = Field(default_factory=utcnow)
    raw: dict[str, Any] = Field(default_factory=dict)
    automated: Automated | None = None  # set: stored and shown to agents, never answered by the bot

    @property
    def conversation_id(self) -> str:
        return conversation_id_for(self.channel, self.conversation_key)

    @classmethod
    def build(
        cls,
        *,
        channel: Channel,
        external_message_id: str,
        conversation_key: str,
        customer: CustomerRef,
        text: str,
        sent_at: datetime,
        attachments: tuple[Attachment, ...] = (),
        raw: dict[str, Any] | None = None,
        automated: Automated | None = None,
    ) -> InboundMessage:
        """Construct with the deterministic ``message_id`` derived from the channel's id."""
        return cls(
            message_id=message_id_for(channel, external_message_id),
            channel=channel,
            external_message_id=external_message_id,
            conversation_key=conversation_key,
            customer=customer,
            text=text,
            attachments=attachments,
            sent_at=sent_at,
            raw=raw or {},
            automated=automated,
        )


Author = Literal["bot", "agent", "system"]


class OutboundMessage(_Frozen):
    """One reply to send back on the channel the customer used.

    ``message_id`` is our idempotency key: delivery workers never send the same id twice.
    """

    message_id: str = Field(default_factory=lambda: f"out_{uuid.uuid4().hex[:24]}")
    channel: Channel
    conversation_key: str
    recipient: CustomerRef
    text: str = Field(min_length=1, max_length=50_000)
    quick_replies: tuple[QuickReply, ...] = ()
    author: Author = "bot"
    in_reply_to: str | None = Field(default=None, description="our id of the inbound message answered")
    created_at: datetime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def conversation_id(self) -> str:
        return conversation_id_for(self.channel, self.conversation_key)


class DeliveryResult(_Frozen):
    """What a connector's ``send`` reports. ``retry_after`` set means "try again later, not lost"."""

    ok: bool
    external_ids: tuple[str, ...] = ()
    retry_after: float | None = None
    permanent: bool = False
    error: str | None = None


class ConversationState(StrEnum):
    """Who owns the conversation; the bot answers only while it is BOT."""

    BOT = "bot"
    QUEUED = "queued"
    AGENT = "agent"
    RESOLVED = "resolved"
    CLOSED = "closed"


class EventKind(StrEnum):
    MESSAGE_RECEIVED = "message_received"
    BOT_REPLIED = "bot_replied"
    ESCALATED = "escalated"
    DELIVERY_FAILED = "delivery_failed"
    # ticketing (data carries ticket_id, and assignee_id/skills where known, so live views filter
    # without a database round trip)
    TICKET_ASSIGNED = "ticket_assigned"
    TICKET_UPDATED = "ticket_updated"
    AGENT_REPLIED = "agent_replied"
    NOTE_ADDED = "note_added"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    CSAT_RECORDED = "csat_recorded"
    # live only (never stored): a web chat customer is typing; data carries the open ticket's facts
    CUSTOMER_TYPING = "customer_typing"


class ConversationEvent(_Frozen):
    """Something that happened to a conversation, for live views and reporting."""

    kind: EventKind
    conversation_id: str
    at: datetime = Field(default_factory=utcnow)
    message_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
