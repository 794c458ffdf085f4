"""Custom actions of the Huiliu Rasa assistant (run by `rasa run actions`, Python 3.10 venv).

The gateway computes knowledge-index hits for every message and sends them in the message metadata
(``metadata["huiliu"]``): the index, its embedding model and its live updates stay in one place, and
answering an FAQ costs no extra network hop. Actions read only that metadata and the slots; the one
order lookup works the same way: the gateway's ``OrderLookup`` resolves any order number in the
message and sends the result along, so the action server needs no database and no credentials.

Everything the gateway must act on travels back as a custom payload ``{"huiliu": {...}}``:
``escalate`` (reason) opens a ticket; ``answered`` (article id) lets the gateway remember the last
answer, so "不是这个" can offer the runners-up.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

MAX_FAILED = 2  # the second failed attempt in a row hands the conversation to a human
UNCERTAIN_MARGIN = 0.03  # top-1 and top-2 this close: ask which one the customer means
NEAR_MISS = 0.08  # declined, but this close to the threshold: offer the best candidates
_ORDER_RE = re.compile(r"\d{5,20}")

TEXTS = {
    "zh": {
        "which": "您想问的是下面哪个问题？",
        "none": "都不是",
        "human": "转人工",
        "rephrase": "抱歉，我没太明白您的意思，能换个说法再描述一下吗？也可以回复“转人工”联系人工客服。",
        "alternatives": "抱歉没有答到点上。您想问的是不是下面这些？",
        "handover": "抱歉，这个问题我暂时无法准确回答。已为您转接人工客服，客服会尽快回复您，请稍候。",
        "to_human": "好的，正在为您转接人工客服，请稍候。",
        "complaint": "非常抱歉给您带来不好的体验！已为您优先转接人工客服处理，请稍候。",
        "order": "订单 {n}：{status}。{detail}",
        "order_missing": "没有查到订单 {n}，请核对订单号后再发给我（订单详情页可以看到）。",
        "order_down": "订单系统暂时无法查询，已为您转接人工客服，请稍候。",
        "return_ok": ("已为您登记订单 {n} 的退换货申请（原因：{reason}）。请在订单详情页点击“申请售后”完成寄回，"
                      "审核通过后退款1-3个工作日原路返回。"),
    },
    "en": {
        "which": "Which of these did you mean?",
        "none": "None of these",
        "human": "Talk to a human",
        "rephrase": "Sorry, I didn't quite get that. Could you rephrase? You can also say \"human\".",
        "alternatives": "Sorry that missed. Did you mean one of these?",
        "handover": "Sorry, I can't answer that reliably. A human agent will follow up with you shortly.",
        "to_human": "Sure, connecting you to a human agent now.",
        "complaint": "We're very sorry about this. A human agent will take over right away.",
        "order": "Order {n}: {status}. {detail}",
        "order_missing": "I couldn't find order {n}. Please check the number on the order page.",
        "order_down": "The order system is unavailable right now; a human agent will follow up.",
        "return_ok": ("Your return/exchange request for order {n} is registered (reason: {reason}). "
                      "Open the order page and tap \"After-sales\" to ship it back."),
    },
}


def _meta(tracker: Tracker) -> Dict[str, Any]:
    metadata = tracker.latest_message.get("metadata") or {}
    huiliu = metadata.get("huiliu") if isinstance(metadata, dict) else None
    return huiliu if isinstance(huiliu, dict) else {}


def _lang(tracker: Tracker) -> str:
    lang = _meta(tracker).get("language")
    return lang if lang in TEXTS else "zh"


def _t(tracker: Tracker, key: str, **kw: Any) -> str:
    return TEXTS[_lang(tracker)][key].format(**kw)


def _failed(tracker: Tracker) -> int:
    return int(tracker.get_slot("failed_attempts") or 0)


def _choice_buttons(tracker: Tracker, hits: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    buttons = [
        {"title": str(h.get("title") or h["article_id"])[:60],
         "payload": "/choose_article" + json.dumps({"article_id": h["article_id"]}, separators=(",", ":"))}
        for h in hits[:3]
    ]
    buttons.append({"title": _t(tracker, "human"), "payload": "/request_human"})
    return buttons


def _escalate(dispatcher: CollectingDispatcher, reason: str, tracker: Optional[Tracker] = None) -> None:
    # The intent and the failure count help the gateway pick the ticket's skills and priority.
    facts: Dict[str, Any] = {"escalate": reason}
    if tracker is not None:
        facts["intent"] = (tracker.latest_message.get("intent") or {}).get("name")
        facts["failed_attempts"] = int(tracker.get_slot("failed_attempts") or 0)
    dispatcher.utter_message(json_message={"huiliu": facts})


def _give_up(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    dispatcher.utter_message(text=_t(tracker, "handover"))
    _escalate(dispatcher, "repeated_failure", tracker)
    return [SlotSet("failed_attempts", 0)]


def _answer(dispatcher: CollectingDispatcher, tracker: Tracker, article: Dict[str, Any]) -> List[EventType]:
    if "handoff" in (article.get("tags") or []):
        dispatcher.utter_message(text=article.get("answer") or _t(tracker, "to_human"))
        _escalate(dispatcher, "asked_for_human", tracker)
        return [SlotSet("failed_attempts", 0)]
    dispatcher.utter_message(text=article["answer"])
    dispatcher.utter_message(json_message={"huiliu": {"answered": article["article_id"]}})
    return [SlotSet("failed_attempts", 0)]


class ActionAnswerFaq(Action):
    """Answer from the gateway's hits; ask when unsure; count a failed attempt when nothing fits."""

    def name(self) -> Text:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        meta = _meta(tracker)
        chosen = meta.get("chosen")
        if isinstance(chosen, dict) and chosen.get("answer"):
            return _answer(dispatcher, tracker, chosen)
        hits: List[Dict[str, Any]] = [h for h in meta.get("hits") or [] if h.get("answer")]
        threshold = float(meta.get("threshold", 1.0))
        if hits and hits[0]["score"] >= threshold:
            close = [h for h in hits[1:3] if hits[0]["score"] - h["score"] < UNCERTAIN_MARGIN]
            if close and "handoff" not in (hits[0].get("tags") or []):
                dispatcher.utter_message(text=_t(tracker, "which"), buttons=_choice_buttons(tracker, [hits[0], *close]))
                return []
            return _answer(dispatcher, tracker, hits[0])
        failed = _failed(tracker) + 1
        if failed >= MAX_FAILED:
            return _give_up(dispatcher, tracker)
        near = [h for h in hits if h["score"] >= threshold - NEAR_MISS]
        if near:
            dispatcher.utter_message(text=_t(tracker, "which"), buttons=_choice_buttons(tracker, near))
        else:
            dispatcher.utter_message(text=_t(tracker, "rephrase"))
        return [SlotSet("failed_attempts", failed)]


class ActionDefaultFallback(ActionAnswerFaq):
    """No rule fits: treat it like a question the index could not answer."""

    def name(self) -> Text:
        return "action_default_fallback"


class ActionHandleDeny(Action):
    """"不是这个": offer the runners-up of the last question once, then hand over."""

    def name(self) -> Text:
        return "action_handle_deny"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        failed = _failed(tracker) + 1
        if failed >= MAX_FAILED:
            return _give_up(dispatcher, tracker)
        meta = _meta(tracker)
        last = (meta.get("last_answer") or {}).get("article_id")
        others = [h for h in meta.get("last_hits") or [] if h.get("article_id") != last]
        if others:
            dispatcher.utter_message(text=_t(tracker, "alternatives"), buttons=_choice_buttons(tracker, others))
        else:
            dispatcher.utter_message(text=_t(tracker, "rephrase"))
        return [SlotSet("failed_attempts", failed)]


class ActionEscalate(Action):
    """Explicit request for a human, or a complaint: hand over at once."""

    def name(self) -> Text:
        return "action_escalate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "complaint":
            dispatcher.utter_message(text=_t(tracker, "complaint"))
            _escalate(dispatcher, "anger", tracker)
        else:
            dispatcher.utter_message(text=_t(tracker, "to_human"))
            _escalate(dispatcher, "asked_for_human", tracker)
        return [SlotSet("failed_attempts", 0), ActiveLoop(None), SlotSet("requested_slot", None)]


def _lookup_order(tracker: Tracker, number: str) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """(lookup available?, order). The gateway's OrderLookup ran before this turn reached Rasa and put
    every order number it saw into ``metadata["huiliu"]["orders"]`` (missing number -> unknown order)."""
    orders = _meta(tracker).get("orders")
    if not isinstance(orders, dict):
        return False, None
    order = orders.get(number)
    return True, order if isinstance(order, dict) else None


class ActionOrderStatus(Action):
    def name(self) -> Text:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        number = tracker.get_slot("order_number")
        if not number:
            found = _ORDER_RE.search(tracker.latest_message.get("text") or "")
            number = found.group(0) if found else None
        if not number:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        available, order = _lookup_order(tracker, number)
        if not available:
            dispatcher.utter_message(text=_t(tracker, "order_down"))
            _escalate(dispatcher, "bot_unavailable")
            return [SlotSet("order_number", None)]
        if order is None:
            dispatcher.utter_message(text=_t(tracker, "order_missing", n=number))
        else:
            lang = _lang(tracker)
            status = order.get("status_text_en" if lang == "en" else "status_text") or order.get("status", "")
            detail = order.get("detail_en" if lang == "en" else "detail") or ""
            dispatcher.utter_message(text=_t(tracker, "order", n=number, status=status, detail=detail).strip())
        # Forget the number: the next "where is my order" asks again instead of reusing this one.
        return [SlotSet("order_number", None), SlotSet("failed_attempts", 0)]


class ActionSubmitReturn(Action):
    def name(self) -> Text:
        return "action_submit_return"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        number, reason = tracker.get_slot("order_number"), tracker.get_slot("return_reason")
        dispatcher.utter_message(text=_t(tracker, "return_ok", n=number, reason=reason))
        dispatcher.utter_message(json_message={"huiliu": {"return_request": {"order_number": number,
                                                                              "reason": reason}}})
        return [SlotSet("order_number", None), SlotSet("return_reason", None)]


def _valid_order_number(value: Any, tracker: Tracker) -> Optional[str]:
    text = value if isinstance(value, str) else tracker.latest_message.get("text") or ""
    found = _ORDER_RE.search(text)
    return found.group(0) if found else None


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_order_status_form"

    def validate_order_number(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        return {"order_number": _valid_order_number(slot_value, tracker)}


class ValidateReturnForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_return_form"

    def validate_order_number(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        return {"order_number": _valid_order_number(slot_value, tracker)}

    def validate_return_reason(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        reason = (slot_value or "").strip() if isinstance(slot_value, str) else ""
        return {"return_reason": reason[:200] if len(reason) >= 2 else None}
