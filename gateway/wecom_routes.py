"""WeCom 微信客服 wiring: the connector with the shared access token, and ``GET/POST /webhooks/wecom``.

GET is WeCom's URL check: verify ``msg_signature`` over ``echostr`` and answer its decrypted plaintext.
POST is the ``kf_msg_or_event`` callback: verify, decrypt, record the pull request, answer ``success``
(the pull itself runs in ``gateway/wecom_puller.py``, well inside WeCom's few seconds).
"""

from __future__ import annotations

from urllib.parse import unquote

import redis.asyncio as aioredis
from aiohttp import web

from connectors.base import PayloadError, WebhookRequest
from connectors.wecom_kf import WeComKfConnector
from gateway.access_tokens import SharedAccessToken
from gateway.config import Settings
from gateway.keys import Keys
from gateway.services import Services
from gateway.wecom_puller import request_pull

PATH = "/webhooks/wecom"


def build_wecom_connector(settings: Settings, redis: aioredis.Redis, keys: Keys) -> WeComKfConnector:
    """The connector, with its token in the deployment-wide cache (kf APIs need the 微信客服 secret's
    own token, hence a cache name per corp *and* secret kind)."""
    assert settings.wecom_corp_id and settings.wecom_kf_secret and settings.wecom_token
    assert settings.wecom_encoding_aes_key
    connector = WeComKfConnector(settings.wecom_corp_id, settings.wecom_kf_secret, settings.wecom_token,
                                 settings.wecom_encoding_aes_key, api_base=settings.wecom_api_base)
    # The cache fetches through the connector, so it is attached after construction.
    connector.tokens = SharedAccessToken(redis, keys, f"wecom-kf:{settings.wecom_corp_id}",
                                         connector.fetch_access_token)
    return connector


def raw_query(request: web.Request) -> dict[str, str]:
    """Query parameters percent-decoded *without* form rules: ``+`` stays ``+`` (WeCom's base64 echostr
    and Encrypt contain ``+``; aiohttp's ``request.query`` would turn an unescaped one into a space)."""
    params: dict[str, str] = {}
    for part in request.rel_url.raw_query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            params.setdefault(unquote(name, errors="strict"), unquote(value, errors="strict"))
        except UnicodeDecodeError as exc:
            raise PayloadError(f"query parameter is not UTF-8: {exc}") from exc
    return params


async def _request(request: web.Request) -> WebhookRequest:
    body = await request.read()  # bounded by client_max_size (413 beyond it)
    return WebhookRequest(method=request.method, path=request.path, headers=dict(request.headers),
                          query=raw_query(request), body=body, remote=request.remote)


def setup_wecom_routes(app: web.Application, services: Services, connector: WeComKfConnector) -> None:
    async def verify_url(request: web.Request) -> web.StreamResponse:
        plaintext = connector.verify_url(await _request(request))  # 401/400 through the errors middleware
        return web.Response(body=plaintext.encode(), content_type="text/plain")

    async def callback(request: web.Request) -> web.StreamResponse:
        req = await _request(request)
        connector.verify(req)
        kf = connector.parse_callback(req.body)
        if kf is not None:
            await request_pull(services, kf)  # durable before we acknowledge
        ack = connector.ack([])
        return web.Response(status=ack.status, body=ack.body, content_type=ack.content_type)

    app.router.add_get(PATH, verify_url)
    app.router.add_post(PATH, callback)
