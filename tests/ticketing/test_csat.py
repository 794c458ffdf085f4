"""Table-driven tests of the CSAT rules (ticketing.csat): ratings, courtesies, texts, quick replies."""

from __future__ import annotations

import pytest

from gateway.models import QuickReply
from ticketing.csat import (
    LABELS,
    Rating,
    ask_text,
    is_courtesy,
    is_payload,
    parse_rating,
    payload,
    quick_replies,
    thanks_text,
)

RATINGS: list[tuple[str, int, str | None]] = [
    # button presses
    ('/csat{"score":5}', 5, None),
    ('/csat{"score": 1}', 1, None),
    (' /csat{"score":3} ', 3, None),
    # bare digits, full-width, with units
    ("5", 5, None),
    ("1", 1, None),
    ("３", 3, None),
    ("５", 5, None),
    ("5.", 5, None),
    ("5!", 5, None),
    ("4！", 4, None),
    ("5分", 5, None),
    ("５分", 5, None),
    ("5 分", 5, None),
    ("3分吧", 3, "吧"),
    ("5星", 5, None),
    ("5星级", 5, None),
    ("4颗星", 4, None),
    ("5⭐", 5, None),
    ("4/5", 4, None),
    ("４／５", 4, None),
    ("4 / 5 good", 4, "good"),
    # Chinese number words
    ("五星", 5, None),
    ("五星好评", 5, "好评"),
    ("五分", 5, None),
    ("一星", 1, None),
    ("两星", 2, None),
    ("三颗星", 3, None),
    ("一星差评，太慢了", 1, "差评，太慢了"),
    ("五", 5, None),
    ("给五分", 5, None),
    # comments
    ("4 还行但是慢了点", 4, "还行但是慢了点"),
    ("4还行", 4, "还行"),
    ("3，一般般吧", 3, "一般般吧"),
    ("1 还是没收到货", 1, "还是没收到货"),
    ("2 - 客服回复太慢", 2, "客服回复太慢"),
    ("5分 3天就到了很快", 5, "3天就到了很快"),  # marked as points: a digit in the comment is fine
    ("5 非常满意", 5, None),  # a typed button title adds no comment
    ("1 非常不满意", 1, None),
    ("4 Satisfied", 4, None),
    ("4 满意，就是包装有点破", 4, "满意，就是包装有点破"),
    ("4　还不错", 4, "还不错"),  # ideographic space
    # stars
    ("⭐⭐⭐⭐", 4, None),
    ("⭐️⭐️⭐️⭐️⭐️", 5, None),
    ("⭐ ⭐ ⭐", 3, None),
    ("★★★☆☆", 3, None),
    ("★", 1, None),
    ("🌟🌟🌟🌟🌟 超赞", 5, "超赞"),
    ("⭐⭐ 太慢了", 2, "太慢了"),
    # Chinese prefixes
    ("打5分", 5, None),
    ("给5分", 5, None),
    ("给个5分吧", 5, "吧"),
    ("我给5星", 5, None),
    ("评分：4", 4, None),
    ("打分 3", 3, None),
    # English
    ("5 stars", 5, None),
    ("5 Stars!", 5, None),
    ("1 star", 1, None),
    ("five stars", 5, None),
    ("Four stars, good job", 4, "good job"),
    ("rate 3", 3, None),
    ("Rate 3", 3, None),
    ("rating: 4", 4, None),
    ("score 2", 2, None),
    ("I rate it 4", 4, None),
    ("I'd give it a 4", 4, None),
    ("give it a 5 - great", 5, "great"),
    ("rate it five", 5, None),
    ("4 out of 5", 4, None),
    ("4 shipping was a bit slow", 4, "shipping was a bit slow"),
    ("2, it took too long", 2, "it took too long"),
    ("5 great service", 5, "great service"),
    ("1 terrible", 1, "terrible"),
    ("3 pts", 3, None),
]

NOT_RATINGS = [
    "",
    "   ",
    "0",
    "6",
    "7分",
    "10",
    "10分",
    "100",
    "12345",
    "我的订单12345还没到",
    "订单号 5",  # not at the start
    "3天了还没发货",
    "3 天了还没发货",
    "2个都坏了",
    "2 个都坏了",
    "1号到的",
    "5月3号",
    "3点前能发货吗",
    "5分钟前下的单",
    "打5折吗",
    "1.5",
    "4.5分",
    "3,000",
    "5-6天能到吗",
    "1-2",
    "3/4",
    "13812345678",
    "138 1234 5678",
    "+86 138 1234 5678",
    "1 38123",
    "5th",
    "3am",
    "4G",
    "5%",
    "5 kg",
    "3 days and still nothing",
    "2 items missing",
    "1 more question",
    "2 more days?",
    "5 business days is too long",
    "一般",
    "一般般",
    "两天了",
    "三天还没到",
    "一个问题",
    "打一个电话",
    "one more thing",
    "two items are missing",
    "谢谢",
    "还是没收到",
    "⭐⭐⭐⭐⭐⭐",
    "⭐ ⭐ ⭐ ⭐ ⭐ ⭐",
    "★★★★☆☆",
    '/csat{"score":6}',
    '/csat{"score":0}',
    '/csat{"score":"5"}',
    '/csat{"score":true}',
    "/csat{broken",
    "/csat[5]",
    '/choose_article{"article_id": "5"}',
]


@pytest.mark.parametrize(("text", "score", "comment"), RATINGS)
def test_parse_rating(text: str, score: int, comment: str | None) -> None:
    assert parse_rating(text) == Rating(score, comment)


@pytest.mark.parametrize("text", NOT_RATINGS)
def test_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


@pytest.mark.parametrize("text", ["哈" * 39 + "x", "嗯" * 39 + "x", "谢谢" * 19 + "x", "ok " * 13 + "x"])
def test_courtesy_check_does_not_backtrack(text: str) -> None:
    """Overlapping tokens ("哈哈"/"哈") once made a failing match take minutes; this must return."""
    assert not is_courtesy(text)


def test_long_comment_is_capped() -> None:
    rating = parse_rating("2 " + "慢" * 5000)
    assert rating is not None and rating.comment is not None and len(rating.comment) == 1000


@pytest.mark.parametrize("score", [0, 6, -1, True])
def test_rating_validates_score(score: int) -> None:
    with pytest.raises(ValueError):
        Rating(score)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_quick_reply_parses_to_its_score(language: str) -> None:
    replies = quick_replies(language)
    assert [parse_rating(q.payload) for q in replies] == [Rating(s) for s in range(1, 6)]
    # Typed button titles parse the same, with no comment.
    assert [parse_rating(q.title) for q in replies] == [Rating(s) for s in range(1, 6)]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_numbered_options_equal_scores(language: str) -> None:
    """Channels without buttons show "1. <title>" .. "5. <title>": the option number the customer
    types must be the score it stands for."""
    for number, reply in enumerate(quick_replies(language), 1):
        assert parse_rating(str(number)) == parse_rating(reply.payload)


@pytest.mark.parametrize(("language", "titles"), [
    ("zh", ["1 非常不满意", "2 不满意", "3 一般", "4 满意", "5 非常满意"]),
    ("en", ["1 Very dissatisfied", "2 Dissatisfied", "3 Neutral", "4 Satisfied", "5 Very satisfied"]),
    ("en-US", ["1 Very dissatisfied", "2 Dissatisfied", "3 Neutral", "4 Satisfied", "5 Very satisfied"]),
    ("fr", ["1 非常不满意", "2 不满意", "3 一般", "4 满意", "5 非常满意"]),  # unknown language: Chinese
    (None, ["1 非常不满意", "2 不满意", "3 一般", "4 满意", "5 非常满意"]),
])
def test_quick_reply_titles(language: str | None, titles: list[str]) -> None:
    replies = quick_replies(language)
    assert [q.title for q in replies] == titles
    assert all(isinstance(q, QuickReply) and len(q.payload.encode()) <= 64 for q in replies)  # Telegram limit


def test_payload_format() -> None:
    assert payload(5) == '/csat{"score":5}'
    assert set(LABELS["zh"]) == set(LABELS["en"]) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(("language", "must_contain"), [
    ("zh", ["1-5", "非常满意", "非常不满意"]),
    ("en", ["1 to 5", "very satisfied", "comment"]),
])
def test_ask_text(language: str, must_contain: list[str]) -> None:
    text = ask_text(language)
    assert all(part in text for part in must_contain)


def test_ask_text_example_is_itself_a_rating() -> None:
    """The example comment in the question parses the way we tell the customer it will."""
    assert parse_rating("4 发货有点慢") == Rating(4, "发货有点慢")
    assert parse_rating("4 shipping was a bit slow") == Rating(4, "shipping was a bit slow")


@pytest.mark.parametrize(("language", "score", "must_contain", "must_not_contain"), [
    ("zh", 5, "感谢", "抱歉"),
    ("zh", 4, "感谢", "抱歉"),
    ("zh", 3, "感谢", "抱歉"),
    ("zh", 2, "回复即可补充意见", "很高兴"),
    ("zh", 1, "抱歉", "很高兴"),
    ("en", 5, "Thank you", "sorry"),
    ("en", 3, "Thank you", "sorry"),
    ("en", 2, "Reply to tell us more", "glad"),
    ("en", 1, "sorry", "glad"),
])
def test_thanks_text(language: str, score: int, must_contain: str, must_not_contain: str) -> None:
    text = thanks_text(language, score)
    assert must_contain in text and must_not_contain not in text


def test_thanks_text_rejects_bad_score() -> None:
    with pytest.raises(ValueError):
        thanks_text("zh", 0)


COURTESIES = [
    "谢谢", "谢谢！", "谢谢你", "谢谢您", "谢谢亲", "好的", "好的谢谢", "好的，谢谢！", "好的呢亲", "好滴", "好嘞",
    "嗯", "嗯嗯", "嗯嗯好的", "恩恩", "哦哦", "收到", "收到，谢谢", "已收到", "明白了", "知道了谢谢", "了解", "没问题",
    "没事了", "没有了，谢谢", "解决了谢谢", "搞定了", "辛苦了", "麻烦你了", "多谢", "非常感谢！！", "太感谢了",
    "拜拜", "再见～", "好的 👍", "👍", "👍🏻", "👍👍", "🙏", "😊", "❤️", "谢谢🌹", "好的亲~", "88", "满意",
    "ok", "OK", "Ok!", "okay", "ok thanks", "Ok, thank you!", "thanks!", "Thanks", "thank you", "Thank you so much!!",
    "thx", "ty", "many thanks", "much appreciated", "got it", "Got it, thanks", "cool", "great, thanks!", "perfect",
    "awesome 👍", "bye", "thanks, bye", "noted", "all good", "no problem", "that's all, thanks", "That’s all",
    "yes thanks", "Thanks again!", "^_^", ":)", "嗯嗯 :)", '/csat{"score":4}',
]
NOT_COURTESIES = [
    "", "   ", "?", "还是没收到", "问题没解决", "好的，但是还没到", "谢谢，我还有一个问题", "谢谢 但是退款还没到账",
    "你好", "您好", "在吗", "不满意", "差评", "不好", "没收到", "还没好", "好的 那什么时候发货", "我的订单12345",
    "thanks but it's still broken", "ok where is my order", "not ok", "no", "still broken", "hello",
    "thanks, but the refund never arrived", "ok?? this is not resolved", "👎", "😡", "1", "5",
    "谢谢" * 30,  # far too long to be a closing courtesy
]


@pytest.mark.parametrize("text", COURTESIES)
def test_courtesy(text: str) -> None:
    assert is_courtesy(text)


@pytest.mark.parametrize("text", NOT_COURTESIES)
def test_not_courtesy(text: str) -> None:
    assert not is_courtesy(text)


@pytest.mark.parametrize(("text", "expected"), [
    ('/csat{"score":5}', True),
    (' /csat{"score":9} ', True),  # malformed, still a button press: never a question for the bot
    ("/csat{}", True),
    ("5", False),
    ("csat", False),
    ('/choose_article{"article_id": "a"}', False),
])
def test_is_payload(text: str, expected: bool) -> None:
    assert is_payload(text) is expected
