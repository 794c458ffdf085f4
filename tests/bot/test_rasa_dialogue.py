"""Real conversations through the gateway's bot worker with a real Rasa server and action server."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest
from tests_helpers import eventually

from bot import rasa_process
from bot.dialogue_bot import DialogueBot
from bot.worker import BotWorker
from gateway.models import Channel, ConversationState, CustomerRef, InboundMessage, OutboundMessage, utcnow
from gateway.runtime import Runtime, make_bot

_seq = count()


class Chat:
    """One customer talking to the bot worker; ``say`` returns every reply message of the turn."""

    def __init__(self, rt: Runtime, rasa_url: str, channel: Channel = Channel.WEBCHAT) -> None:
        s = rt.services
        self.rt = rt
        self.bot = make_bot(s, rasa_url)
        assert isinstance(self.bot, DialogueBot)
        self.worker = BotWorker(redis=s.redis, keys=s.keys, bus=s.bus, conversations=s.conversations,
                                tickets=s.tickets, bot=self.bot, clock=utcnow)
        self.key = f"v_rasatest{next(_seq):012d}"
        self.channel = channel

    @property
    def conversation_id(self) -> str:
        return f"{self.channel.value}:{self.key}"

    async def say(self, text: str) -> list[OutboundMessage]:
        s = self.rt.services
        before = await s.redis.xlen(s.keys.outbound)
        msg = InboundMessage.build(channel=self.channel, external_message_id=f"{self.key}:{next(_seq)}",
                                   conversation_key=self.key, text=text, sent_at=datetime.now(UTC),
                                   customer=CustomerRef(channel=self.channel, external_id=self.key))
        await self.worker.process(msg)
        entries = await s.redis.xrange(s.keys.outbound)
        return [OutboundMessage.model_validate_json(f[b"m"]) for _i, f in entries[before:]]


@pytest.fixture
def chat(runtime: Runtime, rasa: rasa_process.RasaServers) -> Chat:
    return Chat(runtime, rasa.url)


async def test_greeting_is_answered_by_rasa(chat: Chat) -> None:
    [reply] = await chat.say("嗨，在不在呀")
    assert "汇流小铺的智能客服" in reply.text
    assert reply.metadata["engine"] in {"rasa", "fast_path"}


async def test_faq_paraphrase_answered_from_the_index_through_rasa(chat: Chat, runtime: Runtime) -> None:
    replies = await chat.say("请问退款大概几天能到账啊")
    assert len(replies) == 1, [(r.text, r.quick_replies) for r in replies]
    reply = replies[0]
    assert reply.metadata["engine"] == "rasa"
    assert reply.text == runtime.services.kb.article("refund-time").answer  # type: ignore[union-attr]


async def test_exact_faq_takes_the_fast_path(chat: Chat, runtime: Runtime) -> None:
    [reply] = await chat.say("怎么退货")
    assert reply.metadata["engine"] == "fast_path"
    assert reply.text == runtime.services.kb.article("return-how").answer  # type: ignore[union-attr]


async def test_order_status_over_two_turns(chat: Chat) -> None:
    [ask] = await chat.say("我的订单到哪了")
    assert "订单号" in ask.text
    [status] = await chat.say("12345")
    assert "SF1404857392011" in status.text and "运输中" in status.text
    [missing] = await chat.say("订单 424242 到哪了")
    assert "没有查到订单 424242" in missing.text


async def test_not_this_twice_escalates(chat: Chat, runtime: Runtime) -> None:
    await chat.say("退款一般多久能到账呀")
    first = await chat.say("不是这个")
    assert first and await runtime.services.tickets.list_open() == []
    assert any(r.quick_replies for r in first) or "换个说法" in first[-1].text
    await chat.say("没解决")
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.reason == "repeated_failure" and ticket.conversation_id == chat.conversation_id
    assert await runtime.services.conversations.state(chat.conversation_id) == ConversationState.QUEUED
    assert await chat.say("人呢？") == []  # a human owns it now: the bot stays silent


async def test_request_for_human_escalates_at_once(chat: Chat, runtime: Runtime) -> None:
    [reply] = await chat.say("我要找人工客服")
    assert "人工" in reply.text
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.reason == "asked_for_human"


async def test_complaint_escalates_with_anger(chat: Chat, runtime: Runtime) -> None:
    await chat.say("你们这什么垃圾服务，我要去12315投诉！")
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.reason == "anger"


async def test_numbered_option_maps_back_to_the_button(chat: Chat) -> None:
    await chat.say("退款一般多久能到账呀")
    offered = await chat.say("不是这个")
    options = [q for r in offered for q in r.quick_replies]
    if not options:
        pytest.skip("the index offered no alternatives for this question")
    [answer] = await chat.say("1")  # what a customer types on a channel that shows numbered options
    assert answer.metadata.get("article_id") == options[0].payload.split('"')[3]


async def test_rasa_killed_then_back(runtime: Runtime, rasa: rasa_process.RasaServers) -> None:
    chat = Chat(runtime, rasa.url)
    [before] = await chat.say("请问退款大概几天能到账啊")
    assert before.metadata["engine"] == "rasa"
    rasa.kill("rasa")
    try:
        replies = [await chat.say("发票怎么开具呢") for _ in range(3)]
        assert all(r and r[-1].metadata["engine"] == "degraded" for r in replies)
        article = runtime.services.kb.article("invoice")
        assert article is not None and replies[-1][-1].text == article.answer  # retrieval keeps answering
        assert chat.bot.degraded
    finally:
        rasa.start_rasa()
        await rasa.wait_ready()
    chat.bot.breaker.reset_after_s = 0.0  # probe at once instead of waiting out the cool-down

    async def back() -> bool:
        return (await chat.say("请问退款大概几天能到账啊"))[-1].metadata["engine"] == "rasa"

    await eventually(back, timeout=30)
    assert not chat.bot.degraded


async def test_rasa_trackers_live_under_our_prefix(
    chat: Chat, rasa: rasa_process.RasaServers, runtime: Runtime
) -> None:
    # Regression: Rasa ignores a non-alphanumeric key_prefix and falls back to a shared default,
    # which made conversations of one test run continue in the next.
    [reply] = await chat.say("我的订单到哪了")
    assert reply.metadata["engine"] == "rasa"
    key = f"{rasa_process.rasa_key_prefix(rasa.key_prefix)}:tracker:{chat.conversation_id}"
    assert await runtime.services.redis.exists(key)


async def test_return_form_collects_number_and_reason(chat: Chat) -> None:
    [ask_number] = await chat.say("这个东西我要退掉，帮我办一下")
    assert "订单号" in ask_number.text
    [ask_reason] = await chat.say("订单号是10086")
    assert "原因" in ask_reason.text
    [done] = await chat.say("尺码不合适")
    assert "10086" in done.text and "尺码不合适" in done.text


async def test_attachment_without_text_goes_to_a_human(chat: Chat, runtime: Runtime) -> None:
    from bot.replies import ATTACHMENT_ONLY

    [reply] = await chat.say("")
    assert reply.text == ATTACHMENT_ONLY["zh"]
    [ticket] = await runtime.services.tickets.list_open()
    assert ticket.conversation_id == chat.conversation_id
