"""``GET /api/channels`` (admin): which channels are configured and whether their intake works.

Before this page, a marketplace feed refusing our credentials showed only in the logs and in a Redis
hash. The answer lists every channel the product knows, configured or not, with:

* the settings it needs, by environment variable NAME with set/missing — never a value;
* where its messages come in: a webhook path (the console prefixes its own origin), the web chat
  page, ``polling`` or ``feed``;
* live health where an intake leaves traces: a marketplace feed's status hash (written by
  ``gateway/marketplace_feed.py``), whether an email poller holds its mailbox lock and how far its
  cursor got, the Telegram polling offset, the WeCom accounts and whether each has a cursor;
* messages per channel and direction in the last 24 h (one grouped query on the messages table);
* the pipeline: backlog (acknowledged entries are deleted, so a stream's length is its backlog) and
  pending entries per consumer group, dead letters, replies waiting in the delayed-retry set.

Cheap enough to poll every 30 s: one pipelined Redis round trip (a second one only for WeCom cursors)
and one SQL query. Missing keys read as empty; a missing stream reads as no groups. Error texts come
from platforms and exceptions, so any configured secret value found in them is masked as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import Role, require
from gateway.channels import TELEGRAM_WEBHOOK_PATH
from gateway.config import Settings
from gateway.db.schema import messages
from gateway.models import Channel
from gateway.redis_conn import as_text
from gateway.services import Services
from gateway.signed_webhook_routes import WEBHOOK_PATH as SIGNED_WEBHOOK_PATH
from gateway.wechat_routes import WEBHOOK_PATH as WECHAT_PATH
from gateway.wecom_routes import PATH as WECOM_PATH

WEBCHAT_PAGE = "/chat"
WINDOW = timedelta(hours=24)
MAX_WECOM_ACCOUNTS = 20  # a status page, not an inventory: the first accounts by id are enough
_MIN_MASKED_LEN = 6  # shorter values (ports, "1") would mangle ordinary text and are no secrets


@dataclass(frozen=True, slots=True)
class Need:
    """One setting a channel uses: its environment variable and the ``Settings`` field it fills."""

    env: str
    attr: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What the product knows about a channel without looking at Redis."""

    channel: Channel
    intake: str  # webchat | webhook | polling | feed (telegram: decided by TELEGRAM_MODE)
    needs: tuple[Need, ...]
    path: str | None = None


CATALOGUE: tuple[ChannelSpec, ...] = (
    ChannelSpec(Channel.WEBCHAT, "webchat", (Need("WEBCHAT_SECRET", "webchat_secret"),), WEBCHAT_PAGE),
    ChannelSpec(Channel.TELEGRAM, "polling", (
        Need("TELEGRAM_BOT_TOKEN", "telegram_bot_token"),
        Need("TELEGRAM_WEBHOOK_SECRET", "telegram_webhook_secret", required=False))),
    ChannelSpec(Channel.WECHAT, "webhook", (
        Need("WECHAT_APP_ID", "wechat_app_id"), Need("WECHAT_APP_SECRET", "wechat_app_secret"),
        Need("WECHAT_TOKEN", "wechat_token"),
        Need("WECHAT_ENCODING_AES_KEY", "wechat_encoding_aes_key", required=False)), WECHAT_PATH),
    ChannelSpec(Channel.WECOM, "webhook", (
        Need("WECOM_CORP_ID", "wecom_corp_id"), Need("WECOM_KF_SECRET", "wecom_kf_secret"),
        Need("WECOM_TOKEN", "wecom_token"), Need("WECOM_ENCODING_AES_KEY", "wecom_encoding_aes_key")), WECOM_PATH),
    ChannelSpec(Channel.EMAIL, "polling", (
        Need("EMAIL_ADDRESS", "email_address"), Need("EMAIL_IMAP_HOST", "email_imap_host"),
        Need("EMAIL_IMAP_PASSWORD", "email_imap_password"), Need("EMAIL_SMTP_HOST", "email_smtp_host"),
        Need("EMAIL_SMTP_PASSWORD", "email_smtp_password", required=False))),
    ChannelSpec(Channel.TAOBAO, "feed", (
        Need("TAOBAO_APP_KEY", "taobao_app_key"), Need("TAOBAO_APP_SECRET", "taobao_app_secret"),
        Need("TAOBAO_SESSION", "taobao_session"), Need("TAOBAO_CHAT_TOPICS", "taobao_chat_topics"),
        Need("TAOBAO_SEND_METHOD", "taobao_send_method", required=False))),
    ChannelSpec(Channel.JD, "feed", (
        Need("JD_APP_KEY", "jd_app_key"), Need("JD_APP_SECRET", "jd_app_secret"),
        Need("JD_ACCESS_TOKEN", "jd_access_token"), Need("JD_WAITER", "jd_waiter", required=False))),
    ChannelSpec(Channel.PINDUODUO, "feed", (
        Need("PDD_CLIENT_ID", "pdd_client_id"), Need("PDD_CLIENT_SECRET", "pdd_client_secret"),
        Need("PDD_ACCESS_TOKEN", "pdd_access_token"), Need("PDD_CHAT_TYPES", "pdd_chat_types"),
        Need("PDD_SEND_TYPE", "pdd_send_type", required=False))),
    ChannelSpec(Channel.WEBHOOK, "webhook", (
        Need("WEBHOOK_SECRET", "webhook_secret"), Need("WEBHOOK_CALLBACK_URL", "webhook_callback_url")),
        SIGNED_WEBHOOK_PATH),
)

# Values never to echo, even inside an error text: every catalogue setting plus the process's own secrets.
_SECRET_ATTRS = ("admin_token", "webchat_secret", "email_token_secret", "email_imap_password",
                 *(need.attr for spec in CATALOGUE for need in spec.needs))

Queue = Callable[[Any], Any]  # queues one command on a redis-py pipeline


def cmd(name: str, *args: Any) -> Queue:
    """A queued read: ``cmd("xlen", key)`` calls ``pipe.xlen(key)`` on the pipeline it is given."""
    return lambda pipe: getattr(pipe, name)(*args)


class Masker:
    """Replaces every configured secret value in a text with ``***``."""

    def __init__(self, settings: Settings) -> None:
        values = {v for a in _SECRET_ATTRS if isinstance(v := getattr(settings, a, None), str)}
        self._values = sorted((v for v in values if len(v) >= _MIN_MASKED_LEN), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text


async def read_all(redis: aioredis.Redis, reads: dict[str, Queue]) -> dict[str, Any]:
    """Run the queued reads in one round trip; a read Redis refused (a missing stream for XINFO) is None."""
    if not reads:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for queue in reads.values():
            queue(pipe)
        results = await pipe.execute(raise_on_error=False)
    return {name: None if isinstance(r, Exception) else r for name, r in zip(reads, results, strict=True)}


def _text_map(raw: Any) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in (raw or {}).items()}


def stream_figures(length: Any, groups: Any, dead: Any) -> dict[str, Any]:
    """Backlog, pending per consumer group (XINFO GROUPS) and dead letters of one stream."""
    rows = [{"name": as_text(g.get("name") or b""), "consumers": int(g.get("consumers") or 0),
             "pending": int(g.get("pending") or 0), "lag": g.get("lag")} for g in (groups or [])]
    return {"backlog": int(length or 0), "pending": sum(r["pending"] for r in rows), "groups": rows,
            "dead_letters": int(dead or 0)}


class ChannelProbe:
    """Builds the answer: queues every Redis read first, then shapes the results per channel."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.k = services.keys
        self.reads: dict[str, Queue] = {}
        self.mask = Masker(services.settings)

    def configured(self, channel: Channel) -> bool:
        return channel in self.s.connectors

    def queue_reads(self) -> None:
        k, inbound, outbound = self.k, self.k.inbound, self.k.outbound
        self.reads.update({
            "in.len": cmd("xlen", inbound), "in.groups": cmd("xinfo_groups", inbound),
            "in.dead": cmd("xlen", k.dead_letter(inbound)),
            "out.len": cmd("xlen", outbound), "out.groups": cmd("xinfo_groups", outbound),
            "out.dead": cmd("xlen", k.dead_letter(outbound)), "out.delayed": cmd("zcard", k.outbound_delayed),
        })
        for channel in (Channel.TAOBAO, Channel.JD, Channel.PINDUODUO):
            if self.configured(channel):
                adapter = self.s.connectors.get(channel)
                feed = adapter.feed_name
                self.reads[f"{channel}.status"] = cmd("hgetall", k.feed_status(feed))
                if adapter.exclusive:
                    self.reads[f"{channel}.lock"] = cmd("exists", k.feed_lock(feed))
        if self.configured(Channel.EMAIL):
            mailbox = self.mailbox()
            self.reads["email.cursor"] = cmd("hgetall", k.email_cursor(mailbox))
            self.reads["email.lock"] = cmd("exists", k.email_poller_lock(mailbox))
        if self.configured(Channel.TELEGRAM) and self.s.settings.telegram_mode == "polling":
            bot_id = str(getattr(self.s.connectors.get(Channel.TELEGRAM), "bot_id", "bot"))
            self.reads["telegram.offset"] = cmd("get", k.telegram_offset(bot_id))
        if self.configured(Channel.WECOM):
            self.reads["wecom.accounts"] = cmd("smembers", k.wecom_accounts)
            self.reads["wecom.pending"] = cmd("hlen", k.wecom_pending)

    def mailbox(self) -> str:
        """The email poller's mailbox name (its cursor and lock keys), built as the poller builds it."""
        from gateway.email_poller import ImapSettings  # imported only when configured (pulls in imapclient)

        s = self.s.settings
        return ImapSettings(host=s.email_imap_host or "", port=s.email_imap_port, user=s.email_imap_user or "",
                            password="", folder=s.email_imap_folder).mailbox

    async def wecom_cursors(self, got: dict[str, Any]) -> list[dict[str, Any]]:
        accounts = sorted(as_text(a) for a in (got.get("wecom.accounts") or ()))[:MAX_WECOM_ACCOUNTS]
        found = await read_all(self.s.redis, {a: cmd("exists", self.k.wecom_cursor(a)) for a in accounts})
        return [{"open_kfid": a, "cursor": bool(found.get(a))} for a in accounts]

    def feed_health(self, channel: Channel, got: dict[str, Any]) -> dict[str, Any]:
        status = _text_map(got.get(f"{channel}.status"))
        facts: dict[str, Any] = {}
        if f"{channel}.lock" in self.reads:  # exclusive feed: one process of the deployment consumes it
            facts["consumer_active"] = bool(got.get(f"{channel}.lock"))
        state = status.get("state") or None
        return health(state if state in ("ok", "error") else None, error=self.mask(status.get("error") or "") or None,
                      permanent=status.get("permanent") == "1", updated=status.get("at") or None,
                      note=None if state else "no_status_yet", facts=facts)

    async def channel_health(self, spec: ChannelSpec, got: dict[str, Any]) -> dict[str, Any] | None:
        channel = spec.channel
        if not self.configured(channel):
            return None
        if spec.intake == "feed":
            return self.feed_health(channel, got)
        if channel is Channel.EMAIL:
            cursor = _text_map(got.get("email.cursor"))
            polling = bool(got.get("email.lock"))
            last_uid = cursor.get("last_uid")
            return health("ok" if polling else "warning", note=None if polling else "no_poller", facts={
                "poller_active": polling, "cursor": bool(cursor),
                "last_uid": int(last_uid) if last_uid and last_uid.isdigit() else None})
        if channel is Channel.TELEGRAM and "telegram.offset" in self.reads:
            raw = got.get("telegram.offset")
            offset = as_text(raw) if raw is not None else ""
            return health(None, facts={"offset": int(offset) if offset.lstrip("-").isdigit() else None})
        if channel is Channel.WECOM:
            return health(None, facts={"accounts": await self.wecom_cursors(got),
                                       "pending_callbacks": int(got.get("wecom.pending") or 0)})
        return None  # pushed channels (web chat, webhooks) leave no trace between messages

    def describe(self, spec: ChannelSpec) -> dict[str, Any]:
        s = self.s.settings
        intake, path = spec.intake, spec.path
        mode: str | None = None
        if spec.channel is Channel.TELEGRAM:
            mode = s.telegram_mode
            intake, path = ("webhook", TELEGRAM_WEBHOOK_PATH) if mode == "webhook" else ("polling", None)
        elif spec.channel is Channel.WECHAT and self.configured(Channel.WECHAT):
            mode = "safe" if s.wechat_encoding_aes_key else "plaintext"
        return {
            "channel": spec.channel.value, "configured": self.configured(spec.channel), "mode": mode,
            "settings": [{"name": n.env, "set": bool(getattr(s, n.attr, None)), "required": n.required}
                         for n in spec.needs],
            "inbound": {"kind": intake, "path": path},
        }

    async def answer(self) -> dict[str, Any]:
        self.queue_reads()
        got = await read_all(self.s.redis, self.reads)
        counts = await message_counts(self.s.engine, self.s.clock() - WINDOW)
        channels = []
        for spec in CATALOGUE:
            row = self.describe(spec)
            row["health"] = await self.channel_health(spec, got)
            row["messages_24h"] = counts.get(spec.channel.value, {"in": 0, "out": 0})
            channels.append(row)
        outbound = stream_figures(got.get("out.len"), got.get("out.groups"), got.get("out.dead"))
        outbound["delayed_retries"] = int(got.get("out.delayed") or 0)
        return {
            "generated_at": self.s.clock().isoformat(), "window_hours": int(WINDOW.total_seconds() // 3600),
            "channels": channels,
            "pipeline": {"inbound": stream_figures(got.get("in.len"), got.get("in.groups"), got.get("in.dead")),
                         "outbound": outbound},
        }


def health(state: str | None, *, error: str | None = None, permanent: bool = False, updated: str | None = None,
           note: str | None = None, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """One channel's live health: ``state`` ok | warning | error | None (no live signal), an error text,
    when it was recorded, a ``note`` code for the console (no_status_yet, no_poller) and raw facts."""
    return {"state": state, "error": error, "permanent": permanent, "updated": updated, "note": note,
            "facts": facts or {}}


async def message_counts(engine: AsyncEngine, since: Any) -> dict[str, dict[str, int]]:
    """Messages per channel and direction since ``since`` (one grouped query on the created_at index)."""
    query = (select(messages.c.channel, messages.c.direction, func.count())
             .where(messages.c.created_at >= since).group_by(messages.c.channel, messages.c.direction))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    out: dict[str, dict[str, int]] = {}
    for channel, direction, n in rows:
        out.setdefault(str(channel), {"in": 0, "out": 0})[str(direction)] = int(n)
    return out


def setup_channel_status(app: web.Application, services: Services) -> None:
    """Register ``GET /api/channels`` (admin only)."""

    async def channels(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        return web.json_response(await ChannelProbe(services).answer())

    app.router.add_get("/api/channels", channels)
