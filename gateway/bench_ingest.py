"""``make bench`` part (a): webhook ingest throughput per connector, beside a bare aiohttp baseline.

Each pushed channel is loaded over real HTTP with requests exactly as the platform sends them
(signed; WeChat also in safe mode, so AES decryption is in the measured path): verify -> parse ->
dedupe -> XADD -> ack. The baseline is an aiohttp handler that only reads the body, served the same
way from a child process in the same run, so the ratio is comparable across machines. Email has no
webhook: its figure is the in-process parse + ingest rate of real RFC 822 messages beside a bare
XADD of the same bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from connectors.marketplace_sign import webhook_signature
from connectors.wechat_crypto import WeChatCrypto
from gateway.config import Settings
from gateway.models import utcnow
from gateway.redis_conn import free_port

TG_TOKEN = "123456789:BENCH-token"
TG_SECRET = "bench_secret"
WX_APP_ID = "wxbench0000000001"
WX_TOKEN = "benchtoken"
WX_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 chars, as WeChat issues them
HOOK_SECRET = "bench-webhook-secret"


@dataclass(frozen=True, slots=True)
class Req:
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Latencies:
    samples: list[float]
    elapsed: float

    def summary(self) -> dict[str, float]:
        s = sorted(self.samples)

        def pct(p: float) -> float:
            return s[min(len(s) - 1, int(p * len(s)))] * 1000

        return {"n": len(s), "per_s": round(len(s) / self.elapsed, 1), "p50_ms": round(pct(0.50), 2),
                "p95_ms": round(pct(0.95), 2), "p99_ms": round(pct(0.99), 2)}


# --- request builders, one per channel ------------------------------------------------------------
def telegram_req(i: int) -> Req:
    body = json.dumps({"update_id": i, "message": {
        "message_id": i, "from": {"id": 1000 + i % 500, "first_name": "B", "is_bot": False},
        "chat": {"id": 1000 + i % 500, "type": "private"}, "date": 1763000000, "text": "怎么退货"}}).encode()
    return Req("/webhooks/telegram", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                      "Content-Type": "application/json"}, body)


def _wechat_xml(i: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[o{1000 + i % 500}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[请问怎么退货]]></Content><MsgId>{7_000_000_000_000_000 + i}</MsgId></xml>")


def _sha1_sorted(*values: str) -> str:
    return hashlib.sha1("".join(sorted(values)).encode()).hexdigest()


def wechat_plain_req(i: int) -> Req:
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    query = urlencode({"signature": _sha1_sorted(WX_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                       "openid": f"o{1000 + i % 500}"})
    return Req(f"/webhooks/wechat?{query}", {"Content-Type": "text/xml"}, _wechat_xml(i).encode())


def make_wechat_safe_req() -> Callable[[int], Req]:
    crypto = WeChatCrypto(WX_TOKEN, WX_AES_KEY, WX_APP_ID)

    def build(i: int) -> Req:
        ts, nonce = str(int(time.time())), secrets.token_hex(5)
        encrypt = crypto.encrypt(_wechat_xml(i))
        body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        query = urlencode({"signature": _sha1_sorted(WX_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                           "encrypt_type": "aes", "msg_signature": _sha1_sorted(WX_TOKEN, ts, nonce, encrypt),
                           "openid": f"o{1000 + i % 500}"})
        return Req(f"/webhooks/wechat?{query}", {"Content-Type": "text/xml"}, body.encode())

    return build


def webhook_req(i: int) -> Req:
    body = json.dumps({"messages": [{
        "id": f"bench-{i}", "platform": "taobao", "conversation": f"buyer-{i % 500}",
        "customer": {"id": f"buyer-{i % 500}", "name": "买家"}, "text": "请问怎么退货",
        "sent_at": utcnow().isoformat()}]}, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    return Req("/webhooks/inbound", {"Content-Type": "application/json", "X-Huiliu-Timestamp": ts,
                                     "X-Huiliu-Signature": webhook_signature(HOOK_SECRET, ts, body)}, body)


CHANNELS: dict[str, Callable[[], Callable[[int], Req]]] = {
    "telegram": lambda: telegram_req,
    "wechat_plain": lambda: wechat_plain_req,
    "wechat_safe_mode": make_wechat_safe_req,
    "signed_webhook": lambda: webhook_req,
}


def bench_settings(base: Settings, *, safe_mode: bool) -> Settings:
    """Every pushed channel on; the platforms' APIs point at a closed port (ingest never calls them)."""
    return base.with_(
        telegram_mode="webhook", telegram_bot_token=TG_TOKEN, telegram_webhook_secret=TG_SECRET,
        telegram_api_base="http://127.0.0.1:9",
        wechat_app_id=WX_APP_ID, wechat_app_secret="bench", wechat_token=WX_TOKEN,
        wechat_encoding_aes_key=WX_AES_KEY if safe_mode else None, wechat_api_base="http://127.0.0.1:9",
        webhook_secret=HOOK_SECRET, webhook_callback_url="http://127.0.0.1:9/callback",
    )


# --- servers (child processes) ---------------------------------------------------------------------
def _serve_bare(port: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _serve_gateway(port: int, settings: Settings) -> None:
    from gateway.app import build_app
    from gateway.runtime import open_services

    async def main() -> None:
        async with open_services(settings, embedder=NullEmbedder()) as rt:
            runner = web.AppRunner(build_app(rt.services), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await asyncio.Event().wait()

    asyncio.run(main())


class NullEmbedder:
    """The ingest path never embeds; this keeps the child's start-up fast."""

    name = "bench-null"
    dim = 8

    def encode(self, texts: Any) -> Any:
        import numpy as np

        out = np.zeros((len(texts), 8), dtype="float32")
        out[:, 0] = 1.0
        return out


async def _wait_up(base_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"{base_url}/healthz") as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{base_url} did not come up")


async def load(base_url: str, reqs: list[Req], concurrency: int) -> Latencies:
    """Send every request with ``concurrency`` clients; any non-2xx aborts the run (it would be a bug)."""
    queue: asyncio.Queue[Req] = asyncio.Queue()
    for req in reqs:
        queue.put_nowait(req)
    samples: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def worker() -> None:
            while not queue.empty():
                req = queue.get_nowait()
                t0 = time.perf_counter()
                async with http.post(base_url + req.path_qs, data=req.body, headers=req.headers) as resp:
                    text = await resp.text()
                    if resp.status // 100 != 2:
                        raise RuntimeError(f"{req.path_qs.split('?')[0]}: HTTP {resp.status} {text[:200]}")
                samples.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Latencies(samples, time.perf_counter() - start)


async def _run_server(target: Callable[..., None], args: tuple[Any, ...],
                      loads: dict[str, Callable[[int], Req]], n: int, concurrency: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    proc = ctx.Process(target=target, args=(port, *args), daemon=True)
    proc.start()
    out: dict[str, Any] = {}
    try:
        base_url = f"http://127.0.0.1:{port}"
        if target is _serve_bare:
            await asyncio.sleep(0.5)
            for _ in range(100):
                try:
                    await load(base_url, [telegram_req(0)], 1)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        else:
            await _wait_up(base_url)
        for name, build in loads.items():
            offset = 10_000_000 * (1 + len(out))
            await load(base_url, [build(offset + 5_000_000 + i) for i in range(min(200, n))], concurrency)
            reqs = [build(offset + i) for i in range(n)]  # built before timing: signing is the sender's cost
            out[name] = (await load(base_url, reqs, concurrency)).summary()
    finally:
        proc.terminate()
        proc.join(10)
    return out


def _mail(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"买家{i % 500} <buyer{i % 500}@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = "请问怎么退货"
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(idstring=f"b{i}", domain="example.com")
    msg.set_content("你好，我上周买的水壶想退货，请问怎么操作？\n\n谢谢\n-- \n张三\n")
    return bytes(msg)


async def bench_email(settings: Settings, n: int) -> dict[str, Any]:
    """Parse + dedupe + XADD of real RFC 822 mails in-process, beside a bare XADD of the same bytes."""
    from connectors.email import EmailConnector, SmtpSettings
    from gateway.keys import Keys
    from gateway.redis_conn import connect
    from gateway.streams import StreamBus

    if settings.redis_url is None:
        raise RuntimeError("bench_email needs a Redis URL")
    redis = connect(settings.redis_url)
    keys = Keys(settings.key_prefix + "m")
    mails = [_mail(i) for i in range(n)]
    try:
        bus = StreamBus(redis, keys, dedupe_ttl_s=600)
        connector = EmailConnector(address="support@shop.example", token_secret="bench-token-secret",
                                   smtp=SmtpSettings(host="127.0.0.1", port=9))
        t0 = time.perf_counter()
        for raw in mails:
            await redis.xadd(keys.inbound + ":bare", {"m": raw})
        bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        for raw in mails:
            await bus.ingest(connector.parse(raw))
        parsed = time.perf_counter() - t0
        return {"bare_xadd_per_s": round(n / bare, 1), "email_per_s": round(n / parsed, 1),
                "ratio_vs_bare_xadd": round(bare / parsed, 3)}
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}:*", count=500):
            await redis.delete(key)
        await redis.aclose()


async def bench_ingest(settings: Settings, n: int, concurrency: int) -> dict[str, Any]:
    """Per-connector webhook ingest (requests/s, latency) and each one's ratio against the bare server."""
    bare = (await _run_server(_serve_bare, (), {"bare_aiohttp": telegram_req}, n, concurrency))["bare_aiohttp"]
    plain = {k: v() for k, v in CHANNELS.items() if k != "wechat_safe_mode"}
    results: dict[str, Any] = {"bare_aiohttp": bare}
    results.update(await _run_server(_serve_gateway, (bench_settings(settings, safe_mode=False),), plain,
                                     n, concurrency))
    results.update(await _run_server(
        _serve_gateway, (bench_settings(settings.with_(key_prefix=settings.key_prefix + "s"), safe_mode=True),),
        {"wechat_safe_mode": CHANNELS["wechat_safe_mode"]()}, n, concurrency))
    results["ratios_vs_bare"] = {k: round(v["per_s"] / bare["per_s"], 3) for k, v in results.items()
                                 if k != "bare_aiohttp" and isinstance(v, dict) and "per_s" in v}
    results["email"] = await bench_email(settings, min(n, 2000))
    results["concurrency"] = concurrency
    return results
