"""WeChat Official Account wiring: the connector with its shared access token, and its two routes.

``GET /webhooks/wechat`` is the MP console's URL check (echo ``echostr`` as text/plain after the
signature check; a bad signature is 401). ``POST /webhooks/wechat`` is the shared webhook path
(verify -> parse -> persist with dedupe -> ``success``), which keeps us well inside WeChat's 5 seconds:
the reply is sent later by the delivery worker through ``custom/send``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

from connectors.registry import connector_class
from gateway.access_tokens import SharedAccessToken
from gateway.config import Settings
from gateway.keys import Keys
from gateway.models import Channel
from gateway.webhooks import make_webhook_handler, read_request

if TYPE_CHECKING:
    from connectors.wechat import WeChatConnector
    from gateway.services import Services

WEBHOOK_PATH = "/webhooks/wechat"


def build_wechat_connector(settings: Settings, redis: aioredis.Redis, keys: Keys) -> WeChatConnector:
    """The configured Official Account; its access_token is one Redis-cached value per AppID that every
    process shares (a second fetcher would invalidate the first one's token)."""
    assert settings.wechat_app_id and settings.wechat_app_secret and settings.wechat_token
    connector: WeChatConnector = connector_class(Channel.WECHAT)(
        settings.wechat_app_id, settings.wechat_app_secret, settings.wechat_token,
        settings.wechat_encoding_aes_key, api_base=settings.wechat_api_base,
        subscribe_text=settings.wechat_subscribe_text,
    )
    connector.tokens = SharedAccessToken(redis, keys, f"wechat:{settings.wechat_app_id}",
                                         connector.fetch_access_token)
    return connector


def setup_wechat_routes(app: web.Application, services: Services) -> None:
    connector: WeChatConnector = services.connectors.get(Channel.WECHAT)

    async def verify_url(request: web.Request) -> web.Response:
        echostr = connector.verify_url(await read_request(request))  # VerificationError -> 401
        return web.Response(text=echostr, content_type="text/plain")

    app.router.add_get(WEBHOOK_PATH, verify_url)
    app.router.add_post(WEBHOOK_PATH, make_webhook_handler(services, connector))
