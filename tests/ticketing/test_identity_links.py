"""Linking identities on proof: the pure rules as tables, then the store on SQLite and PostgreSQL
(order proofs, suggestions on conflict, agents' verified identities, unlink, merge, races)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.engine import make_engine
from gateway.db.schema import customer_identities, customer_link_events, customers, orders
from ticketing.agent_links import AgentLinks
from ticketing.customer_view import customer_view
from ticketing.customers import CustomerError, CustomerProfiles, Identity, tier_of
from ticketing.identity_links import (
    LinkConflict,
    ProfileNotFound,
    link_order_mentions,
    live_profile,
    profile_of,
)
from ticketing.identity_rules import (
    LinkAction,
    LinkState,
    decide_order_link,
    mentioned_orders,
    merged_tier,
    normalize_identity,
    order_anchor,
)
from ticketing.priority import Tier

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WX = Identity("wechat", "o-wx-1")
MAIL = Identity("email", "wang@example.com")
TG = Identity("telegram", "4242")
OWNER = Identity("taobao", "tb-buyer-1")
A, N = LinkAction, None


# --- pure rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "action"), [
    (LinkState(N, N, same_identity=True), A.NONE),  # the writer mentions their own order
    (LinkState(7, 7), A.NONE),  # already one profile
    (LinkState(N, N), A.CREATE),
    (LinkState(N, N, writer_unlinked=True), A.SUGGEST),  # an agent undid this identity's link once
    (LinkState(N, N, anchor_unlinked=True), A.SUGGEST),
    (LinkState(N, 5), A.ADD_WRITER),
    (LinkState(N, 5, anchor_unlinked=True), A.ADD_WRITER),  # only the identity that moves counts
    (LinkState(N, 5, writer_unlinked=True), A.SUGGEST),
    (LinkState(3, N), A.ADD_ANCHOR),  # the proof is symmetric: the order's anchor joins the writer
    (LinkState(3, N, anchor_unlinked=True), A.SUGGEST),
    (LinkState(3, 5), A.SUGGEST),  # a conflict: never move an identity silently
    (LinkState(3, 5, writer_unlinked=True, anchor_unlinked=True), A.SUGGEST),
])
def test_decide_order_link(state: LinkState, action: LinkAction) -> None:
    assert decide_order_link(state) is action


@pytest.mark.parametrize(("text", "numbers"), [
    ("我的订单12345到哪了？", ["12345"]),
    ("订单号：１２３４５", ["12345"]),  # full-width digits from a Chinese IME
    ("12345 和 12345 是同一单", ["12345"]),
    ("order #10086, also 20231111", ["10086", "20231111"]),
    ("1234", []),  # too short to be an order number
    ("王芳", []),
    ("", []),
    ("电话13812345678", ["13812345678"]),  # order-like: only the order table decides
    ("a" + "1" * 21, []),  # too long
])
def test_mentioned_orders(text: str, numbers: list[str]) -> None:
    assert mentioned_orders(text) == numbers


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("email", " Wang.Fang@Example.COM ", Identity("email", "wang.fang@example.com")),
    ("EMAIL", "a@b.cn", Identity("email", "a@b.cn")),
    ("phone", "+86 138-0013-8000", Identity("phone", "13800138000")),
    ("phone", "0086 13800138000", Identity("phone", "13800138000")),
    ("phone", "13800138000", Identity("phone", "13800138000")),
    ("phone", "+44 (20) 7946 0958", Identity("phone", "+442079460958")),
    ("wechat", "oAbC_123", Identity("wechat", "oAbC_123")),
    ("taobao", " tb-buyer-1 ", Identity("taobao", "tb-buyer-1")),
])
def test_normalize_identity(kind: str, value: str, expected: Identity) -> None:
    assert normalize_identity(kind, value) == expected


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("fax", "123", "channel must be one of"),
    ("", "x", "channel must be one of"),
    ("email", "not-an-address", "not an e-mail address"),
    ("email", "a@b", "not an e-mail address"),
    ("phone", "call me", "not a phone number"),
    ("phone", "123", "not a phone number"),
    ("wechat", "   ", "non-empty printable"),
    ("wechat", "a\nb", "non-empty printable"),
    ("telegram", "9" * 257, "non-empty printable"),
])
def test_normalize_identity_rejects(kind: str, value: str, message: str) -> None:
    with pytest.raises(CustomerError, match=message):
        normalize_identity(kind, value)


@pytest.mark.parametrize(("a", "b", "tier"), [
    (Tier.NORMAL, Tier.NORMAL, Tier.NORMAL), (Tier.VIP, Tier.NORMAL, Tier.VIP),
    (Tier.NORMAL, Tier.VIP, Tier.VIP), (Tier.VIP, Tier.VIP, Tier.VIP),
])
def test_merged_tier_is_the_higher(a: Tier, b: Tier, tier: Tier) -> None:
    assert merged_tier(a, b) is tier


@pytest.mark.parametrize(("owner", "claimant", "anchor"), [
    (OWNER, WX, OWNER), (None, WX, WX), (None, None, None),
])
def test_order_anchor(owner: Identity | None, claimant: Identity | None, anchor: Identity | None) -> None:
    assert order_anchor(owner, claimant) == anchor


# --- the store, on both databases -----------------------------------------------------------------
async def _orders(engine: AsyncEngine) -> None:
    row = {"status": "shipped", "carrier": None, "tracking_number": None, "items": ["水壶"], "detail": "已发货",
           "detail_en": "shipped", "updated_at": NOW}
    async with engine.begin() as conn:
        await conn.execute(orders.insert(), [
            {**row, "order_number": "12345", "channel": None, "customer_external_id": None},  # no known owner
            {**row, "order_number": "10086", "channel": None, "customer_external_id": None},
            {**row, "order_number": "777001", "channel": OWNER.channel, "customer_external_id": OWNER.external_id},
        ])


async def _profile(engine: AsyncEngine, identity: Identity) -> int | None:
    async with engine.connect() as conn:
        return await profile_of(conn, identity)


async def _events(engine: AsyncEngine, kind: str) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(customer_link_events).where(customer_link_events.c.kind == kind)
                                  .order_by(customer_link_events.c.id))
        return [dict(r._mapping) for r in rows]


async def _link(engine: AsyncEngine, who: Identity, text: str) -> list[LinkAction]:
    return [o.action for o in await link_order_mentions(engine, who, text, NOW)]


async def test_same_ownerless_order_links_two_channels(engine: AsyncEngine) -> None:
    await _orders(engine)
    assert await _link(engine, WX, "你好，订单12345到哪了") == [A.NONE]  # first mention: claims the order
    assert await _profile(engine, WX) is None
    assert await _link(engine, MAIL, "Order 12345 still not here") == [A.CREATE]
    pid = await _profile(engine, WX)
    assert pid is not None and await _profile(engine, MAIL) == pid
    assert await _link(engine, MAIL, "12345 again, and 99999999 is no order") == [A.NONE]  # idempotent
    async with engine.connect() as conn:
        view = await customer_view(conn, pid)
    assert view is not None
    assert {(i["channel"], i["external_id"], i["proven_by"]) for i in view["identities"]} == {
        ("wechat", "o-wx-1", "order:12345"), ("email", "wang@example.com", "order:12345")}
    assert [o["order_number"] for o in view["orders"]] == ["12345"]
    assert view["orders"][0]["relation"] == ["first_mentioned", "link_proof"]
    assert [(e["kind"], e["actor"], e["proof"]) for e in view["link_events"]] == [
        ("linked", "system", "order:12345")] * 2
    assert view["suggestions"] == []


async def test_owned_order_joins_the_owners_profile_and_its_tier(engine: AsyncEngine) -> None:
    await _orders(engine)
    vip = await CustomerProfiles(engine).set_tier(OWNER, Tier.VIP, now=NOW, name="王芳")
    assert await _link(engine, WX, "777001 的发票") == [A.ADD_WRITER]
    assert await _profile(engine, WX) == vip["id"]
    async with engine.connect() as conn:
        assert await tier_of(conn, WX) is Tier.VIP
    # the proof is symmetric: an owner without a profile joins the writer's profile
    await CustomerProfiles(engine).set_tier(TG, Tier.NORMAL, now=NOW)
    owner2 = Identity("jd", "jd-9")
    async with engine.begin() as conn:
        await conn.execute(orders.insert().values(order_number="888002", channel="jd", customer_external_id="jd-9",
                                                  status="pending", items=[], detail="", detail_en="", updated_at=NOW))
    assert await _link(engine, TG, "888002") == [A.ADD_ANCHOR]
    assert await _profile(engine, owner2) == await _profile(engine, TG)


async def test_the_owner_writing_about_their_own_order_links_nothing(engine: AsyncEngine) -> None:
    await _orders(engine)
    assert await _link(engine, OWNER, "777001") == [A.NONE]
    assert await _link(engine, WX, "订单 555555 和 1234") == []  # not an order / not order-like
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(customers)) == 0


async def test_conflict_is_a_suggestion_not_a_move(engine: AsyncEngine) -> None:
    await _orders(engine)
    profiles = CustomerProfiles(engine)
    mine = (await profiles.set_tier(WX, Tier.NORMAL, now=NOW))["id"]
    theirs = (await profiles.set_tier(OWNER, Tier.VIP, now=NOW))["id"]
    assert await _link(engine, WX, "777001") == [A.SUGGEST]
    assert await _link(engine, WX, "777001 还没到") == [A.SUGGEST]
    assert (await _profile(engine, WX), await _profile(engine, OWNER)) == (mine, theirs)
    [suggestion] = await _events(engine, "suggested")  # once, however often the customer repeats it
    assert (suggestion["customer_id"], suggestion["other_customer_id"], suggestion["proof"]) == (
        mine, theirs, "order:777001")
    async with engine.connect() as conn:
        view = await customer_view(conn, mine)
    assert view is not None and [(s["identity"]["customer_id"], s["other"]["customer_id"], s["why"])
                                 for s in view["suggestions"]] == [(mine, theirs, "conflict")]
    await AgentLinks(engine, lambda: NOW).merge(theirs, mine, actor="li", reason="客户确认是同一人")
    async with engine.connect() as conn:
        view = await customer_view(conn, theirs)
    assert view is not None and view["suggestions"] == []  # settled by the merge


async def test_agent_verified_identity(engine: AsyncEngine) -> None:
    links = AgentLinks(engine, lambda: NOW)
    pid = (await CustomerProfiles(engine).set_tier(WX, Tier.VIP, now=NOW))["id"]
    phone = normalize_identity("phone", "+86 138 0013 8000")
    assert await links.add_identity(pid, phone, actor="li", note="客户报出手机号并通过验证码") == pid
    assert await links.add_identity(pid, phone, actor="li", note=None) == pid  # idempotent: no second row
    [event] = await _events(engine, "linked")
    assert (event["actor"], event["proof"], event["reason"], event["external_id"]) == (
        "li", "agent:li", "客户报出手机号并通过验证码", "13800138000")
    async with engine.connect() as conn:
        assert await tier_of(conn, phone) is Tier.VIP
    other = (await CustomerProfiles(engine).set_tier(MAIL, Tier.NORMAL, now=NOW))["id"]
    with pytest.raises(LinkConflict, match=f"belongs to customer {other}"):
        await links.add_identity(pid, MAIL, actor="li", note=None)
    with pytest.raises(ProfileNotFound):
        await links.add_identity(9999, TG, actor="li", note=None)
    long_id = "a" * 64  # agent ids are up to 64 characters: the proof column holds "agent:" + 64
    assert await links.add_identity(pid, TG, actor=long_id, note=None) == pid


async def test_unlink_undoes_a_wrong_link_for_good(engine: AsyncEngine) -> None:
    await _orders(engine)
    links = AgentLinks(engine, lambda: NOW)
    await _link(engine, WX, "12345")
    await _link(engine, MAIL, "12345")  # say: a friend's order number, not the same person
    pid = await _profile(engine, WX)
    assert pid is not None
    assert await links.unlink(pid, MAIL, actor="li", reason="朋友的订单，不是同一人") == pid
    assert await _profile(engine, MAIL) is None
    # the next mention does not link it again: agents see a suggestion instead
    assert await _link(engine, MAIL, "12345 怎么还没到") == [A.SUGGEST]
    assert await _profile(engine, MAIL) is None
    [unlinked] = await _events(engine, "unlinked")
    assert (unlinked["actor"], unlinked["proof"], unlinked["reason"]) == ("li", "order:12345", "朋友的订单，不是同一人")
    with pytest.raises(ProfileNotFound):
        await links.unlink(pid, MAIL, actor="li", reason=None)
    with pytest.raises(LinkConflict, match="only identity"):
        await links.unlink(pid, WX, actor="li", reason=None)


async def test_merge_moves_identities_keeps_the_higher_tier_and_audits(engine: AsyncEngine) -> None:
    links = AgentLinks(engine, lambda: NOW)
    profiles = CustomerProfiles(engine)
    a = (await profiles.set_tier(WX, Tier.NORMAL, now=NOW, name="王芳"))["id"]
    b = (await profiles.set_tier(MAIL, Tier.VIP, now=NOW))["id"]
    await links.add_identity(b, TG, actor="li", note=None)
    assert await links.merge(a, b, actor="li", reason="客户在微信里报出了邮箱") == a
    for identity in (WX, MAIL, TG):
        assert await _profile(engine, identity) == a
    async with engine.connect() as conn:
        assert await tier_of(conn, WX) is Tier.VIP
        assert await live_profile(conn, b) == a  # an old link to b still finds the customer
        view = await customer_view(conn, a)
    assert view is not None and (view["name"], view["tier"], view["merged_from"]) == ("王芳", "vip", [b])
    [merged] = await _events(engine, "merged")
    assert (merged["actor"], merged["reason"], merged["customer_id"], merged["other_customer_id"]) == (
        "li", "客户在微信里报出了邮箱", a, b)
    assert merged["data"]["tiers"] == {str(a): "normal", str(b): "vip"}  # type: ignore[index]
    assert {m["external_id"] for m in merged["data"]["moved"]} == {"wang@example.com", "4242"}  # type: ignore[index]
    with pytest.raises(LinkConflict, match="already one profile"):
        await links.merge(b, a, actor="li", reason="again")
    with pytest.raises(CustomerError, match="itself"):
        await links.merge(a, a, actor="li", reason="x")
    with pytest.raises(ProfileNotFound):
        await links.merge(a, 9999, actor="li", reason="x")
    # merging the survivor again keeps every old id one hop from the live profile
    c = (await profiles.set_tier(Identity("jd", "jd-1"), Tier.NORMAL, now=NOW))["id"]
    assert await links.merge(c, a, actor="sup", reason="同一人") == c
    async with engine.connect() as conn:
        assert [await live_profile(conn, x) for x in (a, b, c)] == [c, c, c]


async def test_many_channels_mentioning_one_order_at_once_end_in_one_profile(engine: AsyncEngine) -> None:
    await _orders(engine)
    writers = [Identity(ch, f"{ch}-{n}") for ch in ("wechat", "email", "telegram") for n in range(4)]
    await asyncio.gather(*(link_order_mentions(engine, w, "订单10086", NOW) for w in writers))
    found = {await _profile(engine, w) for w in writers}
    assert len(found) == 1 and None not in found
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(customers)) == 1  # no orphans from lost races
        assert await conn.scalar(select(func.count()).select_from(customer_identities)) == len(writers)


async def test_a_merge_racing_an_order_link_loses_no_identity(engine: AsyncEngine) -> None:
    await _orders(engine)
    links = AgentLinks(engine, lambda: NOW)
    profiles = CustomerProfiles(engine)
    a = (await profiles.set_tier(WX, Tier.NORMAL, now=NOW))["id"]
    b = (await profiles.set_tier(OWNER, Tier.VIP, now=NOW))["id"]
    writers = [Identity("email", f"m{n}@example.com") for n in range(6)]
    await asyncio.gather(links.merge(a, b, actor="li", reason="同一人"),
                         *(link_order_mentions(engine, w, "777001", NOW) for w in writers))
    for identity in (WX, OWNER, *writers):
        assert await _profile(engine, identity) == a
    async with engine.connect() as conn:
        assert await tier_of(conn, writers[0]) is Tier.VIP


@pytest.mark.parametrize("text", ["你好", "王芳", "1234 元", "", "退货地址是什么"])
async def test_no_order_like_number_touches_no_database(text: str, tmp_path: Path) -> None:
    unreachable = make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # any query would fail
    try:
        assert await link_order_mentions(unreachable, WX, text, NOW) == []
    finally:
        await unreachable.dispose()
