"""When customer messages are scored: not on the FAQ hot path, but in time for every ticket decision.

The bot answers "怎么退货" without scoring it (an encoder pass per message halved answer-path
throughput in `make bench`); when the conversation escalates, that earlier message and the escalating
one are scored in one batch, so the ticket's priority still reads the customer's recent mood; once a
human owns the chat, each message is scored as it arrives (agents see it).
"""

from __future__ import annotations

from typing import Any

from tests_helpers import WebChatCustomer, eventually

from gateway.runtime import Runtime


async def _scores(rt: Runtime, conversation_id: str) -> list[tuple[str, Any]]:
    rows = await rt.services.conversations.transcript_with_sentiment(conversation_id)
    return [(r["text"], r["sentiment"]) for r in rows if r["direction"] == "in"]


async def test_scored_at_escalation_and_after(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    customer = WebChatCustomer(client)
    await customer.start()
    try:
        await customer.say("怎么退货")
        await eventually(lambda: customer.by("bot"))
        assert await _scores(rt, customer.conversation_id) == [("怎么退货", None)]

        await customer.say("你们老板的星座是什么，适合和双子座做朋友吗")
        await eventually(lambda: rt.services.tickets.list_open())
        scored = await _scores(rt, customer.conversation_id)
        assert [text for text, _ in scored] == ["怎么退货", "你们老板的星座是什么，适合和双子座做朋友吗"]
        assert all(s is not None and {"negative", "anger", "urgency", "reasons", "flags"} <= set(s)
                   for _, s in scored)

        await customer.say("太慢了！！！我要投诉")  # a human owns the chat now: scored on arrival
        last = await eventually(lambda: _last_if(rt, customer.conversation_id, "太慢了！！！我要投诉"))
        assert last["negative"] > 0.5 and "threat" in last["flags"]
    finally:
        await customer.stop()


async def _last_if(rt: Runtime, conversation_id: str, text: str) -> Any:
    scored = await _scores(rt, conversation_id)
    return scored[-1][1] if scored and scored[-1][0] == text else None
