"""Start-up and shutdown of one Huiliu process: storage, knowledge index, connectors, workers, HTTP.

``make run`` uses all of it in one process; at scale the same pieces run as separate processes that
meet in Redis and the database (see docker-compose.yml).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import rasa_process
from bot.circuit import CircuitBreaker
from bot.dialogue_bot import DialogueBot
from bot.dialogue_memory import DialogueMemory
from bot.orders import DbOrderLookup
from bot.rasa_client import RasaClient
from bot.retrieval_bot import RetrievalBot
from bot.worker import BotWorker
from connectors.registry import Connectors
from gateway.app import build_app
from gateway.channels import build_connectors, channel_tasks
from gateway.config import Settings
from gateway.db.articles import ArticleStore
from gateway.db.conversations import ConversationStore
from gateway.db.engine import make_engine
from gateway.db.migrate import upgrade
from gateway.delivery import DeliveryWorker
from gateway.keys import Keys
from gateway.knowledge import KnowledgeService
from gateway.models import utcnow
from gateway.outbound_limits import OutboundPolicy
from gateway.redis_conn import EmbeddedRedis, connect
from gateway.services import Services
from gateway.streams import Handler, StreamBus, StreamConsumer
from knowledge_index.article import load_kb_jsonl
from knowledge_index.embedder import Embedder, load_embedder
from ticketing.agents import AgentDirectory
from ticketing.canned import CannedStore
from ticketing.customers import CustomerProfiles
from ticketing.dispatcher import Dispatcher
from ticketing.escalation import TicketStore
from ticketing.escalator import Escalator
from ticketing.policy import PolicyStore, TicketingPolicy
from ticketing.presence import PresenceBoard
from ticketing.sentiment import SentimentScorer
from ticketing.service import TicketService
from ticketing.sla import Profile
from ticketing.sla_scheduler import SlaScheduler

log = logging.getLogger(__name__)


def demo_kb_path() -> Path:
    return Path(str(resources.files("knowledge_index").joinpath("demo_kb.jsonl")))


@dataclass
class Runtime:
    services: Services
    redis_url: str
    embedded: EmbeddedRedis | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    consumers: list[StreamConsumer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def open_services(
    settings: Settings, *, embedder: Embedder | None = None, pg_schema: str | None = None
) -> AsyncIterator[Runtime]:
    """Connect (or start) Redis, migrate the database, load the knowledge index, build connectors."""
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        port = int(os.environ.get("HUILIU_EMBEDDED_REDIS_PORT", "6390"))
        embedded = EmbeddedRedis(settings.data_dir / "redis", port=port)
        redis_url = await embedded.start()
    redis = connect(redis_url)
    engine = make_engine(settings.effective_database_url, pg_schema=pg_schema)
    try:
        await upgrade(engine)
        keys = Keys(settings.key_prefix)
        articles = ArticleStore(engine)
        if settings.load_demo_kb and await articles.count() == 0:
            n = await articles.upsert_many(load_kb_jsonl(demo_kb_path()))
            log.info("loaded %d demo knowledge articles", n)
        if embedder is None:
            embedder = await asyncio.to_thread(load_embedder, settings.embedding_model)
        kb = KnowledgeService(
            articles, redis, keys, embedder,
            settings.data_dir / "index", threshold=settings.decline_threshold,
        )
        await kb.start()
        instances = build_connectors(settings, redis, keys)
        bus = StreamBus(redis, keys, dedupe_ttl_s=settings.dedupe_ttl_s)
        policies = PolicyStore(engine, TicketingPolicy.from_settings(
            warn_before_min=settings.sla_warn_before_min, peak_factor=settings.sla_peak_factor,
            reopen_days=settings.reopen_days, claim_cap=settings.claim_cap_per_day, ask_csat=settings.ask_csat,
        ), default_profile=Profile(settings.sla_profile))
        presence = PresenceBoard(redis, keys, ttl_s=settings.presence_ttl_s, clock=utcnow)
        services = Services(
            settings=settings, redis=redis, keys=keys, engine=engine, bus=bus,
            ticket_service=TicketService(engine, bus, utcnow, policies=policies, redis=redis, keys=keys),
            conversations=ConversationStore(engine), tickets=TicketStore(engine), kb=kb,
            connectors=Connectors(instances), clock=utcnow, policies=policies,
            profiles=CustomerProfiles(engine), agents=AgentDirectory(engine), presence=presence,
            dispatcher=Dispatcher(engine, redis, keys, presence, utcnow,
                                  claim_cap_per_day=settings.claim_cap_per_day,
                                  interval_s=settings.routing_interval_s,
                                  auto_assign=settings.routing_mode == "auto"),
            canned=CannedStore(engine, utcnow),
        )
        runtime = Runtime(services, redis_url, embedded)
        if settings.load_demo_kb:
            await DbOrderLookup(engine).seed_demo()
            await services.canned.seed_demo()
        try:
            yield runtime
        finally:
            await stop_workers(runtime)
            await services.connectors.aclose()
            with contextlib.suppress(Exception):
                await kb.persist()
    finally:
        await redis.aclose()
        await engine.dispose()
        if embedded is not None:
            embedded.stop()


def make_bot(s: Services, rasa_url: str | None) -> RetrievalBot | DialogueBot:
    """Rasa-backed dialogue when a Rasa URL is known, else retrieval only (bot v0)."""
    if not rasa_url:
        return RetrievalBot(s.kb)
    return DialogueBot(
        kb=s.kb, rasa=RasaClient(rasa_url, timeout_s=s.settings.rasa_timeout_s),
        memory=DialogueMemory(s.redis, s.keys), orders=DbOrderLookup(s.engine),
        breaker=CircuitBreaker(clock=time.monotonic), fast_path_score=s.settings.fast_path_score,
    )


def start_workers(runtime: Runtime, *, name: str | None = None, telegram_polling: bool = True,
                  rasa_url: str | None = None) -> None:
    """Start the bot and delivery consumers, the knowledge follower and (once per deployment: Telegram
    allows one getUpdates client per bot) Telegram polling."""
    s = runtime.services
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    s.bot = make_bot(s, rasa_url)
    kb = s.kb
    bot = BotWorker(redis=s.redis, keys=s.keys, bus=s.bus, conversations=s.conversations, tickets=s.tickets,
                    bot=s.bot, clock=s.clock, ticket_service=s.ticket_service,
                    escalator=Escalator(s.policies, lambda article_id: a.tags if (a := kb.article(article_id)) else ()),
                    scorer=SentimentScorer(kb.embedder))
    delivery = DeliveryWorker(redis=s.redis, keys=s.keys, connectors=s.connectors,
                              tickets=s.tickets, clock=s.clock, policy=OutboundPolicy.from_settings(s.settings))
    def make(stream: str, group: str, handler: Handler, concurrency: int) -> StreamConsumer:
        return StreamConsumer(redis=s.redis, keys=s.keys, stream=stream, group=group, name=name,
                              handler=handler, concurrency=concurrency, max_attempts=s.settings.max_attempts,
                              claim_idle_ms=s.settings.claim_idle_ms)

    runtime.consumers = [
        make(s.keys.inbound, "bot", bot.handle, s.settings.bot_concurrency),
        make(s.keys.outbound, "delivery", delivery.handle, 16),
    ]
    for consumer in runtime.consumers:
        runtime.tasks.append(asyncio.create_task(consumer.run(runtime.stop), name=f"{consumer.group}-consumer"))
    # Replies waiting for a retry or a rate-limit slot go back on the stream when due (every process
    # may run the mover: each move is one atomic script).
    runtime.tasks.append(asyncio.create_task(delivery.outbox.run_mover(runtime.stop), name="outbound-mover"))
    runtime.tasks.append(asyncio.create_task(s.kb.follow(runtime.stop), name="kb-follow"))
    # Routing and SLA timers may run in every process: both take a Redis lock per pass.
    runtime.tasks.append(asyncio.create_task(s.dispatcher.run(runtime.stop), name="router"))
    scheduler = SlaScheduler(s.engine, s.redis, s.keys, s.clock, s.policies.current_sla)
    runtime.tasks.append(asyncio.create_task(
        scheduler.run(runtime.stop, interval_s=s.settings.sla_scan_interval_s), name="sla-scheduler"))
    for task_name, coro in channel_tasks(s, runtime.stop, polling=telegram_polling).items():
        runtime.tasks.append(asyncio.create_task(coro, name=task_name))


async def stop_workers(runtime: Runtime) -> None:
    runtime.stop.set()
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    runtime.tasks.clear()


@asynccontextmanager
async def dialogue_engine(settings: Settings, runtime: Runtime) -> AsyncIterator[str | None]:
    """The Rasa URL to use: external, embedded (trained if needed, started here), or None (off)."""
    if settings.rasa_mode == "off":
        yield None
        return
    if settings.rasa_mode == "url":
        yield settings.rasa_url
        return
    try:
        model = await asyncio.to_thread(rasa_process.train, settings.rasa_venv, settings.data_dir / "rasa-models")
    except rasa_process.RasaSetupError as exc:
        log.warning("Rasa unavailable, answering with retrieval only: %s", str(exc).splitlines()[0])
        yield None
        return
    servers = rasa_process.RasaServers(
        settings.rasa_venv, model, settings.data_dir / "rasa-run", runtime.redis_url, settings.key_prefix,
        port=settings.rasa_port, actions_port=settings.rasa_actions_port)
    try:
        await servers.start()
        log.info("Rasa ready at %s (logs in %s)", servers.url, servers.run_dir)
        yield servers.url
    finally:
        servers.stop()


async def serve(settings: Settings, *, http: bool = True) -> None:
    """Run everything in this process until SIGINT/SIGTERM (``http=False``: stream workers only)."""
    if not http and settings.rasa_mode == "embedded":
        # A worker process uses the Rasa that `huiliu run` started on this host (the circuit
        # breaker degrades to retrieval if it is not there).
        settings = settings.with_(rasa_mode="url", rasa_url=f"http://127.0.0.1:{settings.rasa_port}")
    async with open_services(settings) as runtime, dialogue_engine(settings, runtime) as rasa_url:
        start_workers(runtime, telegram_polling=http, rasa_url=rasa_url)
        if not http:
            print("汇流 Huiliu worker running (bot + delivery consumers)", flush=True)
            await _until_signal()
            return
        app_runner = web.AppRunner(build_app(runtime.services), access_log=None)
        await app_runner.setup()
        site = web.TCPSite(app_runner, settings.host, settings.port)
        await site.start()
        url = f"http://{settings.host}:{settings.port}"
        print(f"\n汇流 Huiliu is running · 网页聊天 web chat: {url}/chat", flush=True)
        print(f"客服工作台 web console: {url}/console/  (登录 sign in: admin / the admin token below)", flush=True)
        print(f"Admin API token 管理令牌: {settings.admin_token}  (header: Authorization: Bearer <token>)",
              flush=True)
        await _until_signal()
        await app_runner.cleanup()


async def _until_signal() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    print("shutting down… 正在停止", flush=True)
