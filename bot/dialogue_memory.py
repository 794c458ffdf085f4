"""Short-lived per-conversation memory the gateway keeps around the dialogue engine.

It holds what the gateway needs between turns and Rasa cannot tell it: the last article answered and
its runners-up (so "不是这个" can offer alternatives), the quick replies last offered (so "2" typed on a
channel without buttons maps back to option 2), and whether Rasa is waiting for an answer (so the
fast path never cuts into a form). One Redis hash per conversation, expiring after a day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.models import QuickReply

TTL_S = 24 * 3600


@dataclass
class Memory:
    last_answer: dict[str, Any] | None = None
    last_hits: list[dict[str, Any]] = field(default_factory=list)
    quick: list[QuickReply] = field(default_factory=list)
    awaiting: str | None = None
    language: str | None = None

    def resolve(self, text: str) -> str:
        """Map a numbered option ("2", "２") or an exact button title back to the button's payload."""
        stripped = text.strip()
        if not self.quick:
            return text
        if stripped.isdigit() and 1 <= int(stripped) <= len(self.quick):
            return self.quick[int(stripped) - 1].payload
        for option in self.quick:
            if stripped == option.title:
                return option.payload
        return text


class DialogueMemory:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def load(self, conversation_id: str) -> Memory:
        raw = await self.redis.get(self.keys.dialogue(conversation_id))
        if not raw:
            return Memory()
        data = json.loads(raw)
        return Memory(last_answer=data.get("last_answer"), last_hits=data.get("last_hits") or [],
                      quick=[QuickReply(**q) for q in data.get("quick") or []], awaiting=data.get("awaiting"),
                      language=data.get("language"))

    async def save(self, conversation_id: str, memory: Memory) -> None:
        data = {"last_answer": memory.last_answer, "last_hits": memory.last_hits,
                "quick": [q.model_dump() for q in memory.quick], "awaiting": memory.awaiting,
                "language": memory.language}
        await self.redis.set(self.keys.dialogue(conversation_id), json.dumps(data, ensure_ascii=False), ex=TTL_S)
