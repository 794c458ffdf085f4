"""Database engine: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when DATABASE_URL says so."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Insert
from sqlalchemy.sql.schema import Table

from gateway.config import ConfigError


class DatabaseURLError(ConfigError):
    pass


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``) and pick async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise DatabaseURLError(f"unsupported DATABASE_URL {url.split('://')[0]!r}: use postgresql:// or sqlite:///")


def make_engine(url: str, *, pg_schema: str | None = None) -> AsyncEngine:
    """Create the async engine. ``pg_schema`` pins PostgreSQL's search_path (tests isolate runs with it)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # One connection: SQLite has a single writer anyway, and several pooled connections contend
        # through its busy-wait loop (sleeps of up to 100 ms), which collapsed throughput at 8+
        # concurrent conversations in `make bench`. Queueing on one connection is fair and fast.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers (admin API, eval) run while the bot worker writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if pg_schema:
        connect_args["server_settings"] = {"search_path": pg_schema}
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
    )


def insert_ignore(conn: AsyncConnection, table: Table, index_elements: list[str]) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect (idempotent writes)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
