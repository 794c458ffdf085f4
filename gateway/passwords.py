"""Console passwords: scrypt hashes (stdlib ``hashlib.scrypt``), checked in constant time.

A hash is stored as ``scrypt$n$r$p$salt_b64$hash_b64`` so the cost parameters can be raised later
without invalidating existing hashes: verification reads them from the string. n=2**14, r=8 costs
16 MiB and ~50 ms per hash, slow enough to make offline guessing of a leaked database expensive.

Hashing is CPU- and memory-heavy, so callers on the event loop run it in a thread, and at most
``MAX_PARALLEL`` hashes run at once per process: a burst of logins queues instead of allocating
16 MiB per request.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import threading

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 8
MAX_LENGTH = 256  # longer inputs are pasted junk, and scrypt would hash them all
MAX_PARALLEL = 4

_SLOTS = threading.BoundedSemaphore(MAX_PARALLEL)


class PasswordError(ValueError):
    """A password the policy refuses (answered 400 by the HTTP layer)."""


def validate(password: object) -> str:
    """``password`` if it is acceptable, else :class:`PasswordError` with a bilingual message."""
    if not isinstance(password, str):
        raise PasswordError("密码须为字符串 / password must be a string")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"密码至少需要 {MIN_LENGTH} 个字符 / password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"密码最多 {MAX_LENGTH} 个字符 / password must be at most {MAX_LENGTH} characters")
    return password


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    # maxmem: scrypt needs 128*n*r*p bytes; OpenSSL's default cap (32 MiB) would refuse raised costs.
    with _SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=size,
                              maxmem=128 * n * r * p + (1 << 20))


def hash_password(password: str) -> str:
    """A new encoded hash of ``password`` (validated first) with a fresh random salt."""
    validate(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, N, R, P, HASH_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    # Bounds keep a corrupted row from asking scrypt for gigabytes.
    sane = 2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
    if not sane or not salt or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; a malformed hash or non-string input is False."""
    if not isinstance(password, str) or not isinstance(encoded, str) or len(password) > MAX_LENGTH:
        return False
    parsed = _parse(encoded)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


@functools.cache
def dummy_hash() -> str:
    """A hash nobody knows the password of: checked for unknown users so timing hides who exists."""
    return hash_password(secrets.token_urlsafe(24))


def stamp(encoded: str) -> str:
    """A short fingerprint of an encoded hash. Console sessions remember it at login; any password
    change (API or CLI) changes it, which ends those sessions. It reveals nothing about the password."""
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]
