"""The agents directory on both databases: CRUD, validation, tokens (hashed, rotated, inactive)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import agents
from ticketing.agents import AgentDirectory, AgentError, AgentExists, AgentNotFound, AgentRecord

NOW = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)


@pytest.fixture
def directory(engine: AsyncEngine) -> AgentDirectory:
    return AgentDirectory(engine, clock=lambda: NOW)


async def test_create_get_list_update(directory: AgentDirectory) -> None:
    record, token = await directory.create("li.na", " 李娜 ", ["Logistics", "lang:en", "vip"], 5)
    assert record == AgentRecord(id="li.na", name="李娜", skills=frozenset({"logistics", "lang:en", "vip"}),
                                 max_concurrent=5, role="agent", team="default", active=True, created_at=NOW)
    assert token.startswith("hl_") and len(token) > 30
    assert await directory.get("li.na") == record
    assert await directory.get("nobody") is None

    await directory.create("wang", "王伟", [], 0, role="supervisor", team="night")
    assert [a.id for a in await directory.list()] == ["li.na", "wang"]

    updated = await directory.update("li.na", skills=["returns"], max_concurrent=8, team="day", role="admin")
    assert (updated.skills, updated.max_concurrent, updated.team, updated.role) == (
        frozenset({"returns"}), 8, "day", "admin")
    assert updated.name == "李娜"  # untouched fields stay
    assert await directory.update("li.na") == updated  # nothing to change is fine

    await directory.update("wang", active=False)
    assert [a.id for a in await directory.list()] == ["li.na"]
    assert [a.id for a in await directory.list(active_only=False)] == ["li.na", "wang"]


async def test_duplicate_id_and_missing_agent(directory: AgentDirectory) -> None:
    await directory.create("zhao", "赵", ["returns"], 3)
    with pytest.raises(AgentExists, match="already exists"):
        await directory.create("zhao", "另一个赵", [], 3)
    existing = await directory.get("zhao")
    assert existing is not None and existing.name == "赵"
    with pytest.raises(AgentNotFound):
        await directory.update("ghost", name="x")
    with pytest.raises(AgentNotFound):
        await directory.rotate_token("ghost")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": ""}, "agent id"),
    ({"id": "a" * 65}, "agent id"),
    ({"id": "li na"}, "agent id"),
    ({"id": "李"}, "agent id"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"skills": ["lang en"]}, "invalid skill"),
    ({"skills": [""]}, "invalid skill"),
    ({"skills": ["x" * 33]}, "invalid skill"),
    ({"skills": ["物流"]}, "invalid skill"),
    ({"skills": "logistics"}, "list"),
    ({"skills": [7]}, "invalid skill"),
    ({"max_concurrent": -1}, "max_concurrent"),
    ({"max_concurrent": 101}, "max_concurrent"),
    ({"max_concurrent": True}, "max_concurrent"),
    ({"max_concurrent": 2.0}, "max_concurrent"),
    ({"role": "root"}, "role"),
    ({"team": ""}, "team"),
])
async def test_validation(directory: AgentDirectory, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"id": "ok", "name": "好", "skills": ["returns"], "max_concurrent": 3, **kwargs}
    with pytest.raises(AgentError, match=message):
        await directory.create(**args)  # type: ignore[arg-type]
    assert await directory.list(active_only=False) == []


async def test_update_validates_too(directory: AgentDirectory) -> None:
    await directory.create("qian", "钱", ["returns"], 3)
    for kwargs in ({"max_concurrent": 500}, {"skills": ["BAD SKILL"]}, {"role": "owner"}, {"active": "yes"}):
        with pytest.raises(AgentError):
            await directory.update("qian", **kwargs)
    assert (await directory.get("qian")) == (await directory.list())[0]
    assert (await directory.list())[0].max_concurrent == 3


async def test_boundaries_are_accepted(directory: AgentDirectory) -> None:
    record, _ = await directory.create("A" * 64, "x" * 128, ["a" * 32, "lang:zh-hant", "tier_1"], 100)
    assert record.max_concurrent == 100
    record, _ = await directory.create("trainee_1", "实习", [], 0)
    assert record.max_concurrent == 0 and record.skills == frozenset()


async def test_token_is_stored_only_as_its_hash(directory: AgentDirectory, engine: AsyncEngine) -> None:
    _, token = await directory.create("sun", "孙", [], 2)
    async with engine.connect() as conn:
        stored = await conn.scalar(select(agents.c.token_hash).where(agents.c.id == "sun"))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored)


async def test_authenticate_rotate_and_inactive(directory: AgentDirectory) -> None:
    record, token = await directory.create("zhou", "周", ["vip"], 4, role="supervisor")
    _, other_token = await directory.create("wu", "吴", [], 4)
    assert await directory.authenticate(token) == record
    assert (await directory.authenticate(other_token)).id == "wu"  # type: ignore[union-attr]
    for wrong in ("", "hl_", token + "x", token[:-1], "Bearer " + token, "hl_" + "a" * 500, other_token.upper()):
        assert await directory.authenticate(wrong) is None

    new_token = await directory.rotate_token("zhou")
    assert new_token != token
    assert await directory.authenticate(token) is None  # the old token stops working at once
    assert await directory.authenticate(new_token) == record

    await directory.update("zhou", active=False)
    assert await directory.authenticate(new_token) is None  # inactive agents never authenticate
    await directory.update("zhou", active=True)
    assert (await directory.authenticate(new_token)) is not None
