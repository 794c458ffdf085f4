"""``POST /webhooks/inbound``: the signed webhook channel's intake (``connectors/signed_webhook.py``).

Like every webhook: verify -> parse -> ``bus.ingest`` -> answer, with two additions the generic handler
has no room for:

* **replays**: a request whose signature was already accepted is refused (401, reason ``replayed``)
  for as long as its timestamp could still pass the window. The timestamp window alone bounds replays in
  time; this closes the window itself. An honest sender re-signs every attempt (a new timestamp gives a
  new signature), and its repeated message ids are then answered as duplicates, not stored twice.
  The signature is remembered only *after* the messages are persisted, so a push that failed on our
  side (503) can be sent again unchanged.
* **receipt**: the answer says which messages were new and which were duplicates.
"""

from __future__ import annotations

from aiohttp import web

from connectors.marketplace_sign import SignatureError
from connectors.signed_webhook import SIGNATURE_HEADER, SignedWebhookConnector, header
from gateway.models import Channel
from gateway.services import Services
from gateway.webhooks import read_request

WEBHOOK_PATH = "/webhooks/inbound"


def setup_signed_webhook_routes(app: web.Application, services: Services) -> None:
    connector: SignedWebhookConnector = services.connectors.get(Channel.WEBHOOK)
    # A timestamp passes while within ±skew of our clock: remember its signature that long, and a bit.
    remember_s = 2 * services.settings.webhook_max_skew_s + 5

    async def inbound(request: web.Request) -> web.Response:
        req = await read_request(request)
        connector.verify(req)  # SignatureError -> 401
        signature = (header(req.headers, SIGNATURE_HEADER) or "").lower()  # verified: 64 hex digits
        seen_key = services.keys.webhook_replay(signature)
        if await services.redis.exists(seen_key):
            raise SignatureError("replayed")
        messages = connector.parse(req.body)  # PayloadError -> 400 naming the field
        results = await services.bus.ingest(messages)  # persisted before we answer
        await services.redis.set(seen_key, "1", ex=remember_s)
        receipt = connector.receipt(messages, [r.duplicate for r in results])
        return web.Response(status=receipt.status, body=receipt.body, content_type=receipt.content_type)

    app.router.add_post(WEBHOOK_PATH, inbound)
