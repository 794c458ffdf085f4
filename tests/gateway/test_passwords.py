"""Console passwords: the scrypt encoding, verification, the length policy, and the agents directory's
set_password/check_password on both databases (inactive accounts, unknown ids, timing)."""

from __future__ import annotations

import base64
import hashlib
import statistics
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import agents
from gateway.passwords import PasswordError, hash_password, stamp, validate, verify_password
from ticketing.agents import AgentDirectory, AgentNotFound

NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_hash_encoding_and_salt() -> None:
    encoded = hash_password("正确的密码 correct")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    again = hash_password("正确的密码 correct")
    assert again != encoded  # a fresh salt every time
    assert verify_password("正确的密码 correct", encoded) and verify_password("正确的密码 correct", again)
    assert stamp(encoded) != stamp(again) and len(stamp(encoded)) == 16


def test_cost_parameters_are_read_from_the_hash() -> None:
    """Raising the cost later must keep old hashes valid (and new costs verifiable)."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"older-password", salt=salt, n=2**10, r=4, p=2, dklen=24)
    encoded = f"scrypt${2**10}$4$2${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password("older-password", encoded)
    assert not verify_password("older-passworD", encoded)


GOOD = hash_password("right-password")
_, _N, _R, _P, _SALT, _DIGEST = GOOD.split("$")


@pytest.mark.parametrize(("password", "encoded"), [
    ("wrong-password", GOOD),
    ("right-passwor", GOOD),
    ("", GOOD),
    ("right-password", ""),
    ("right-password", "bcrypt$x"),
    ("right-password", GOOD.replace("scrypt$", "pbkdf2$")),
    ("right-password", f"scrypt$abc${_R}${_P}${_SALT}${_DIGEST}"),
    ("right-password", f"scrypt$1000${_R}${_P}${_SALT}${_DIGEST}"),  # n not a power of two
    ("right-password", f"scrypt${2**30}${_R}${_P}${_SALT}${_DIGEST}"),  # absurd cost from a corrupt row
    ("right-password", f"scrypt${_N}${_R}${_P}$!!notbase64${_DIGEST}"),
    ("right-password", f"scrypt${_N}${_R}${_P}${_SALT}$AAAA"),  # truncated hash
    ("right-password", GOOD + "$extra"),
    ("x" * 300, GOOD),  # over the length cap: refused without hashing
])
def test_verify_refuses(password: str, encoded: str) -> None:
    assert verify_password(password, encoded) is False


def test_verify_accepts_the_right_password() -> None:
    assert verify_password("right-password", GOOD)


@pytest.mark.parametrize(("password", "ok"), [
    ("1234567", False),
    ("12345678", True),
    ("密码密码密码密码", True),  # 8 characters, not bytes
    ("x" * 256, True),
    ("x" * 257, False),
    (None, False),
    (12345678, False),
])
def test_length_policy(password: object, ok: bool) -> None:
    if ok:
        assert validate(password) == password
    else:
        with pytest.raises(PasswordError, match="/"):  # bilingual message for the API's 400
            validate(password)


@pytest.fixture
def directory(engine: AsyncEngine) -> AgentDirectory:
    return AgentDirectory(engine, clock=lambda: NOW)


async def test_set_and_check_password(directory: AgentDirectory, engine: AsyncEngine) -> None:
    record, _token = await directory.create("li.na", "李娜", ["returns"], 5)
    assert not record.has_password and record.password_stamp is None
    assert await directory.check_password("li.na", "anything-at-all") is None  # no password: token only

    with pytest.raises(PasswordError):
        await directory.set_password("li.na", "short")
    updated = await directory.set_password("li.na", "li-na-password")
    assert updated.has_password
    found = await directory.check_password("li.na", "li-na-password")
    assert found is not None and found.id == "li.na" and found.password_stamp == updated.password_stamp
    assert await directory.check_password("li.na", "li-na-passworD") is None
    async with engine.connect() as conn:  # only the scrypt encoding is stored
        stored = (await conn.execute(select(agents.c.password_hash).where(agents.c.id == "li.na"))).scalar_one()
    assert stored.startswith("scrypt$") and "li-na-password" not in stored

    changed = await directory.set_password("li.na", "another-password")
    assert changed.password_stamp != updated.password_stamp  # this is what ends old console sessions
    assert await directory.check_password("li.na", "li-na-password") is None

    with pytest.raises(AgentNotFound):
        await directory.set_password("ghost", "ghost-password")


async def test_create_with_password_and_inactive_accounts(directory: AgentDirectory) -> None:
    record, _ = await directory.create("wang", "王伟", [], 3, role="supervisor", password="wang-password")
    assert record.has_password
    assert await directory.get("wang") == record
    with pytest.raises(PasswordError):
        await directory.create("zhao", "赵", [], 3, password="short")
    assert await directory.get("zhao") is None  # nothing half-created

    await directory.update("wang", active=False)
    assert await directory.check_password("wang", "wang-password") is None  # inactive never logs in
    await directory.update("wang", active=True)
    assert await directory.check_password("wang", "wang-password") is not None


@pytest.mark.parametrize("username", ["nobody", "bad id!", "x" * 500, ""])
async def test_unknown_users_are_refused(directory: AgentDirectory, username: str) -> None:
    assert await directory.check_password(username, "whatever-password") is None


async def test_unknown_users_cost_one_scrypt(directory: AgentDirectory) -> None:
    """Timing must not reveal which usernames exist: unknown ids hash a dummy like known ones hash theirs."""
    await directory.create("li", "李", [], 3, password="li-password")
    await directory.check_password("nobody", "warm-up-the-dummy")

    async def median(username: str) -> float:
        took = []
        for _ in range(5):
            start = time.perf_counter()
            await directory.check_password(username, "wrong-password")
            took.append(time.perf_counter() - start)
        return statistics.median(took)

    known, unknown = await median("li"), await median("nobody")
    # Without the dummy hash an unknown id costs one indexed lookup: ~50x faster than scrypt.
    assert unknown > known * 0.4, (known, unknown)
