"""HTTP routes of the web chat widget: session, send, typing, and the SSE reply stream."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from connectors.base import VerificationError
from connectors.webchat import WebchatConnector
from gateway.http_errors import ApiError
from gateway.models import Channel, conversation_id_for
from gateway.services import Services
from gateway.streams import read_entries
from gateway.typing_indicator import customer_typing
from gateway.webhooks import read_request, verify_and_parse

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE_KEEPALIVE_S = 15.0


def setup_webchat(app: web.Application, services: Services) -> None:
    chat: WebchatConnector = services.connectors.get(Channel.WEBCHAT)

    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "chat.html")

    async def session(request: web.Request) -> web.Response:
        body = await request.read()
        data = json.loads(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise ApiError(400, "bad_request", "body must be a JSON object")
        visitor_id, token = data.get("visitor_id"), data.get("token")
        if isinstance(visitor_id, str) and isinstance(token, str):
            try:
                chat.check(visitor_id, token)
            except VerificationError:
                visitor_id, token = chat.new_session()
        else:
            visitor_id, token = chat.new_session()
        return web.json_response(
            {"visitor_id": visitor_id, "token": token, "conversation_id": f"webchat:{visitor_id}"}
        )

    async def send(request: web.Request) -> web.Response:
        messages = verify_and_parse(chat, await read_request(request))
        results = await services.bus.ingest(messages)
        return web.json_response(
            {"message_id": results[0].message_id, "duplicate": results[0].duplicate}, status=202
        )

    async def typing(request: web.Request) -> web.Response:
        """The visitor is typing: tell the agents on the ticket (throttled; nothing stored); 204."""
        req = await read_request(request)
        chat.verify(req)  # the same visitor_id + token check as /messages (401 when wrong)
        visitor_id = json.loads(req.body)["visitor_id"]  # verify() checked: a JSON object, visitor_id a str
        await customer_typing(services, conversation_id_for(Channel.WEBCHAT, visitor_id))
        return web.Response(status=204)

    async def events(request: web.Request) -> web.StreamResponse:
        visitor_id = request.query.get("visitor_id", "")
        chat.check(visitor_id, request.query.get("token", ""))
        last = request.headers.get("Last-Event-ID") or request.query.get("since") or "0-0"
        if not _STREAM_ID.match(last):
            raise ApiError(400, "bad_request", "Last-Event-ID must be a stream id like 1700000000000-0")
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # let nginx pass events through unbuffered
        })
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n\n")
        key = services.keys.webchat_outbox(visitor_id)
        # A dedicated connection: a blocking XREAD must not hold one the workers need.
        redis = services.redis.client()
        try:
            while True:
                entries = await read_entries(redis, key, last, count=50, block_ms=int(SSE_KEEPALIVE_S * 1000))
                if not entries:
                    await resp.write(b": keepalive\n\n")
                    continue
                for last, fields in entries:
                    data = fields[b"e"].decode()
                    await resp.write(f"id: {last}\nevent: message\ndata: {data}\n\n".encode())
        except (ConnectionResetError, aioredis.RedisError) as exc:
            # The browser went away, or Redis blinked mid-stream: end this stream; EventSource
            # reconnects with Last-Event-ID and misses nothing.
            log.info("web chat event stream ended: %s", type(exc).__name__)
        finally:
            # Also runs on cancellation (server shutdown), which is re-raised, not swallowed.
            await redis.aclose()
        return resp

    async def root(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/chat")

    app.router.add_get("/", root)
    app.router.add_get("/chat", page)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_post("/api/webchat/session", session)
    app.router.add_post("/api/webchat/messages", send)
    app.router.add_post("/api/webchat/typing", typing)
    app.router.add_get("/api/webchat/events", events)
