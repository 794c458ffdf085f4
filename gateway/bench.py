"""``make bench``: ingest and answer-path throughput/latency, each beside a baseline measured in this run.

(a) ingest per connector (``gateway/bench_ingest.py``): signed platform requests -> verify -> parse ->
    dedupe -> XADD -> ack, beside a bare aiohttp handler that only reads the body, both served by a
    child process and loaded from this one (WeChat also in safe mode; email as parse + ingest);
(b) FAQ answer path: inbound stream -> bot worker (transcript, retrieval, decision) -> reply on the
    outbound stream, closed-loop at several concurrencies;
(c) the embedding model alone (sentences/s, one sentence per call as the answer path uses it, and
    batched), so the answer path's overhead over the model is visible.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gateway.bench_ingest import Latencies, bench_ingest
from gateway.config import Settings
from gateway.models import Channel, CustomerRef, InboundMessage, OutboundMessage
from gateway.redis_conn import EmbeddedRedis, free_port
from gateway.streams import read_entries

QUESTIONS = [
    "怎么退货", "我买的东西什么时候发货", "退款多久到账", "发票怎么开", "可以改地址吗", "优惠券怎么用",
    "物流好几天没更新了", "保修多久", "How long does a refund take?", "Can I cancel my order?",
    "你们支持比特币付款吗", "帮我写一首诗",
]


# --- (b) answer path -------------------------------------------------------------------------------
async def bench_answer_path(settings: Settings, embedder: Any, n: int, levels: list[int], *,
                            rasa_url: str | None = None, questions: list[str] = QUESTIONS) -> dict[str, Any]:
    from gateway.runtime import open_services, start_workers

    out: dict[str, Any] = {}
    async with open_services(settings, embedder=embedder) as rt:
        s = rt.services
        start_workers(rt, rasa_url=rasa_url)
        # The delivery consumer would remove replies before we see them; we measure up to the stream.
        for consumer in rt.consumers:
            if consumer.group == "delivery":
                rt.tasks[rt.consumers.index(consumer)].cancel()
        pending: dict[str, asyncio.Future[float]] = {}
        stop = asyncio.Event()

        async def reader() -> None:
            last = "$"
            client = s.redis.client()
            while not stop.is_set():
                for sid, fields in await read_entries(client, s.keys.outbound, last, count=500, block_ms=200):
                    last = sid
                    reply = OutboundMessage.model_validate_json(fields[b"m"])
                    fut = pending.pop(reply.in_reply_to or "", None)
                    if fut and not fut.done():
                        fut.set_result(time.perf_counter())
            await client.aclose()

        reader_task = asyncio.create_task(reader())
        await asyncio.sleep(0.3)
        for level in levels:
            samples: list[float] = []
            counter = iter(range(n))

            async def customer(counter: Any = counter, samples: list[float] = samples) -> None:
                for i in counter:
                    key = f"bench-{uuid.uuid4().hex[:12]}"
                    msg = InboundMessage.build(
                        channel=Channel.WEBCHAT, external_message_id=f"{key}:{i}", conversation_key=key,
                        customer=CustomerRef(channel=Channel.WEBCHAT, external_id=key),
                        text=questions[i % len(questions)], sent_at=s.clock())
                    fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                    pending[msg.message_id] = fut
                    t0 = time.perf_counter()
                    await s.bus.ingest([msg])
                    samples.append(await asyncio.wait_for(fut, 60) - t0)

            start = time.perf_counter()
            await asyncio.gather(*(customer() for _ in range(level)))
            out[f"c{level}"] = Latencies(samples, time.perf_counter() - start).summary()
        stop.set()
        await reader_task
    return out


# --- (d) with Rasa: the gateway around Rasa vs. Rasa's REST webhook driven directly ---------------
# Paraphrases and dialogue turns: none is a near-verbatim KB phrasing, so none takes the fast path.
RASA_QUESTIONS = [
    "请问退款大概几天能到账啊", "能开增值税专用发票吗", "买完就降价了可以补差价不", "快递好几天都不动了",
    "嗨，在不在呀", "你们家支持花呗分期吗", "优惠券为什么用不了", "我的订单到哪了",
]


async def bench_rasa_direct(rasa_url: str, payloads: list[tuple[str, dict[str, Any]]], n: int,
                            concurrency: int) -> Latencies:
    """Baseline: POST the same messages (with the same metadata) straight to Rasa's REST channel."""
    samples: list[float] = []
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def customer() -> None:
            for i in counter:
                text, metadata = payloads[i % len(payloads)]
                body = {"sender": f"direct-{uuid.uuid4().hex[:12]}", "message": text, "metadata": metadata}
                t0 = time.perf_counter()
                async with http.post(f"{rasa_url}/webhooks/rest/webhook", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"Rasa answered {resp.status}")
                samples.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(customer() for _ in range(concurrency)))
        return Latencies(samples, time.perf_counter() - start)


async def bench_rasa(settings: Settings, embedder: Any, n: int, concurrency: int) -> dict[str, Any]:
    from bot import rasa_process
    from bot.dialogue_bot import DialogueBot
    from bot.dialogue_memory import Memory
    from gateway.runtime import make_bot, open_services

    model = await asyncio.to_thread(rasa_process.train, settings.rasa_venv, Path(".huiliu") / "rasa-models")
    servers = rasa_process.RasaServers(settings.rasa_venv, model, settings.data_dir / "rasa-run",
                                       settings.redis_url or "", settings.key_prefix, port=free_port(),
                                       actions_port=free_port())
    await servers.start()
    try:
        async with open_services(settings, embedder=embedder) as rt:
            bot = make_bot(rt.services, servers.url)
            assert isinstance(bot, DialogueBot)
            payloads = []
            for text in RASA_QUESTIONS:
                msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"m:{text}",
                                           conversation_key="bench", text=text, sent_at=rt.services.clock(),
                                           customer=CustomerRef(channel=Channel.WEBCHAT, external_id="b"))
                hits = bot.hits_json(await rt.services.kb.search(text, 3))
                payloads.append((text, await bot.metadata(msg, text, hits, Memory())))
            await bench_rasa_direct(servers.url, payloads, 40, concurrency)  # warm-up
        direct = (await bench_rasa_direct(servers.url, payloads, n, concurrency)).summary()
        # Same number of messages in flight to Rasa as the baseline keeps: bot worker concurrency = c.
        settings = settings.with_(bot_concurrency=concurrency)
        through = await bench_answer_path(settings.with_(fast_path_score=2.0), embedder, n, [concurrency],
                                          rasa_url=servers.url, questions=RASA_QUESTIONS)
        mixed = await bench_answer_path(settings, embedder, n, [concurrency], rasa_url=servers.url,
                                        questions=QUESTIONS + RASA_QUESTIONS)
    finally:
        servers.stop()
    gateway = through[f"c{concurrency}"]
    return {
        "concurrency": concurrency,
        "rasa_rest_direct": direct,
        "gateway_with_rasa": gateway,
        "ratio_gateway_vs_rasa_direct": round(gateway["per_s"] / direct["per_s"], 3),
        "gateway_mixed_with_fast_path": mixed[f"c{concurrency}"],
    }


# --- (e) routing: the pure assignment planner at contact-centre scale ----------------------------
def bench_routing(agents_n: int = 200, tickets_n: int = 10_000, seed: int = 7) -> dict[str, Any]:
    """Plan assignments for ``tickets_n`` waiting tickets over ``agents_n`` agents (skills, capacity,
    presence, load); the baseline is the same planner on a queue of 1,000, to show how it scales."""
    import random
    from datetime import UTC, datetime, timedelta

    from ticketing.routing import AgentView, Presence, TicketView, assign

    rng = random.Random(seed)
    skills = ["logistics", "returns", "invoices", "appliances", "vip", "en"]
    now = datetime(2026, 11, 11, tzinfo=UTC)
    agents = [AgentView(id=f"a{i}", skills=frozenset(rng.sample(skills, rng.randint(1, 4))),
                        max_concurrent=rng.randint(3, 8), presence=rng.choice(list(Presence)),
                        load=rng.randint(0, 2), last_assigned_at=now - timedelta(seconds=rng.randint(0, 3600)))
              for i in range(agents_n)]

    def queue(n: int) -> list[TicketView]:
        return [TicketView(id=f"t{i}", required_skills=frozenset(rng.sample(skills, rng.randint(0, 2))),
                           priority=rng.randint(0, 3), sla_due_at=now + timedelta(minutes=rng.randint(1, 600)),
                           created_at=now - timedelta(minutes=rng.randint(0, 600))) for i in range(n)]

    out: dict[str, Any] = {"agents": agents_n}
    for name, n in (("baseline_1k", 1_000), ("tickets_10k", tickets_n)):
        tickets = queue(n)
        start = time.perf_counter()
        plan = assign(tickets, agents, now)
        elapsed = time.perf_counter() - start
        out[name] = {"waiting": n, "assigned": len(plan), "seconds": round(elapsed, 4),
                     "tickets_considered_per_s": round(n / elapsed, 1)}
    return out


# --- (f) the router end to end: snapshot, plan, compare-and-set assignments, audit rows ------------
async def bench_dispatcher(settings: Settings, agents_n: int = 200, tickets_n: int = 10_000,
                           capacity: int = 10) -> dict[str, Any]:
    """``Dispatcher.plan_and_assign`` on SQLite + Redis: 10,000 waiting tickets, 200 online agents with
    ``capacity`` slots each (so agents_n * capacity tickets get assigned). Baseline: the same number of
    bare one-row UPDATE transactions on the same database -- the floor any router storing its
    assignments durably, one commit each, has to pay."""
    from sqlalchemy import insert, update

    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade
    from gateway.db.schema import agents, conversations, tickets
    from gateway.keys import Keys
    from gateway.models import utcnow
    from gateway.redis_conn import connect
    from ticketing.dispatcher import Dispatcher
    from ticketing.presence import PresenceBoard
    from ticketing.routing import Presence

    skills = ["logistics", "returns", "invoices", "appliances"]
    engine = make_engine(settings.effective_database_url)
    redis = connect(settings.redis_url or "")
    keys = Keys(settings.key_prefix + "r")
    try:
        await upgrade(engine)
        now = utcnow()
        async with engine.begin() as conn:
            await conn.execute(insert(agents), [
                {"id": f"a{i}", "name": f"a{i}", "skills": [skills[i % 4], skills[(i + 1) % 4]],
                 "max_concurrent": capacity, "created_at": now} for i in range(agents_n)])
            await conn.execute(insert(conversations), [
                {"id": f"c{i}", "channel": "webchat", "conversation_key": f"k{i}", "customer_external_id": f"u{i}",
                 "state": "queued", "created_at": now, "updated_at": now} for i in range(tickets_n)])
            await conn.execute(insert(tickets), [
                {"conversation_id": f"c{i}", "status": "new", "reason": "out_of_scope", "summary": "?",
                 "open_key": f"c{i}", "details": {}, "created_at": now, "updated_at": now, "priority": i % 4,
                 "skills": [skills[i % 4]], "first_response_due": now} for i in range(tickets_n)])
        presence = PresenceBoard(redis, keys, ttl_s=600)
        for i in range(agents_n):
            await presence.heartbeat(f"a{i}", Presence.ONLINE)
        dispatcher = Dispatcher(engine, redis, keys, presence, utcnow, lock_ttl_s=600.0)
        start = time.perf_counter()
        plan = await dispatcher.plan_and_assign()
        routed = time.perf_counter() - start
        n = len(plan)
        start = time.perf_counter()
        for i in range(n):  # baseline: n bare single-row commits
            async with engine.begin() as conn:
                await conn.execute(update(conversations).where(conversations.c.id == f"c{i}").values(state="agent"))
        bare = time.perf_counter() - start
        return {"agents": agents_n, "waiting": tickets_n, "assigned": n,
                "assigned_per_s": round(n / routed, 1), "bare_commits_per_s": round(n / bare, 1),
                "ratio_vs_bare_commits": round(bare / routed, 3)}
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}:*"):
            await redis.delete(key)
        await redis.aclose()
        await engine.dispose()


# --- (c) the model alone ---------------------------------------------------------------------------
def bench_encoder(embedder: Any, seconds: float = 3.0) -> dict[str, Any]:
    embedder.encode(QUESTIONS[:2])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embedder.encode([QUESTIONS[n % len(QUESTIONS)]])
        n += 1
    single = n / (time.perf_counter() - start)
    batch = QUESTIONS * 22
    start = time.perf_counter()
    rounds = 0
    while time.perf_counter() - start < seconds:
        embedder.encode(batch)
        rounds += 1
    batched = rounds * len(batch) / (time.perf_counter() - start)
    return {"model": embedder.name, "single_per_s": round(single, 1), "batch_per_s": round(batched, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from knowledge_index.embedder import load_embedder

    with tempfile.TemporaryDirectory(prefix="huiliu-bench-") as tmp:
        redis_url = os.environ.get("REDIS_URL")
        embedded = None
        if not redis_url:
            embedded = EmbeddedRedis(Path(tmp) / "redis", port=free_port(), appendonly=False)
            redis_url = await embedded.start()
        base = Settings(data_dir=Path(tmp) / "data", redis_url=redis_url,
                        database_url=f"sqlite:///{tmp}/bench.db", key_prefix=f"bench{uuid.uuid4().hex[:6]}",
                        admin_token="bench", webchat_secret="bench-secret-0123456789",
                        embedding_model=args.model)
        try:
            figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
            embedder = load_embedder(args.model)
            figures["encoder"] = bench_encoder(embedder)
            print("encoder:", figures["encoder"], flush=True)
            figures["ingest"] = await bench_ingest(base.with_(key_prefix=base.key_prefix + "i"),
                                                   args.ingest_n, args.ingest_concurrency)
            print("ingest:", figures["ingest"], flush=True)
            figures["answer_path"] = await bench_answer_path(base, embedder, args.answer_n, args.levels)
            print("answer path:", figures["answer_path"], flush=True)
            figures["routing"] = bench_routing()
            print("routing:", figures["routing"], flush=True)
            figures["router"] = await bench_dispatcher(base.with_(database_url=f"sqlite:///{tmp}/router.db"))
            print("router end to end:", figures["router"], flush=True)
            if not args.no_rasa:
                figures["rasa"] = await bench_rasa(base, embedder, args.rasa_n, args.rasa_concurrency)
                print("with rasa:", figures["rasa"], flush=True)
            best = max(v["per_s"] for v in figures["answer_path"].values())
            figures["answer_path_vs_encoder_single"] = round(best / figures["encoder"]["single_per_s"], 3)
            return figures
        finally:
            if embedded:
                embedded.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="huiliu bench")
    p.add_argument("--model", default=Settings().embedding_model)
    p.add_argument("--ingest-n", type=int, default=4000)
    p.add_argument("--ingest-concurrency", type=int, default=32)
    p.add_argument("--answer-n", type=int, default=600)
    p.add_argument("--levels", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8, 32])
    p.add_argument("--rasa-n", type=int, default=400)
    p.add_argument("--rasa-concurrency", type=int, default=16)
    p.add_argument("--no-rasa", action="store_true", help="skip the Rasa part (no Rasa venv)")
    args = p.parse_args(argv)
    figures = asyncio.run(run(args))
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

