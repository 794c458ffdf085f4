"""What a bot decided for one customer message: the messages to send and whether to escalate."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.models import QuickReply
from ticketing.escalation import EscalationReason


@dataclass(frozen=True, slots=True)
class ReplyPart:
    """One outbound message; ``quick_replies`` render as buttons or as numbered options."""

    text: str
    quick_replies: tuple[QuickReply, ...] = ()


@dataclass(frozen=True, slots=True)
class BotReply:
    parts: tuple[ReplyPart, ...]
    escalate: EscalationReason | None = None
    article_id: str | None = None
    score: float | None = None
    engine: str = "retrieval"  # retrieval | rasa | fast_path | degraded
    details: dict[str, object] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, escalate: EscalationReason | None = None, **kw: object) -> BotReply:
        return cls((ReplyPart(text),), escalate, **kw)  # type: ignore[arg-type]
