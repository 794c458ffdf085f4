"""Customer satisfaction (CSAT) texts and parsing (pure).

On resolve the customer is asked for a 1-5 rating on their channel. Their next message is read here:
a button press (``/csat{"score":5}``), a typed score ("5", "５", "5分", "五星", "⭐⭐⭐⭐", "rate 3",
optionally followed by a comment), or a courtesy ("谢谢") that must not reopen the ticket. A message
that merely contains a digit ("3天了还没发货", an order or phone number) is not a rating.

The quick replies are ordered 1..5 so that on channels that render them as numbered options the
number the customer types is the score either way ("1" can never mean "option 1 = 5 points").
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from gateway.models import QuickReply

MIN_SCORE, MAX_SCORE = 1, 5
MAX_COMMENT = 1000
PAYLOAD_PREFIX = "/csat"

LABELS: dict[str, dict[int, str]] = {
    "zh": {1: "非常不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"},
    "en": {1: "Very dissatisfied", 2: "Dissatisfied", 3: "Neutral", 4: "Satisfied", 5: "Very satisfied"},
}

_ASK = {
    "zh": "您的问题已处理完毕。请为本次服务打分：回复 1-5（5 = 非常满意，1 = 非常不满意），"
          "也可以在分数后附上意见，例如“4 发货有点慢”。",
    "en": "Your request has been resolved. How did we do? Reply with a score from 1 to 5 "
          "(5 = very satisfied, 1 = very dissatisfied), optionally followed by a comment, "
          "e.g. \"4 shipping was a bit slow\".",
}
_THANKS = {
    "zh": {"good": "感谢您的评价，很高兴能帮到您！祝您生活愉快～",
           "neutral": "感谢您的评价，我们会继续努力做得更好。",
           "bad": "感谢您的反馈，非常抱歉这次没能让您满意。回复即可补充意见，我们会认真改进。"},
    "en": {"good": "Thank you for your rating! We're glad we could help.",
           "neutral": "Thank you for your rating. We'll keep working to do better.",
           "bad": "Thank you for your feedback, and we're sorry we let you down. "
                  "Reply to tell us more — we read every message."},
}


@dataclass(frozen=True, slots=True)
class Rating:
    """A customer's rating: ``score`` 1..5 and an optional free-text comment."""

    score: int
    comment: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not MIN_SCORE <= self.score <= MAX_SCORE:
            raise ValueError(f"score must be {MIN_SCORE}..{MAX_SCORE}, got {self.score!r}")


def _lang(language: str | None) -> str:
    return "en" if language and language.lower().startswith("en") else "zh"


def payload(score: int) -> str:
    """The quick-reply payload for ``score``, Rasa-style like ``/choose_article{...}``."""
    return PAYLOAD_PREFIX + json.dumps({"score": score}, separators=(",", ":"))


def is_payload(text: str) -> bool:
    """Whether ``text`` is a rating button press (well-formed or not). The bot must never treat one as
    a question: a late or repeated press reaches it after the rating was recorded."""
    return _PAYLOAD.match(text.strip()) is not None


def ask_text(language: str | None) -> str:
    """The rating request sent on resolve."""
    return _ASK[_lang(language)]


def quick_replies(language: str | None) -> tuple[QuickReply, ...]:
    """Buttons "1 非常不满意" .. "5 非常满意", in score order (see the module docstring)."""
    labels = LABELS[_lang(language)]
    return tuple(QuickReply(title=f"{s} {labels[s]}", payload=payload(s)) for s in range(MIN_SCORE, MAX_SCORE + 1))


def thanks_text(language: str | None, score: int) -> str:
    """The reply to a recorded rating; a low score (<= 2) gets an apology and an invitation to say more."""
    Rating(score)  # validates
    kind = "bad" if score <= 2 else "neutral" if score == 3 else "good"
    return _THANKS[_lang(language)][kind]


# --- parsing ---------------------------------------------------------------------------------------

# Full-width digits, letters and "/" to ASCII, one character for one, so match positions stay valid
# in the original text and the comment keeps the customer's own punctuation.
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_HALF = str.maketrans({chr(0xFF01 + i): chr(0x21 + i) for i in range(0x5E) if chr(0x21 + i).isalnum()}
                      | {"／": "/", "\u3000": " "})
_PAYLOAD = re.compile(r"^/csat(\{.*\})$", re.S)
_STAR = "⭐★🌟"
_STARS = re.compile(rf"^((?:[{_STAR}]\ufe0f?\s*){{1,5}})((?:☆\s*)*)(?!\s*[{_STAR}☆])(.*)$", re.S)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(
    r"^(?P<prefix>"
    r"(?:i(?:'d|\s+would)?\s+)?(?:rate|rated|rating|score|give)(?:\s+(?:it|you|this|us|you\s+guys))?"
    r"(?:\s+an?)?\s*[:：=]?\s*"
    r"|(?:我要?)?(?:评分|打分|给你们|给您|给你|打|给|评)(?:个|了)?\s*[:：]?\s*"
    r")?"
    r"(?P<num>[1-5](?![0-9]|[.,][0-9])|[一二两三四五]|(?:one|two|three|four|five)(?![a-z]))"
    r"(?P<suffix>\s*(?:/\s*5(?![0-9])|out\s+of\s+5(?![0-9])|分(?!钟)|颗?星级?|颗?[⭐★]\ufe0f?"
    r"|stars?(?![a-z])|pts?(?![a-z])|points?(?![a-z])))?"
    r"(?P<rest>.*)$",
    re.S | re.I,
)
_SEPARATORS = " \t\r\n,，。.、:：;；!！?？~～-—–)）】]"
# What a bare leading digit is counted in when it is a quantity, date or time, not a score.
_CJK_UNITS = re.compile(
    r"^(?:分钟|小时|星期|礼拜|公斤|厘米|个月|[天日号月年周秒个件次单元块毛角台只双包箱瓶斤克米点岁楼层位条张套盒袋本份十百千万亿折倍码寸遍趟种样款])")
_EN_UNITS = frozenset(_words(
    "day days business working hour hours hr hrs h week weeks month months year years minute minutes min mins "
    "second seconds sec secs item items piece pieces pc pcs time times order orders package packages parcel "
    "parcels box boxes more other others of and or to am pm dollar dollars usd rmb yuan euro euros kg g cm m "
    "x different separate people persons emails messages calls weeks' left ago"))
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def parse_rating(text: str) -> Rating | None:
    """The rating in a customer's reply to the CSAT question, or None when it is not a rating."""
    original = text.strip()
    if not original:
        return None
    if (match := _PAYLOAD.match(original)) is not None:
        return _from_payload(match.group(1))
    half = original.translate(_HALF)
    if (match := _STARS.match(half)) is not None:
        filled = sum(half[: match.end(1)].count(c) for c in _STAR)
        if filled + match.group(2).count("☆") > MAX_SCORE:
            return None
        return Rating(filled, _comment(original[match.start(3):], filled))
    match = _RATING.match(half)
    if match is None:
        return None
    num = match.group("num").lower()
    rest_at = match.start("rest")
    rest = half[rest_at:]
    if not match.group("suffix"):  # no 分/星/stars/"/5": make sure the number is not a quantity
        if num.isdigit() and not _bare_digit_ok(rest):
            return None  # "3天了还没发货", "2 items missing", "打5折"
        if not num.isdigit() and rest.strip(_SEPARATORS):
            return None  # "一般", "打一个电话", "one more thing": a number word alone or marked only
    score = int(num) if num.isdigit() else _WORDS[num]
    return Rating(score, _comment(original[rest_at:], score))


def _from_payload(raw: str) -> Rating | None:
    try:
        score = json.loads(raw).get("score")
    except (ValueError, AttributeError):
        return None
    if isinstance(score, int) and not isinstance(score, bool) and MIN_SCORE <= score <= MAX_SCORE:
        return Rating(score)
    return None


def _bare_digit_ok(rest: str) -> bool:
    """Whether what follows an unmarked leading digit makes it a score ("4 还行") rather than a
    quantity ("3天了还没发货", "2 items missing", "5-6天")."""
    if not rest:
        return True
    stripped = rest.lstrip(_SEPARATORS)
    if stripped == rest and not _CJK.match(rest):
        return False  # "5th", "3am", "5%"
    if not stripped:
        return True
    if stripped[0].isdigit() or _CJK_UNITS.match(stripped):
        return False
    first = re.match(r"[a-z']+", stripped.lower())
    return first is None or first.group(0) not in _EN_UNITS


def _comment(rest: str, score: int) -> str | None:
    comment = rest.strip(_SEPARATORS + "\u3000")
    if not comment:
        return None
    # A typed button title ("5 非常满意") carries no comment beyond the score itself.
    if any(comment.casefold() == LABELS[lang][score].casefold() for lang in LABELS):
        return None
    return comment[:MAX_COMMENT]


# --- courtesy --------------------------------------------------------------------------------------

_COURTESY_ZH = _words(
    "谢谢你们 谢谢您 谢谢你 谢谢 谢啦 谢了 多谢 非常感谢 太感谢了 感谢您 感谢 辛苦你了 辛苦了 辛苦 麻烦你了 麻烦了 "
    "好的呢 好的 好滴 好嘞 好哒 好吧 好了 好 行吧 行 可以了 可以 嗯嗯 嗯 恩恩 恩 哦哦 哦 噢 喔 已收到 收到了 收到 "
    "明白了 明白 知道了 了解了 了解 懂了 没问题了 没问题 没事了 没别的了 没有了 没了 已解决 解决了 搞定了 搞定 拜拜 "
    "再见 88 亲 么么哒 点赞 赞 棒 很好 太好了 满意 哈哈 哈 啦 呀 呢 哒 的 了 啊")
_COURTESY_EN = (
    "thank you very much", "thank you so much", "thanks a lot", "thanks so much", "many thanks", "much appreciated",
    "appreciate it", "appreciated", "thank you", "thank u", "thanks", "thx", "thnx", "tysm", "ty", "okay", "okey",
    "ok", "kk", "k", "all right", "alright", "sure", "cool", "great", "nice", "perfect", "awesome", "got it", "noted",
    "understood", "fine", "good", "bye bye", "goodbye", "bye", "see you", "cheers", "have a nice day",
    "have a good day", "that's all", "thats all", "all good", "no problem", "np", "solved", "resolved", "it works",
    "works now", "yes", "yep", "yeah", "you too", "very much", "so much", "again", "lol", "haha",
)
_COURTESY_EMOJI = "👍🙏😊🙂😄😀😁😃😆🤗❤💕💖👌🌹💐🤝👋😘☺✌💯🎉✨🥰"
# Longest token first inside an atomic group, and possessive loops: overlapping tokens ("哈哈"/"哈")
# would otherwise make a failing match backtrack exponentially in the message length.
_COURTESY_TOKEN = ("(?>" + "|".join(re.escape(t) for t in sorted(_COURTESY_ZH, key=len, reverse=True))
                   + "|" + "|".join(rf"{re.escape(t)}(?![a-z])" for t in sorted(_COURTESY_EN, key=len, reverse=True))
                   + rf"|[{_COURTESY_EMOJI}]|:-?\)|\^_\^)")
_COURTESY_SEP = r"\s,，。.、!！~～…?？:：;；"
# The lookahead asks for at least one courtesy: "?" alone is not one.
_COURTESY = re.compile(f"^(?=.*?[^{_COURTESY_SEP}])(?:{_COURTESY_TOKEN}|[{_COURTESY_SEP}])*+$", re.S)
_MODIFIERS = re.compile("[\ufe0f\ufe0e\u200d\U0001f3fb-\U0001f3ff]")
MAX_COURTESY_LEN = 40


def is_courtesy(text: str) -> bool:
    """A short closing message ("谢谢", "好的", "thanks!", "👍") that must not reopen a resolved ticket.
    Anything with content beyond courtesies ("还是没收到", "thanks but it's still broken") is not one;
    neither is an empty message (an attachment may well be a photo of the problem)."""
    if is_payload(text):
        return True  # a second press of a rating button is never a complaint
    normal = _MODIFIERS.sub("", unicodedata.normalize("NFKC", text)).casefold().strip()
    normal = normal.replace("’", "'")
    if not normal or len(normal) > MAX_COURTESY_LEN:
        return False
    return _COURTESY.match(normal) is not None
