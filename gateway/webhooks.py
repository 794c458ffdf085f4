"""The one webhook path every pushed channel shares: verify -> parse -> append to stream -> respond."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.base import WebhookRequest
from gateway.models import InboundMessage
from gateway.services import Services


async def read_request(request: web.Request) -> WebhookRequest:
    # request.read() enforces client_max_size and raises 413 beyond it.
    body = await request.read()
    return WebhookRequest(
        method=request.method,
        path=request.path,
        headers=dict(request.headers),
        query=dict(request.query),
        body=body,
        remote=request.remote,
    )


def verify_and_parse(connector: Any, req: WebhookRequest) -> list[InboundMessage]:
    """Raises ConnectorError subclasses for forged or malformed input (answered with 4xx)."""
    connector.verify(req)
    messages: list[InboundMessage] = connector.parse(req.body)
    return messages


def make_webhook_handler(services: Services, connector: Any) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        messages = verify_and_parse(connector, await read_request(request))
        await services.bus.ingest(messages)  # persisted before we acknowledge
        ack = connector.ack(messages)
        return web.Response(status=ack.status, body=ack.body, content_type=ack.content_type)

    return handle
