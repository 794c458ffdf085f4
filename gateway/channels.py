"""Which channels this process serves: connector instances, their HTTP routes and their intake tasks.

Every channel is wired here and nowhere else, one block per channel, so adding a channel touches the
registry, this module and its own files. Connectors are built only when configured (a channel whose
credentials are missing is simply absent); intake loops that must run once per deployment (pollers
holding a cursor) take a Redis lock inside themselves, so every process may start them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from aiohttp import web

from connectors.registry import connector_class
from gateway.config import Settings
from gateway.keys import Keys
from gateway.models import Channel
from gateway.telegram_poller import poll_telegram
from gateway.webhooks import make_webhook_handler

if TYPE_CHECKING:
    from gateway.services import Services


TELEGRAM_WEBHOOK_PATH = "/webhooks/telegram"


def build_connectors(settings: Settings, redis: aioredis.Redis, keys: Keys) -> dict[Channel, Any]:
    """Connector instances for every configured channel (no I/O: connectors connect lazily)."""
    instances: dict[Channel, Any] = {
        Channel.WEBCHAT: connector_class(Channel.WEBCHAT)(settings.webchat_secret, redis=redis, keys=keys)
    }
    if settings.telegram_mode != "off" and settings.telegram_bot_token:
        instances[Channel.TELEGRAM] = connector_class(Channel.TELEGRAM)(
            settings.telegram_bot_token,
            webhook_secret=settings.telegram_webhook_secret,
            api_base=settings.telegram_api_base,
        )
    # --- wechat (Official Account) ---
    if settings.wechat_app_id and settings.wechat_app_secret and settings.wechat_token:
        from gateway.wechat_routes import build_wechat_connector  # imported only when configured

        instances[Channel.WECHAT] = build_wechat_connector(settings, redis, keys)
    # --- wecom kf ---
    if settings.wecom_corp_id and settings.wecom_kf_secret and settings.wecom_token and settings.wecom_encoding_aes_key:
        from gateway.wecom_routes import build_wecom_connector  # imported only when configured

        instances[Channel.WECOM] = build_wecom_connector(settings, redis, keys)
    # --- email ---
    if settings.email_address and settings.email_imap_host and settings.email_smtp_host:
        from connectors.email import SmtpSettings  # imported only when configured (pulls in aiosmtplib)
        from gateway.email_threads import RedisEmailThreads

        instances[Channel.EMAIL] = connector_class(Channel.EMAIL)(
            address=settings.email_address,
            token_secret=settings.email_token_secret or settings.webchat_secret,
            smtp=SmtpSettings(host=settings.email_smtp_host, port=settings.email_smtp_port,
                              username=settings.email_smtp_user, password=settings.email_smtp_password,
                              tls=settings.email_smtp_tls),  # type: ignore[arg-type]  # validated by Settings
            threads=RedisEmailThreads(redis, keys),
        )
    # --- marketplaces and signed webhook ---
    if settings.webhook_secret:
        instances[Channel.WEBHOOK] = connector_class(Channel.WEBHOOK)(
            settings.webhook_secret, callback_url=settings.webhook_callback_url,
            max_skew_s=settings.webhook_max_skew_s, max_body_bytes=settings.max_body_bytes,
        )
    if settings.taobao_app_key and settings.taobao_app_secret and settings.taobao_session:
        instances[Channel.TAOBAO] = connector_class(Channel.TAOBAO)(
            app_key=settings.taobao_app_key, app_secret=settings.taobao_app_secret, session=settings.taobao_session,
            chat_topics=settings.taobao_chat_topics, api_base=settings.taobao_api_base,
            sign_method=settings.taobao_sign_method, tmc_group=settings.taobao_tmc_group,
            send_method=settings.taobao_send_method, idle_wait_s=settings.taobao_poll_idle_s,
        )
    if settings.jd_app_key and settings.jd_app_secret and settings.jd_access_token:
        instances[Channel.JD] = connector_class(Channel.JD)(
            app_key=settings.jd_app_key, app_secret=settings.jd_app_secret, access_token=settings.jd_access_token,
            api_base=settings.jd_api_base, waiter=settings.jd_waiter, push_method=settings.jd_push_method,
            push_param1=settings.jd_push_param1, poll_interval_s=settings.jd_poll_interval_s,
            overlap_s=settings.jd_poll_overlap_s,
        )
    if settings.pdd_client_id and settings.pdd_client_secret and settings.pdd_access_token:
        instances[Channel.PINDUODUO] = connector_class(Channel.PINDUODUO)(
            client_id=settings.pdd_client_id, client_secret=settings.pdd_client_secret,
            access_token=settings.pdd_access_token, chat_types=settings.pdd_chat_types,
            api_base=settings.pdd_api_base, ws_base=settings.pdd_ws_base, send_type=settings.pdd_send_type,
            ws_sign_digest=settings.pdd_ws_sign_digest,
        )
    return instances


def setup_channel_routes(app: web.Application, services: Services) -> None:
    """Webhook routes of the configured pushed channels (all share verify -> parse -> stream -> ack)."""
    connectors = services.connectors
    if Channel.TELEGRAM in connectors and services.settings.telegram_mode == "webhook":
        app.router.add_post(TELEGRAM_WEBHOOK_PATH, make_webhook_handler(services, connectors.get(Channel.TELEGRAM)))
    # --- wechat (Official Account) ---
    if Channel.WECHAT in connectors:
        from gateway.wechat_routes import setup_wechat_routes

        setup_wechat_routes(app, services)
    # --- wecom kf ---
    if Channel.WECOM in connectors:
        from gateway.wecom_routes import setup_wecom_routes

        setup_wecom_routes(app, services, connectors.get(Channel.WECOM))
    # --- marketplaces and signed webhook ---
    if Channel.WEBHOOK in connectors:
        from gateway.signed_webhook_routes import setup_signed_webhook_routes

        setup_signed_webhook_routes(app, services)


def channel_tasks(services: Services, stop: asyncio.Event, *, polling: bool) -> dict[str, Coroutine[Any, Any, None]]:
    """Intake loops by task name. ``polling=False`` (worker-only processes) skips the pollers that must
    have a single client per account (Telegram's getUpdates)."""
    connectors = services.connectors
    tasks: dict[str, Coroutine[Any, Any, None]] = {}
    if polling and services.settings.telegram_mode == "polling" and Channel.TELEGRAM in connectors:
        tasks["telegram-poll"] = poll_telegram(services, connectors.get(Channel.TELEGRAM), stop)
    # --- wechat (Official Account) ---
    # --- wecom kf ---
    if Channel.WECOM in connectors:
        # Every process may run it: pulls take a per-account Redis lock, catch-up pulls a per-account gate.
        from gateway.wecom_puller import WeComPuller

        tasks["wecom-pull"] = WeComPuller(services, connectors.get(Channel.WECOM),
                                          poll_interval_s=services.settings.wecom_poll_interval_s).run(stop)
    # --- email ---
    s = services.settings
    if Channel.EMAIL in connectors and s.email_imap_host:
        # Any process may run it: the poller holds a per-mailbox Redis lock, so one polls at a time.
        from gateway.email_poller import EmailPoller, ImapSettings
        from gateway.email_threads import RedisEmailThreads

        imap = ImapSettings(host=s.email_imap_host, port=s.email_imap_port, user=s.email_imap_user or "",
                            password=s.email_imap_password or "", ssl=s.email_imap_ssl, folder=s.email_imap_folder,
                            poll_interval_s=s.email_poll_interval_s)
        tasks["email-poll"] = EmailPoller(services, connectors.get(Channel.EMAIL),
                                          RedisEmailThreads(services.redis, services.keys), imap).run(stop)
    # --- marketplaces and signed webhook ---
    # Every process may run them: exclusive feeds (PDD socket, JD cursor) hold a Redis lock inside.
    from gateway.marketplace_feed import run_feed

    for channel in (Channel.TAOBAO, Channel.JD, Channel.PINDUODUO):
        if channel in connectors:
            tasks[f"{channel.value}-feed"] = run_feed(services, connectors.get(channel), stop)
    return tasks
