"""Bot v0: answer from the knowledge index when confident, otherwise escalate to a human.

It never guesses: below the tuned decline threshold the customer is told a human will follow up and
the conversation becomes a ticket. Articles tagged ``handoff`` (e.g. "转人工") escalate on purpose.
It is also the degraded mode of the dialogue bot when Rasa is unreachable.
"""

from __future__ import annotations

import json
import re

from bot.replies import ATTACHMENT_ONLY, HUMAN_FOLLOW_UP, language_of
from bot.reply import BotReply
from gateway.knowledge import KnowledgeService
from gateway.models import InboundMessage
from knowledge_index.article import Article
from knowledge_index.retriever import Hit
from ticketing.escalation import EscalationReason

HANDOFF_TAG = "handoff"
_CHOICE = re.compile(r"^/choose_article(\{.*\})$")


def chosen_article_id(text: str) -> str | None:
    """The article id of a quick-reply button press ``/choose_article{"article_id": "..."}``."""
    match = _CHOICE.match(text.strip())
    if not match:
        return None
    try:
        value = json.loads(match.group(1)).get("article_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class RetrievalBot:
    def __init__(self, kb: KnowledgeService, *, k: int = 5) -> None:
        self.kb = kb
        self.k = k

    async def reply(self, msg: InboundMessage, hits: list[Hit] | None = None) -> BotReply:
        """Decide for one message; ``hits`` may be passed in when the caller already searched."""
        text = msg.text.strip()
        lang = language_of(text) if text else (msg.customer.language or "zh")[:2]
        lang = lang if lang in HUMAN_FOLLOW_UP else "zh"
        if not text:
            return BotReply.text(ATTACHMENT_ONLY[lang], EscalationReason.LOW_CONFIDENCE, details={"why": "no text"})
        chosen = chosen_article_id(text)
        if chosen and (article := self.kb.article(chosen)):
            return self.answer(article, None)
        if hits is None:
            hits = await self.kb.search(text, self.k)
        decision = self.kb.decide(hits)
        top = [{"article_id": h.article_id, "score": round(h.score, 4)} for h in hits[:3]]
        if decision.answer is None:
            return BotReply.text(
                HUMAN_FOLLOW_UP[lang],
                EscalationReason.OUT_OF_SCOPE if hits else EscalationReason.LOW_CONFIDENCE,
                score=hits[0].score if hits else None,
                details={"decision": decision.reason, "threshold": decision.threshold, "hits": top},
            )
        article = self.kb.article(decision.answer.article_id)
        if article is None:  # unpublished between search and now
            return BotReply.text(HUMAN_FOLLOW_UP[lang], EscalationReason.LOW_CONFIDENCE, details={"hits": top})
        return self.answer(article, decision.answer, details={"hits": top})

    @staticmethod
    def answer(article: Article, hit: Hit | None, details: dict[str, object] | None = None) -> BotReply:
        escalate = EscalationReason.ASKED_FOR_HUMAN if HANDOFF_TAG in article.tags else None
        return BotReply.text(article.answer, escalate, article_id=article.id,
                             score=hit.score if hit else None, details=details or {})
