"""Canned responses: template rendering (pure, table-driven) and the store on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketing.canned import (
    DEMO,
    VARIABLES,
    CannedError,
    CannedStore,
    MissingVariables,
    order_number_from,
    placeholders,
    render,
)

FULL: dict[str, str | None] = {"customer_name": "张三", "order_number": "202411110001", "agent_name": "小王",
                               "ticket_id": "42"}

RENDERS: list[tuple[str, dict[str, str | None], str, str]] = [
    # template, variables, language, expected
    ("您好 {customer_name}，我是客服{agent_name}，很高兴为您服务。", FULL, "zh",
     "您好 张三，我是客服小王，很高兴为您服务。"),
    ("您的订单 {order_number} 我们正在为您查询物流…", FULL, "zh", "您的订单 202411110001 我们正在为您查询物流…"),
    ("工单 #{ticket_id}", FULL, "zh", "工单 #42"),
    ("{customer_name}{customer_name}", FULL, "zh", "张三张三"),
    ("{ customer_name }您好", FULL, "zh", "张三您好"),  # spaces inside the braces are forgiven
    ("｛customer_name｝您好", FULL, "zh", "张三您好"),  # full-width braces from a Chinese IME
    ("｛备注｝请查收", FULL, "zh", "｛备注｝请查收"),  # other full-width braces are ordinary punctuation
    ("没有变量的模板", {}, "zh", "没有变量的模板"),
    ("字面量 {{customer_name}} 与 {{ }}", {}, "zh", "字面量 {customer_name} 与 { }"),
    ("{{{customer_name}}}", FULL, "zh", "{张三}"),
    # fallbacks: the customer's name only
    ("{customer_name}您好", {}, "zh", "亲您好"),
    ("{customer_name}您好", {"customer_name": None}, "zh", "亲您好"),
    ("{customer_name}您好", {"customer_name": "  "}, "zh", "亲您好"),
    ("Hi {customer_name},", {}, "en", "Hi there,"),
    ("Hi {customer_name},", {"customer_name": "Alice"}, "en", "Hi Alice,"),
    ("{customer_name}您好", {}, "fr", "亲您好"),  # unknown language: the Chinese fallback
    # values are inserted verbatim, never re-scanned
    ("您好 {customer_name}", {"customer_name": "{order_number}"}, "zh", "您好 {order_number}"),
    ("您好 {customer_name}", {"customer_name": "{x.__class__}"}, "zh", "您好 {x.__class__}"),
    ("您好 {customer_name}", {"customer_name": " 李四 "}, "zh", "您好 李四"),
    # extra variables are ignored
    ("您好", {"unused": "x", "order_number": None}, "zh", "您好"),
]


@pytest.mark.parametrize(("template", "variables", "language", "expected"), RENDERS)
def test_render(template: str, variables: dict[str, str | None], language: str, expected: str) -> None:
    assert render(template, variables, language=language) == expected


MISSING: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = [
    ("您的订单 {order_number}", {}, ("order_number",)),
    ("您的订单 {order_number}", {"order_number": None}, ("order_number",)),
    ("您的订单 {order_number}", {"order_number": ""}, ("order_number",)),
    ("{agent_name} / {ticket_id} / {agent_name}", {"customer_name": "x"}, ("agent_name", "ticket_id")),
    ("{customer_name} {order_number}", {}, ("order_number",)),  # the name falls back, the order does not
]


@pytest.mark.parametrize(("template", "variables", "names"), MISSING)
def test_missing_variables(template: str, variables: dict[str, str | None], names: tuple[str, ...]) -> None:
    with pytest.raises(MissingVariables) as info:
        render(template, variables)
    assert info.value.names == names
    assert all(n in str(info.value) for n in names)


BAD_TEMPLATES: list[tuple[str, str]] = [
    ("{x.__class__}", "{x.__class__}"),
    ("{customer_name.__class__}", "customer_name.__class__"),
    ("{0}", "{0}"),
    ("{}", "{}"),
    ("{order_no}", "{order_no}"),
    ("{Customer_Name}", "{Customer_Name}"),
    ("{customer_name!r}", "{customer_name!r}"),
    ("{customer_name:>10}", "{customer_name:>10}"),
    ("您好 {", "unbalanced"),
    ("您好 }", "unbalanced"),
    ("{customer_name", "unbalanced"),
    ("{{customer_name}", "unbalanced"),
    ("{a{b}c}", "unbalanced"),
]


@pytest.mark.parametrize(("template", "mentioned"), BAD_TEMPLATES)
def test_bad_templates(template: str, mentioned: str) -> None:
    with pytest.raises(CannedError) as info:
        render(template, FULL)
    assert mentioned in str(info.value)
    assert not isinstance(info.value, MissingVariables)
    with pytest.raises(CannedError):
        placeholders(template)


def test_unknown_placeholders_are_all_listed_with_the_allowed_set() -> None:
    with pytest.raises(CannedError) as info:
        render("{a} {b} {a} {customer_name}", FULL)
    message = str(info.value)
    assert "{a}, {b}" in message and all(f"{{{v}}}" in message for v in VARIABLES)


@pytest.mark.parametrize(("template", "names"), [
    ("", set()),
    ("纯文本", set()),
    ("{customer_name} {order_number}", {"customer_name", "order_number"}),
    ("{{customer_name}} {ticket_id}", {"ticket_id"}),
    ("｛agent_name｝", {"agent_name"}),
    ("{agent_name}{agent_name}", {"agent_name"}),
])
def test_placeholders(template: str, names: set[str]) -> None:
    assert placeholders(template) == names


def test_allowed_variables() -> None:
    assert {"customer_name", "order_number", "agent_name", "ticket_id"} == VARIABLES


@pytest.mark.parametrize(("texts", "expected"), [
    ([], None),
    (["你好", "在吗"], None),
    (["我的订单12345还没到"], "12345"),
    (["订单 11111", "不对，是 22222"], "22222"),  # the most recent message wins
    (["11111 和 22222 两个订单"], "22222"),  # within one message, the last one
    (["订单 11111", "还没到", "谢谢"], "11111"),  # later messages without a number do not hide it
    (["单号1234"], None),  # too short to be an order number (the bot's rule)
    (["订单号：２０２４１１１１０００１"], "202411110001"),  # full-width digits (\d matches them) come out ASCII
    (["order 202411110001 please"], "202411110001"),
])
def test_order_number_from(texts: list[str], expected: str | None) -> None:
    assert order_number_from(texts) == expected


def test_demo_templates_render() -> None:
    for title, text, language in DEMO:
        assert language in ("zh", "en")
        assert render(text, FULL, language=language)
        assert placeholders(text) <= VARIABLES, title
    assert {lang for _, _, lang in DEMO} == {"zh", "en"}


# --- store (both databases) -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_crud(engine: AsyncEngine) -> None:
    clock = Clock()
    store = CannedStore(engine, clock)
    c = await store.create("  问候 ", "您好 {customer_name}", "zh", "sup1")
    assert (c.title, c.text, c.language, c.created_by) == ("问候", "您好 {customer_name}", "zh", "sup1")
    assert c.created_at == c.updated_at == clock.now
    assert await store.get(c.id) == c

    clock.now += timedelta(hours=1)
    changed = await store.update(c.id, text="您好 {customer_name}，我是{agent_name}")
    assert changed is not None
    assert (changed.title, changed.text, changed.language) == ("问候", "您好 {customer_name}，我是{agent_name}", "zh")
    assert changed.created_at == c.created_at and changed.updated_at == clock.now
    assert await store.get(c.id) == changed
    renamed = await store.update(c.id, title="Greeting", language="en")
    assert renamed is not None and (renamed.title, renamed.language, renamed.text) == ("Greeting", "en", changed.text)

    assert await store.update(99_999, title="x") is None
    assert await store.delete(c.id) is True
    assert await store.delete(c.id) is False
    assert await store.get(c.id) is None
    assert await store.list() == []


@pytest.mark.parametrize(("title", "text", "language", "created_by"), [
    ("", "text", "zh", "a"),
    ("   ", "text", "zh", "a"),
    ("t" * 129, "text", "zh", "a"),
    ("title", "", "zh", "a"),
    ("title", " \n ", "zh", "a"),
    ("title", "x" * 4001, "zh", "a"),
    ("title", "text", "fr", "a"),
    ("title", "text", "", "a"),
    ("title", "text", "zh", ""),
    ("title", "text", "zh", "a" * 65),
    ("title", "{x.__class__}", "zh", "a"),
    ("title", "unbalanced {", "zh", "a"),
])
async def test_create_validates(engine: AsyncEngine, title: str, text: str, language: str, created_by: str) -> None:
    store = CannedStore(engine, Clock())
    with pytest.raises(CannedError):
        await store.create(title, text, language, created_by)
    assert await store.list() == []


async def test_create_accepts_the_limits(engine: AsyncEngine) -> None:
    store = CannedStore(engine, Clock())
    c = await store.create("t" * 128, "字" * 4000, "en", "a" * 64)
    assert (len(c.title), len(c.text)) == (128, 4000)


async def test_update_validates_and_keeps_the_row(engine: AsyncEngine) -> None:
    store = CannedStore(engine, Clock())
    c = await store.create("问候", "您好", "zh", "sup1")
    for bad in ({"title": ""}, {"text": "{order_no}"}, {"language": "de"}, {"text": "x" * 4001}):
        with pytest.raises(CannedError):
            await store.update(c.id, **bad)
    assert await store.get(c.id) == c


async def test_list_filters(engine: AsyncEngine) -> None:
    store = CannedStore(engine, Clock())
    greet = await store.create("问候", "{customer_name}您好", "zh", "s")
    ship = await store.create("物流查询", "您的订单 {order_number} 正在查询物流", "zh", "s")
    refund = await store.create("Refund policy", "Refunds arrive within 1-3 business days.", "en", "s")
    hello = await store.create("Greeting", "Hi {customer_name}! Welcome to Café Ünïcode.", "en", "s")

    async def titles(**kwargs: str | None) -> list[str]:
        return [c.title for c in await store.list(**kwargs)]

    assert await titles() == ["Greeting", "Refund policy", "物流查询", "问候"]  # by language, then title
    assert {c.id for c in await store.list()} == {greet.id, ship.id, refund.id, hello.id}
    assert await titles(language="zh") == ["物流查询", "问候"]
    assert await titles(language="en") == ["Greeting", "Refund policy"]
    assert await titles(language="de") == []
    assert await titles(query="物流") == ["物流查询"]  # in the title (and text)
    assert await titles(query="订单") == ["物流查询"]  # in the text only
    assert await titles(query="REFUND") == ["Refund policy"]  # case-insensitive
    assert await titles(query="business DAYS") == ["Refund policy"]
    assert await titles(query="CAFÉ ÜNÏCODE") == ["Greeting"]  # non-ASCII case folding on both databases
    assert await titles(query="{customer_name}") == ["Greeting", "问候"]
    assert await titles(query="%") == []  # LIKE wildcards are plain text
    assert await titles(query="order_n") == ["物流查询"]  # "_" is no wildcard: only "order_number" matches
    assert await titles(query="  ") == ["Greeting", "Refund policy", "物流查询", "问候"]
    assert await titles(query="customer", language="zh") == ["问候"]
    assert await titles(query="nothing like this") == []


async def test_seed_demo_only_into_an_empty_table(engine: AsyncEngine) -> None:
    store = CannedStore(engine, Clock())
    assert await store.seed_demo() == len(DEMO)
    assert await store.seed_demo() == 0  # idempotent
    items = await store.list()
    assert len(items) == len(DEMO)
    assert {c.language for c in items} == {"zh", "en"}
    assert any("{order_number}" in c.text for c in items if c.language == "zh")
    for c in items:
        assert render(c.text, FULL, language=c.language)

    other = CannedStore(engine, Clock())
    for c in items:
        await other.delete(c.id)
    await other.create("自定义", "我们自己的模板", "zh", "s")
    assert await other.seed_demo() == 0  # never mixes demo rows into a shop's own templates
