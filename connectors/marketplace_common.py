"""Helpers the marketplace adapters share (Taobao, JD, Pinduoduo): China-time stamps, tolerant field
lookup in chat payloads whose schema is not public, platform-error classification results, reply text
rendering and a lazily created HTTP session. No adapter imports another; they all import this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from connectors.base import PayloadError
from connectors.feed import FeedError
from connectors.text_parts import with_numbered_options
from gateway.models import DeliveryResult

# The platforms' gateways take and return wall-clock times in China Standard Time (GMT+8, no DST).
CST: Final = timezone(timedelta(hours=8), "CST")
_CST_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_CST_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_DIGITS_RE: Final = re.compile(r"-?[0-9]{1,19}")
_MS_THRESHOLD: Final = 100_000_000_000  # epoch values above this are milliseconds (year 5138 in seconds)

TRANSIENT_RETRY_S: Final = 5.0  # network errors and platform "busy": try again soon
RATE_LIMIT_RETRY_S: Final = 60.0  # call-count limits: the platforms lift them after a minute or more


def cst_timestamp(now: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in GMT+8, the ``timestamp`` format of TOP and JOS. ``now`` is aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(CST).strftime(_CST_FORMAT)


def parse_time(value: object, where: str) -> datetime:
    """A platform time as aware UTC: epoch seconds or milliseconds (number or digit string), or
    ``yyyy-MM-dd HH:mm:ss[.ffffff]`` read as GMT+8. Raises ``PayloadError`` for anything else."""
    try:
        if isinstance(value, bool):
            raise ValueError("boolean")
        if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
            value = int(value)
        if isinstance(value, int | float):
            seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and _CST_RE.fullmatch(value):
            fmt = _CST_FORMAT + (".%f" if "." in value else "")
            return datetime.strptime(value, fmt).replace(tzinfo=CST).astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"{where}: unusable time {value!r}") from exc
    raise PayloadError(f"{where}: unusable time {value!r}")


def first_value(obj: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    """The first of ``keys`` holding a non-empty string or an integer, as a string (ids arrive as
    either, depending on the platform and its SDK)."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def json_object(value: object, where: str) -> dict[str, Any]:
    """A JSON object given either decoded or as a JSON string (message services wrap payloads)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object")
    return value


# Assumed direction markers of chat payloads (the chat schemas are not public; see each adapter).
_SELLER_ROLES: Final = frozenset({"seller", "waiter", "mall", "shop", "kefu", "service", "robot", "bot", "staff"})
_BUYER_ROLES: Final = frozenset({"buyer", "customer", "user", "consumer"})
_OUTBOUND_DIRECTIONS: Final = frozenset({"seller_to_buyer", "out", "outbound", "send", "mall_to_buyer"})
_SELLER_FLAGS: Final = ("from_seller", "is_seller", "waiter_send", "waiterSend", "is_send")


def sent_by_shop(payload: Mapping[str, Any]) -> bool:
    """Whether a chat payload was written by the shop side (its staff, a bot, or our own reply echoed
    back), judged from the assumed direction fields; payloads with none count as the buyer's."""
    for key in ("from_role", "sender_role", "role"):
        role = payload.get(key)
        if isinstance(role, str) and role.lower() in _SELLER_ROLES:
            return True
        if isinstance(role, str) and role.lower() in _BUYER_ROLES:
            return False
    direction = payload.get("direction")
    if isinstance(direction, str):
        return direction.lower() in _OUTBOUND_DIRECTIONS
    return any(payload.get(flag) is True or payload.get(flag) in (1, "1", "true") for flag in _SELLER_FLAGS)


# Marketplace chats have no buttons: quick replies become numbered options the customer types back.
render_text = with_numbered_options


@dataclass(frozen=True, slots=True)
class PlatformError:
    """A classified platform error (see each adapter's table). ``retry_after`` None means permanent."""

    platform: str
    method: str
    code: str
    message: str
    sub_code: str = ""
    retry_after: float | None = None

    @property
    def permanent(self) -> bool:
        return self.retry_after is None

    def describe(self) -> str:
        sub = f" [{self.sub_code}]" if self.sub_code else ""
        return f"{self.platform} {self.method} failed: {self.code}{sub} {self.message}".strip()

    def delivery(self) -> DeliveryResult:
        return DeliveryResult(ok=False, permanent=self.permanent, retry_after=self.retry_after,
                              error=self.describe())

    def feed_error(self) -> FeedError:
        return FeedError(self.describe(), permanent=self.permanent, retry_after=self.retry_after)


def network_failure(platform: str, what: str, exc: BaseException) -> DeliveryResult:
    """A send that never got a platform answer: transient (no idempotency key, so it may duplicate)."""
    return DeliveryResult(ok=False, retry_after=TRANSIENT_RETRY_S,
                          error=f"{platform} {what}: network error {type(exc).__name__}: {exc}")


class PlatformCallError(Exception):
    """A platform answered a call with an error; ``error`` holds its classification."""

    def __init__(self, error: PlatformError) -> None:
        super().__init__(error.describe())
        self.error = error


def decode_answer(platform: str, method: str, status: int, body: bytes,
                  classify: Callable[[str, Mapping[str, Any]], PlatformError]) -> dict[str, Any]:
    """The JSON object a platform gateway answered. Raises ``PlatformCallError`` for an answer that is
    not a JSON object (transient when the gateway itself failed) or that carries ``error_response``."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        retry = TRANSIENT_RETRY_S if status >= 500 or status == 200 else None
        raise PlatformCallError(PlatformError(platform, method, f"HTTP {status}", "answer is not a JSON object",
                                              retry_after=retry))
    if "error_response" in data:
        err = data["error_response"]
        raise PlatformCallError(classify(method, err if isinstance(err, dict) else {}))
    return data
