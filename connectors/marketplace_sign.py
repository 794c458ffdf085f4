"""Request signing for the Chinese marketplace open platforms, plus Huiliu's generic signed-webhook scheme.

Marketplace API signing (channels spec §5.1–§5.4) — all three share "sort the params by key (ASCII),
concatenate ``key + value`` with no separators, hash, uppercase hex":

* **Taobao/Tmall TOP** (``top_sign``): ``sign`` and file (``bytes``) params are left out, and so are empty
  values. ``md5`` = MD5(secret + concat + secret); ``hmac`` = HMAC-MD5(secret, concat) with **no**
  wrapping; ``hmac-sha256`` = HMAC-SHA256(secret, concat).
* **JD JOS** (``jd_sign``): MD5(secret + concat + secret) over every param actually sent except ``sign``;
  the business params travel as one JSON string in ``360buy_param_json`` (``jd_param_json`` builds it —
  the very same string must be sent).
* **Pinduoduo POP** (``pdd_sign``): MD5(client_secret + concat + client_secret) over every common and
  business param except ``sign``.

Values must be the exact strings that go on the wire; ``int`` is accepted and rendered in decimal,
``None`` means "not sent". ``bool`` is refused because Python's ``True`` is not the ``true`` the platforms'
Java SDKs send.

Generic signed webhook (for channels we define ourselves, e.g. a shop system pushing orders/chats):

* the sender puts the Unix time in seconds (ASCII decimal) in a timestamp header, e.g.
  ``X-Huiliu-Timestamp: 1700000000``;
* and ``hex(HMAC-SHA256(secret, timestamp_header_bytes + b"." + raw_body))`` (lowercase; we accept either
  case) in a signature header, e.g. ``X-Huiliu-Signature: 5f1c…``;
* the receiver (``check_webhook``) recomputes over the header *as sent* and the raw body bytes, and
  rejects timestamps more than ``window_s`` (default 300 s) in the past or in the future. The window only
  bounds replays; within it the caller still dedupes on the payload's own message id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from connectors.base import VerificationError

ParamValue = str | int | bytes | None
TopSignMethod = Literal["md5", "hmac", "hmac-sha256"]

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")  # ASCII only (``\d`` would admit other scripts' digits)
_HEX_SHA256_RE: Final = re.compile(r"[0-9a-fA-F]{64}")


def _text(key: str, value: str | int) -> str:
    if isinstance(value, bool):
        raise TypeError(f"parameter {key!r}: send 'true'/'false' as a string, not a bool")
    return value if isinstance(value, str) else str(value)


def _concat(params: Mapping[str, ParamValue], *, skip_empty: bool, allow_files: bool) -> str:
    parts: list[tuple[str, str]] = []
    for key, value in params.items():
        if key == "sign" or value is None:
            continue
        if isinstance(value, bytes):
            if not allow_files:
                raise TypeError(f"parameter {key!r}: bytes cannot be signed on this platform")
            continue  # TOP: file uploads are not part of the signature
        text = _text(key, value)
        if skip_empty and text == "":
            continue
        parts.append((key, text))
    parts.sort()  # str order is code-point order, i.e. ASCII order for the platforms' ASCII keys
    return "".join(k + v for k, v in parts)


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _wrapped_md5(secret: str | bytes, concat: str) -> str:
    key = _secret_bytes(secret)
    return hashlib.md5(key + concat.encode("utf-8") + key).hexdigest().upper()


def top_sign(params: Mapping[str, ParamValue], secret: str | bytes, method: TopSignMethod = "md5") -> str:
    """Taobao/Tmall TOP ``sign`` (uppercase hex) for ``sign_method`` = ``method``."""
    concat = _concat(params, skip_empty=True, allow_files=True)
    if method == "md5":
        return _wrapped_md5(secret, concat)
    if method == "hmac":
        return hmac.new(_secret_bytes(secret), concat.encode("utf-8"), hashlib.md5).hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(_secret_bytes(secret), concat.encode("utf-8"), hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown TOP sign_method {method!r}")


def jd_param_json(business: Mapping[str, Any]) -> str:
    """The ``360buy_param_json`` string: keys sorted, compact, non-ASCII kept (sign and send this string)."""
    return json.dumps(business, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def jd_sign(params: Mapping[str, ParamValue], secret: str | bytes) -> str:
    """JD JOS ``sign`` (uppercase hex) over the system params plus ``360buy_param_json``."""
    return _wrapped_md5(secret, _concat(params, skip_empty=False, allow_files=False))


def pdd_sign(params: Mapping[str, ParamValue], client_secret: str | bytes) -> str:
    """Pinduoduo POP ``sign`` (uppercase hex) over all common and business params."""
    return _wrapped_md5(client_secret, _concat(params, skip_empty=False, allow_files=False))


def verify_sign(expected: str, given: str) -> bool:
    """Constant-time, case-insensitive compare of two hex signatures (bytes, so non-ASCII input is safe)."""
    return hmac.compare_digest(expected.upper().encode("utf-8"), given.upper().encode("utf-8"))


# -- generic signed webhook ---------------------------------------------------------------------------


class SignatureError(VerificationError):
    """A signed webhook failed its check; ``reason`` is a stable machine-readable code.

    Reasons: ``missing_timestamp``, ``bad_timestamp``, ``expired``, ``future``, ``missing_signature``,
    ``bad_signature``. Being a ``VerificationError``, the gateway answers 401 for it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"webhook signature rejected: {reason}")
        self.reason = reason


def webhook_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256(secret, f"{timestamp}." + body) — what a sender puts in the header."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def check_webhook(
    secret: str | bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: datetime,
    window_s: int = 300,
) -> None:
    """Raise ``SignatureError`` unless the webhook is signed with ``secret`` and fresh; ``now`` is aware UTC."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not timestamp_header:
        raise SignatureError("missing_timestamp")
    if not _TIMESTAMP_RE.fullmatch(timestamp_header):
        raise SignatureError("bad_timestamp")
    if not signature_header:
        raise SignatureError("missing_signature")
    # Check the signature before the clock so a forged request learns nothing about our time window.
    if not _HEX_SHA256_RE.fullmatch(signature_header) or not hmac.compare_digest(
        webhook_signature(secret, timestamp_header, body).encode("ascii"), signature_header.lower().encode("ascii")
    ):
        raise SignatureError("bad_signature")
    age = now.timestamp() - int(timestamp_header)
    if age > window_s:
        raise SignatureError("expired")
    if age < -window_s:
        raise SignatureError("future")
