"""Bot v0: answer from the knowledge index when confident, otherwise escalate to a human.

It never guesses: below the tuned decline threshold the customer is told a human will follow up and
the conversation becomes a ticket. Articles tagged ``handoff`` (e.g. "转人工") escalate on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.replies import ATTACHMENT_ONLY, HUMAN_FOLLOW_UP, language_of
from gateway.knowledge import KnowledgeService
from gateway.models import InboundMessage
from ticketing.escalation import EscalationReason

HANDOFF_TAG = "handoff"


@dataclass(frozen=True, slots=True)
class BotReply:
    """What the bot decided for one customer message."""

    text: str
    escalate: EscalationReason | None = None
    article_id: str | None = None
    score: float | None = None
    details: dict[str, object] = field(default_factory=dict)


class RetrievalBot:
    def __init__(self, kb: KnowledgeService, *, k: int = 5) -> None:
        self.kb = kb
        self.k = k

    async def reply(self, msg: InboundMessage) -> BotReply:
        text = msg.text.strip()
        lang = language_of(text) if text else (msg.customer.language or "zh")[:2]
        lang = lang if lang in HUMAN_FOLLOW_UP else "zh"
        if not text:
            return BotReply(ATTACHMENT_ONLY[lang], EscalationReason.LOW_CONFIDENCE, details={"why": "no text"})
        hits = await self.kb.search(text, self.k)
        decision = self.kb.decide(hits)
        top = [{"article_id": h.article_id, "score": round(h.score, 4)} for h in hits[:3]]
        if decision.answer is None:
            return BotReply(
                HUMAN_FOLLOW_UP[lang],
                EscalationReason.OUT_OF_SCOPE if hits else EscalationReason.LOW_CONFIDENCE,
                score=hits[0].score if hits else None,
                details={"decision": decision.reason, "threshold": decision.threshold, "hits": top},
            )
        hit = decision.answer
        article = self.kb.article(hit.article_id)
        if article is None:  # unpublished between search and now
            return BotReply(HUMAN_FOLLOW_UP[lang], EscalationReason.LOW_CONFIDENCE, details={"hits": top})
        escalate = EscalationReason.ASKED_FOR_HUMAN if HANDOFF_TAG in article.tags else None
        return BotReply(article.answer, escalate, article.id, hit.score, {"hits": top})
