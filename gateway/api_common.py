"""Small request/response helpers shared by the staff APIs (parsing with clear 400s, JSON output)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http_errors import ApiError


def jsonable(value: Any) -> Any:
    """Datetimes to ISO 8601, recursively (database rows go out as they are otherwise)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    return value.isoformat() if isinstance(value, datetime) else value


async def json_body(request: web.Request) -> dict[str, Any]:
    data = json.loads(await request.read() or b"null")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    return data


def text_field(data: dict[str, Any], name: str, max_len: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ApiError(400, "bad_request", f"{name} must be a non-empty string of at most {max_len} characters")
    return value.strip()


def int_param(request: web.Request, name: str) -> int:
    """A numeric path parameter; anything else is a 404 (no such resource), never a 500."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", f"no such {name}")
    return int(raw)
