"""JSON error responses and the middleware that guarantees bad input never becomes a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.exc import OperationalError

from connectors.base import ConnectorError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except ConnectorError as exc:
        code = {401: "unauthorized", 413: "payload_too_large"}.get(exc.status, "bad_request")
        return error_response(exc.status, code, str(exc))
    except json.JSONDecodeError as exc:
        return error_response(400, "bad_json", f"body is not valid JSON: {exc}")
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "payload_too_large", "request body is too large")
    except web.HTTPException:
        raise
    except (aioredis.RedisError, OperationalError, OSError) as exc:
        # The message was NOT persisted: 503 makes the channel retry later, so nothing is lost.
        log.error("storage unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "unavailable", "storage temporarily unavailable, retry later")
    except Exception:
        # A bug, not bad input: log it with the traceback, answer without leaking internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; it has been logged")
