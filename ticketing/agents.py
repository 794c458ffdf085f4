"""The agents directory: who the staff are, what they can handle, their API tokens and console passwords.

Roles (agent < supervisor < admin) come from this table, so the HTTP layer authorises from it. An
API token is shown once, at creation or rotation; only its sha256 is stored, so a leaked database or
backup holds no usable credentials. Console passwords are stored as scrypt hashes (gateway.passwords).
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import passwords
from gateway.db.schema import agents
from gateway.models import utcnow

ROLES = ("agent", "supervisor", "admin")
MAX_CONCURRENT_LIMIT = 100
TOKEN_PREFIX = "hl_"

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SKILL = re.compile(r"[a-z0-9:_-]{1,32}")
_MAX_TOKEN_LEN = 128  # ours are 35 characters; anything far longer is not worth hashing


class AgentError(ValueError):
    """Invalid agent data (answered 400 by the HTTP layer)."""


class AgentExists(AgentError):
    """An agent with that id is already registered (answered 409)."""


class AgentNotFound(AgentError, LookupError):
    """No agent with that id (answered 404)."""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One row of the agents table, without the token hash or the password hash."""

    id: str
    name: str
    skills: frozenset[str]
    max_concurrent: int
    role: str
    team: str
    active: bool
    created_at: datetime
    # gateway.passwords.stamp of the password hash (None: no console password). Console sessions
    # compare it on every request, so a password change anywhere ends them.
    password_stamp: str | None = None

    @property
    def has_password(self) -> bool:
        return self.password_stamp is not None


# --- validation (pure) -----------------------------------------------------------------------------


def valid_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not _ID.fullmatch(agent_id):
        raise AgentError("客服ID须为1-64位字母、数字或 _.- / agent id must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return agent_id


def valid_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(cleaned) <= 128:
        raise AgentError("姓名须为1-128个字符 / name must be 1-128 characters")
    return cleaned


def valid_skills(skills: Iterable[str]) -> frozenset[str]:
    """Skills are normalised to lowercase ("VIP" -> "vip"), then must match ``[a-z0-9:_-]{1,32}``."""
    if isinstance(skills, str):
        raise AgentError("技能须为列表 / skills must be a list of strings, not one string")
    result: set[str] = set()
    for skill in skills:
        cleaned = skill.strip().lower() if isinstance(skill, str) else ""
        if not _SKILL.fullmatch(cleaned):
            raise AgentError(f"技能 {skill!r} 无效：须为1-32位 a-z 0-9 : _ - / invalid skill {skill!r}: "
                             "use 1-32 characters of a-z 0-9 : _ - (e.g. lang:en)")
        result.add(cleaned)
    return frozenset(result)


def valid_max_concurrent(value: int) -> int:
    # bool is an int subclass; True as "1 slot" is always a client bug.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CONCURRENT_LIMIT:
        raise AgentError(f"最大并发须为0-{MAX_CONCURRENT_LIMIT}的整数 / "
                         f"max_concurrent must be an integer 0..{MAX_CONCURRENT_LIMIT}")
    return value


def valid_role(role: str) -> str:
    if role not in ROLES:
        raise AgentError(f"角色须为 {' | '.join(ROLES)} / role must be one of {', '.join(ROLES)}")
    return role


def valid_team(team: str) -> str:
    cleaned = team.strip() if isinstance(team, str) else ""
    if not 1 <= len(cleaned) <= 64:
        raise AgentError("团队名须为1-64个字符 / team must be 1-64 characters")
    return cleaned


def new_token() -> str:
    """A fresh API token: 192 random bits, recognisable by its prefix (secret scanners, log review)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- statements for callers composing one transaction ------------------------------------------------


def _record(m: Any) -> AgentRecord:
    encoded = m["password_hash"]
    return AgentRecord(id=m["id"], name=m["name"], skills=frozenset(m["skills"] or ()),
                       max_concurrent=m["max_concurrent"], role=m["role"], team=m["team"],
                       active=bool(m["active"]), created_at=m["created_at"],
                       password_stamp=passwords.stamp(encoded) if encoded else None)


async def load_agent(conn: AsyncConnection, agent_id: str) -> AgentRecord | None:
    row = (await conn.execute(select(agents).where(agents.c.id == agent_id))).first()
    return _record(row._mapping) if row else None


async def load_agents(conn: AsyncConnection, *, active_only: bool = True) -> list[AgentRecord]:
    """Agents ordered by id (inside the caller's connection: SQLite runs with a one-connection pool)."""
    query = select(agents).order_by(agents.c.id)
    if active_only:
        query = query.where(agents.c.active.is_(True))
    return [_record(r._mapping) for r in await conn.execute(query)]


class AgentDirectory:
    """Create, read, update agents; issue, rotate and check their API tokens."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    async def create(self, id: str, name: str, skills: Iterable[str], max_concurrent: int, *,
                     role: str = "agent", team: str = "default",
                     password: str | None = None) -> tuple[AgentRecord, str]:
        """Register an agent; returns the record and the plaintext token (shown once, never stored).

        ``password`` (optional) lets them log in to the console; without one they use the token only.
        """
        token = new_token()
        record = AgentRecord(id=valid_id(id), name=valid_name(name), skills=valid_skills(skills),
                             max_concurrent=valid_max_concurrent(max_concurrent), role=valid_role(role),
                             team=valid_team(team), active=True, created_at=self.clock())
        encoded = None
        if password is not None:
            encoded = await asyncio.to_thread(passwords.hash_password, password)
            record = replace(record, password_stamp=passwords.stamp(encoded))
        try:
            async with self.engine.begin() as conn:
                await conn.execute(agents.insert().values(
                    id=record.id, name=record.name, skills=sorted(record.skills),
                    max_concurrent=record.max_concurrent, role=record.role, team=record.team, active=True,
                    created_at=record.created_at, token_hash=token_hash(token), password_hash=encoded))
        except IntegrityError:
            # The primary key is the only constraint a caller can hit (a token hash collision would
            # take ~2^96 tokens).
            raise AgentExists(f"客服 {id} 已存在 / agent {id!r} already exists") from None
        return record, token

    async def rotate_token(self, id: str) -> str:
        """Issue a new token; the old one stops working at once."""
        token = new_token()
        async with self.engine.begin() as conn:
            done = await conn.execute(update(agents).where(agents.c.id == id).values(token_hash=token_hash(token)))
        if (done.rowcount or 0) == 0:
            raise AgentNotFound(f"没有客服 {id} / no agent {id!r}")
        return token

    async def get(self, id: str) -> AgentRecord | None:
        async with self.engine.connect() as conn:
            return await load_agent(conn, id)

    async def list(self, active_only: bool = True) -> builtins.list[AgentRecord]:
        """Agents ordered by id; with ``active_only`` the deactivated ones are left out."""
        async with self.engine.connect() as conn:
            return await load_agents(conn, active_only=active_only)

    async def update(self, id: str, *, name: str | None = None, skills: Iterable[str] | None = None,
                     max_concurrent: int | None = None, role: str | None = None, team: str | None = None,
                     active: bool | None = None) -> AgentRecord:
        """Change the given fields (None leaves a field as it is); returns the updated record."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = valid_name(name)
        if skills is not None:
            values["skills"] = sorted(valid_skills(skills))
        if max_concurrent is not None:
            values["max_concurrent"] = valid_max_concurrent(max_concurrent)
        if role is not None:
            values["role"] = valid_role(role)
        if team is not None:
            values["team"] = valid_team(team)
        if active is not None:
            if not isinstance(active, bool):
                raise AgentError("active 须为 true/false / active must be a boolean")
            values["active"] = active
        async with self.engine.begin() as conn:
            if values:
                await conn.execute(update(agents).where(agents.c.id == id).values(**values))
            record = await load_agent(conn, id)
        if record is None:
            raise AgentNotFound(f"没有客服 {id} / no agent {id!r}")
        return record

    async def authenticate(self, token: str) -> AgentRecord | None:
        """The active agent holding ``token``, else None.

        No constant-time comparison is needed: the database compares *hashes*, and the timing of an
        index lookup can at best reveal how many leading characters of sha256(guess) match a stored
        hash. That says nothing about the token itself -- sha256 is preimage-resistant, so an attacker
        cannot steer a guess's hash character by character -- and the token has 192 random bits, so
        guessing it outright is hopeless. (The bootstrap admin token, compared as plaintext, does use
        ``hmac.compare_digest``.)
        """
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LEN:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(agents).where(agents.c.token_hash == token_hash(token)))).first()
        if row is None or not row._mapping["active"]:
            return None
        return _record(row._mapping)

    async def set_password(self, agent_id: str, password: str) -> AgentRecord:
        """Set (or replace) the console password; :class:`PasswordError` when the policy refuses it.

        The caller ends the agent's console sessions (they would also end at their next request: the
        record's ``password_stamp`` changes).
        """
        encoded = await asyncio.to_thread(passwords.hash_password, password)
        async with self.engine.begin() as conn:
            await conn.execute(update(agents).where(agents.c.id == agent_id).values(password_hash=encoded))
            record = await load_agent(conn, agent_id)
        if record is None:
            raise AgentNotFound(f"没有客服 {agent_id} / no agent {agent_id!r}")
        return record

    async def check_password(self, agent_id: str, password: str) -> AgentRecord | None:
        """The active agent ``agent_id`` if ``password`` is theirs, else None.

        Unknown ids, inactive accounts and accounts without a password still cost one scrypt (against
        a dummy hash), so response timing does not tell which usernames exist.
        """
        row = None
        if isinstance(agent_id, str) and _ID.fullmatch(agent_id):
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(agents).where(agents.c.id == agent_id))).first()
        encoded = row._mapping["password_hash"] if row is not None and row._mapping["active"] else None
        candidate = password if isinstance(password, str) else ""
        ok = await asyncio.to_thread(_verify_or_dummy, candidate, encoded)
        if not ok or row is None or not encoded:
            return None
        return _record(row._mapping)


def _verify_or_dummy(password: str, encoded: str | None) -> bool:
    """Runs in a worker thread: the first ``dummy_hash()`` call hashes too."""
    return passwords.verify_password(password, encoded or passwords.dummy_hash())
