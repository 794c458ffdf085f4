"""The dialogue bot: retrieval + order lookup in the gateway, conversation in Rasa, degradation built in.

For each customer message of a bot-owned conversation:
1. numbered options ("2") are mapped back to the quick reply they name;
2. the knowledge index is searched (always: ~2 ms) and order numbers are looked up;
3. fast path — a near-verbatim match of a known phrasing (score >= ``fast_path_score``) while Rasa
   is not waiting for an answer is answered directly: most 双11 FAQ traffic never costs a Rasa turn;
4. otherwise Rasa decides (sender id = conversation id; hits and orders travel in the metadata);
5. when Rasa is down or slow the circuit breaker opens and the retrieval bot answers alone
   (``engine="degraded"``), escalating what it cannot answer; a half-open probe brings Rasa back
   without a restart.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from bot.circuit import CircuitBreaker, CircuitState
from bot.dialogue_memory import DialogueMemory, Memory
from bot.orders import OrderLookup, order_numbers_in
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.replies import language_of
from bot.reply import BotReply, ReplyPart
from bot.retrieval_bot import RetrievalBot, chosen_article_id
from gateway.knowledge import KnowledgeService
from gateway.models import InboundMessage, QuickReply
from knowledge_index.retriever import Hit
from ticketing.escalation import EscalationReason

log = logging.getLogger(__name__)


def _hit_json(hit: Hit, kb: KnowledgeService) -> dict[str, Any] | None:
    article = kb.article(hit.article_id)
    if article is None:
        return None
    return {"article_id": article.id, "title": article.title, "answer": article.answer,
            "tags": list(article.tags), "score": round(hit.score, 4)}


class DialogueBot:
    def __init__(
        self,
        *,
        kb: KnowledgeService,
        rasa: RasaClient,
        memory: DialogueMemory,
        orders: OrderLookup,
        breaker: CircuitBreaker,
        fast_path_score: float = 0.9,
        k: int = 3,
    ) -> None:
        self.kb = kb
        self.rasa = rasa
        self.memory = memory
        self.orders = orders
        self.breaker = breaker
        self.fast_path_score = fast_path_score
        self.k = k
        self.fallback = RetrievalBot(kb)

    @property
    def degraded(self) -> bool:
        return self.breaker.state != CircuitState.CLOSED

    async def reply(self, msg: InboundMessage) -> BotReply:
        conv = msg.conversation_id
        mem = await self.memory.load(conv)
        text = mem.resolve(msg.text)
        mem.language = language_of(text, mem.language or (msg.customer.language or "zh")[:2])
        if text != msg.text:
            msg = msg.model_copy(update={"text": text})
        if not text.strip():
            # A photo or file with no words: nothing for NLU to read; a human looks at it.
            return await self.fallback.reply(msg)
        hits = [] if text.strip().startswith("/") else await self.kb.search(text, self.k)
        hits_json = self.hits_json(hits)

        top = hits[0] if hits else None
        article = self.kb.article(top.article_id) if top else None
        if (top and article and top.score >= self.fast_path_score and not mem.awaiting
                and top.score >= self.kb.retriever.threshold):
            reply = self.fallback.answer(article, top)
            await self._remember(conv, mem, reply, hits_json, quick=[], awaiting=None)
            return BotReply(reply.parts, reply.escalate, reply.article_id, reply.score, engine="fast_path")

        if not self.breaker.allow():
            return await self._degraded(msg, hits, "circuit open")
        metadata = await self.metadata(msg, text, hits_json, mem)
        try:
            messages = await self.rasa.message(conv, text, metadata)
        except RasaUnavailable as exc:
            self.breaker.record_failure()
            return await self._degraded(msg, hits, str(exc))
        if self.breaker.state != CircuitState.CLOSED or self.breaker.failures:
            log.warning("dialogue engine back: Rasa answered again")
        self.breaker.record_success()
        reply = self._from_rasa(messages)
        if reply.escalate is not None and "hits" not in reply.details:
            # The ticket's skills come from the articles the bot considered: this turn's, or for
            # "不是这个" (which retrieves nothing useful) the turn the customer rejected.
            considered: list[dict[str, Any]] = hits_json or mem.last_hits or []
            top3 = [{"article_id": h["article_id"], "score": h.get("score")} for h in considered[:3]]
            reply = replace(reply, details={**reply.details, "hits": top3})
        awaiting = next((str(c["awaiting"]) for c in self._customs(messages) if c.get("awaiting")), None)
        quick = [q for part in reply.parts for q in part.quick_replies]
        await self._remember(conv, mem, reply, hits_json, quick=quick, awaiting=awaiting)
        return reply

    def hits_json(self, hits: list[Hit]) -> list[dict[str, Any]]:
        return [h for h in (_hit_json(hit, self.kb) for hit in hits) if h]

    async def _degraded(self, msg: InboundMessage, hits: list[Hit], why: str) -> BotReply:
        log.warning("bot degraded (retrieval only): %s", why)
        reply = await self.fallback.reply(msg, hits=hits or None)
        return BotReply(reply.parts, reply.escalate, reply.article_id, reply.score, engine="degraded",
                        details={**reply.details, "degraded": why})

    async def metadata(self, msg: InboundMessage, text: str, hits: list[dict[str, Any]],
                       mem: Memory) -> dict[str, Any]:
        """What Rasa's actions get in ``metadata["huiliu"]``: hits, orders, the last answer, language."""
        found: dict[str, Any] = {}
        for number in order_numbers_in(text):
            order = await self.orders.find(number)
            found[number] = order.to_json() if order else None
        chosen_id = chosen_article_id(text)
        chosen = self.kb.article(chosen_id) if chosen_id else None
        return {"huiliu": {
            "conversation_id": msg.conversation_id,
            "channel": msg.channel.value,
            "language": mem.language if mem.language in ("zh", "en") else "zh",
            "customer_name": msg.customer.display_name,
            "threshold": self.kb.retriever.threshold,
            "hits": hits,
            "orders": found,
            "chosen": {"article_id": chosen.id, "title": chosen.title, "answer": chosen.answer,
                       "tags": list(chosen.tags)} if chosen else None,
            "last_answer": mem.last_answer,
            "last_hits": mem.last_hits,
        }}

    @staticmethod
    def _customs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            custom = m.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("huiliu"), dict):
                out.append(custom["huiliu"])
        return out

    def _from_rasa(self, messages: list[dict[str, Any]]) -> BotReply:
        parts: list[ReplyPart] = []
        for m in messages:
            text = m.get("text")
            buttons = m.get("buttons") or []
            quick = tuple(
                QuickReply(title=str(b.get("title"))[:64], payload=str(b.get("payload"))[:256])
                for b in buttons if isinstance(b, dict) and b.get("title") and b.get("payload")
            )
            if isinstance(text, str) and text.strip():
                parts.append(ReplyPart(text, quick))
        escalate: EscalationReason | None = None
        answered: str | None = None
        details: dict[str, object] = {}
        for custom in self._customs(messages):
            if custom.get("escalate"):
                try:
                    escalate = EscalationReason(custom["escalate"])
                except ValueError:
                    escalate = EscalationReason.LOW_CONFIDENCE
            for key in ("intent", "failed_attempts"):
                if custom.get(key) is not None:
                    details[key] = custom[key]
            if custom.get("answered"):
                answered = str(custom["answered"])
            if isinstance(custom.get("return_request"), dict):
                # Kept on the reply (and so in the escalation/ticket details if one follows) and
                # logged; after-sales records are the ticketing issue's work.
                details["return_request"] = custom["return_request"]
                log.info("return/exchange request registered: %s", custom["return_request"])
        if not parts and escalate is None:
            # Rasa said nothing: never leave the customer without an answer.
            return BotReply.text("抱歉，我没太明白，能换个说法吗？也可以回复“转人工”。", engine="rasa")
        return BotReply(tuple(parts), escalate, article_id=answered, engine="rasa", details=details)

    async def _remember(self, conv: str, mem: Memory, reply: BotReply, hits: list[dict[str, Any]], *,
                        quick: list[QuickReply], awaiting: str | None) -> None:
        if reply.article_id:
            # The runners-up of the question just answered are what "不是这个" will offer next turn.
            article = self.kb.article(reply.article_id)
            mem.last_answer = {"article_id": reply.article_id, "title": article.title if article else None}
            mem.last_hits = hits
        mem.quick = quick
        mem.awaiting = awaiting
        await self.memory.save(conv, mem)
