"""The ``huiliu`` command: run, chat, agent add|token|passwd|list, kb import|search, eval, db upgrade, sla scan,
bench."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import uuid
from pathlib import Path

from gateway.config import ConfigError, Settings


def _cmd_run(args: argparse.Namespace) -> int:
    from gateway.runtime import serve

    asyncio.run(serve(Settings.from_env(), http=args.command == "run"))
    return 0


async def _chat(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(f"{url}/api/webchat/session", json={"name": "terminal"}) as resp:
                session = await resp.json()
        except aiohttp.ClientConnectionError:
            print(f"无法连接 {url} · cannot reach {url}: start the gateway first with `make run`.")
            return
        params = {"visitor_id": session["visitor_id"], "token": session["token"]}

        async def listen() -> None:
            async with http.get(f"{url}/api/webchat/events", params=params, timeout=None) as resp:
                async for raw in resp.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        label = {"bot": "机器人", "agent": "客服", "system": "系统"}.get(event["author"], "")
                        print(f"\n[{label} {event['author']}] {event['text']}\n> ", end="", flush=True)

        listener = asyncio.create_task(listen())
        print("汇流 Huiliu chat — 输入问题后回车，Ctrl-D 退出 · type a question, Ctrl-D to quit")
        try:
            while True:
                try:
                    text = await asyncio.to_thread(input, "> ")
                except EOFError:
                    break
                if not text.strip():
                    continue
                body = {**params, "client_message_id": uuid.uuid4().hex, "text": text}
                async with http.post(f"{url}/api/webchat/messages", json=body) as resp:
                    if resp.status >= 400:
                        print(f"error {resp.status}: {(await resp.json()).get('message')}")
                await asyncio.sleep(0.8)  # let the reply print before the next prompt
        finally:
            listener.cancel()


def _cmd_chat(args: argparse.Namespace) -> int:
    asyncio.run(_chat(args.url.rstrip("/")))
    return 0


async def _kb(args: argparse.Namespace) -> int:
    from gateway.runtime import open_services
    from knowledge_index.article import load_kb_jsonl

    settings = Settings.from_env().with_(load_demo_kb=args.kb_command != "import")
    async with open_services(settings) as runtime:
        kb = runtime.services.kb
        if args.kb_command == "import":
            items = load_kb_jsonl(Path(args.file))
            n = await kb.import_articles(items)
            print(f"imported {n} articles from {args.file}")
            return 0
        hits = await kb.search(args.text, args.k)
        decision = kb.decide(hits)
        for rank, hit in enumerate(hits, 1):
            article = kb.article(hit.article_id)
            print(f"{rank:2d}. {hit.score:.3f}  {hit.article_id}  {article.title if article else ''}")
        verdict = f"answer {decision.answer.article_id}" if decision.answer else f"decline ({decision.reason})"
        print(f"→ {verdict}; threshold {decision.threshold:.3f}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from knowledge_index import evaluation

    if args.eval_command == "retrieval":
        return evaluation.main_retrieval(args.rest)
    return evaluation.main_eval_all(Path(args.root))


def _cmd_db(_args: argparse.Namespace) -> int:
    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade

    async def run() -> None:
        engine = make_engine(Settings.from_env().effective_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is at the latest schema")
    return 0


# --- console sessions ---
def _read_password() -> str | None:
    """A new password: typed twice (hidden) on a terminal, else one line from stdin (scripts, pipes)."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("新密码 / new password: ")
        if getpass.getpass("再输入一次 / repeat: ") != first:
            print("错误 / error: 两次输入不一致 / the passwords do not match", file=sys.stderr)
            return None
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        print("错误 / error: 标准输入没有密码 / no password on stdin", file=sys.stderr)
        return None
    return line
# --- end console sessions ---


def _cmd_agent(args: argparse.Namespace) -> int:
    """Create a staff account (agent, supervisor or admin) and print its API token once; set passwords."""
    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade
    from gateway.passwords import PasswordError
    from ticketing.agents import AgentDirectory, AgentError

    settings = Settings.from_env()
    password: str | None = None
    if args.agent_command == "passwd" or getattr(args, "password_stdin", False):
        password = _read_password()
        if password is None:
            return 2

    async def run() -> int:
        engine = make_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
            directory = AgentDirectory(engine)
            if args.agent_command == "list":
                for a in await directory.list(active_only=False):
                    print(f"{a.id}\t{a.role}\t{a.team}\tmax {a.max_concurrent}\t{','.join(sorted(a.skills)) or '-'}"
                          f"\t{'active' if a.active else 'inactive'}")
                return 0
            if args.agent_command == "passwd":
                assert password is not None
                await directory.set_password(args.id, password)
                # The stored credential stamp changed, so their open console sessions end at their next request.
                print(f"{args.id} 的密码已设置，其控制台会话已失效 / password set for {args.id}; "
                      "their console sessions have ended")
                return 0
            if args.agent_command == "token":
                token = await directory.rotate_token(args.id)
            else:
                skills = [x for x in (args.skills or "").split(",") if x.strip()]
                _record, token = await directory.create(args.id, args.name or args.id, skills, args.max,
                                                        role=args.role, team=args.team, password=password)
        except (AgentError, LookupError, PasswordError) as exc:
            print(f"错误 / error: {exc}", file=sys.stderr)
            return 2
        finally:
            await engine.dispose()
        print(f"{args.id} 的 API 令牌（只显示一次）/ API token for {args.id} (shown once):\n{token}")
        return 0

    return asyncio.run(run())


def _cmd_sla(args: argparse.Namespace) -> int:
    """One SLA scan against the configured database and Redis (cron, or after a restart by hand).

    Only the database and Redis are opened: no embedding model, no workers, and no embedded Redis --
    a throwaway one would hold no locks or streams the real gateway sees.
    """
    from datetime import datetime

    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade
    from gateway.keys import Keys
    from gateway.models import utcnow
    from gateway.redis_conn import connect
    from ticketing.policy import PolicyStore, TicketingPolicy
    from ticketing.sla import Profile
    from ticketing.sla_scheduler import ScanResult, SlaScheduler

    settings = Settings.from_env()
    redis_url = settings.redis_url
    if not redis_url:
        print("未设置 REDIS_URL：请指向网关使用的 Redis / REDIS_URL is not set: point it at the gateway's Redis",
              file=sys.stderr)
        return 2
    at: datetime | None = None
    if args.at:
        with contextlib.suppress(ValueError):
            at = datetime.fromisoformat(args.at)
        if at is None or at.tzinfo is None:
            print(f"--at 需要带时区的 ISO 8601 时间 / --at needs an ISO 8601 time with a UTC offset: {args.at!r}",
                  file=sys.stderr)
            return 2

    async def run() -> ScanResult:
        engine = make_engine(settings.effective_database_url)
        redis = connect(redis_url)
        try:
            await upgrade(engine)
            policies = PolicyStore(engine, TicketingPolicy.from_settings(
                warn_before_min=settings.sla_warn_before_min, peak_factor=settings.sla_peak_factor,
            ), default_profile=Profile(settings.sla_profile))
            scheduler = SlaScheduler(engine, redis, Keys(settings.key_prefix), utcnow, policies.current_sla)
            return await scheduler.scan_once(at)
        finally:
            await redis.aclose()
            await engine.dispose()

    result = asyncio.run(run())
    if result.skipped:
        print("另一个调度器正在扫描，本次跳过 / another scheduler is scanning right now; skipped")
        return 0
    print(f"SLA 扫描完成：预警 {result.warnings} 条，超时 {result.breaches} 条（{result.tickets} 个工单，"
          f"{result.errors} 个错误） / SLA scan done: {result.warnings} warnings, {result.breaches} breaches "
          f"fired ({result.tickets} tickets, {result.errors} errors)")
    return 0


def _cmd_rasa(_args: argparse.Namespace) -> int:
    from bot.rasa_process import train

    settings = Settings.from_env()
    model = train(settings.rasa_venv, settings.data_dir / "rasa-models")
    print(f"Rasa model: {model}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from gateway.bench import main as bench_main

    return bench_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="huiliu", description="汇流 Huiliu customer-service gateway")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the gateway, bot and delivery workers").set_defaults(func=_cmd_run)
    sub.add_parser("worker", help="bot and delivery workers only (scale out next to `run`)").set_defaults(
        func=_cmd_run)
    chat = sub.add_parser("chat", help="talk to the running bot in the terminal")
    chat.add_argument("--url", default="http://127.0.0.1:8080")
    chat.set_defaults(func=_cmd_chat)
    kb = sub.add_parser("kb", help="knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    imp = kb_sub.add_parser("import", help="load articles from a kb.jsonl file")
    imp.add_argument("file")
    search = kb_sub.add_parser("search", help="show which articles a question hits")
    search.add_argument("text")
    search.add_argument("-k", type=int, default=5)
    kb.set_defaults(func=lambda a: asyncio.run(_kb(a)))
    ev = sub.add_parser("eval", help="evaluate retrieval on ../shared/eval style sets")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    ret = ev_sub.add_parser("retrieval", help="PATH [--json OUT] [--oos PATH] [--model NAME] [--threshold X]",
                            add_help=False)
    ret.add_argument("rest", nargs=argparse.REMAINDER)
    ev_sub.add_parser("nlu", help="[--folds N] [--json OUT] Rasa NLU cross-validation", add_help=False)
    ev_sub.add_parser("sentiment", help="PATH [--json OUT] sentiment/anger AUROC and F1", add_help=False)
    allp = ev_sub.add_parser("all", help="every retrieval set under ROOT, one table")
    allp.add_argument("root", nargs="?", default="../shared/eval")
    ev.set_defaults(func=_cmd_eval)
    rasa = sub.add_parser("rasa", help="the Rasa dialogue engine")
    rasa.add_argument("rasa_command", choices=["train"])
    rasa.set_defaults(func=_cmd_rasa)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("db_command", choices=["upgrade"])
    db.set_defaults(func=_cmd_db)
    agent = sub.add_parser("agent", help="staff accounts: add | token | passwd | list")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    add = agent_sub.add_parser("add", help="create an agent/supervisor/admin and print the API token")
    add.add_argument("id")
    add.add_argument("--name")
    add.add_argument("--skills", help="comma separated, e.g. logistics,returns,vip,lang:en")
    add.add_argument("--max", type=int, default=5, help="max concurrent tickets")
    add.add_argument("--role", choices=["agent", "supervisor", "admin"], default="agent")
    add.add_argument("--team", default="default")
    add.add_argument("--password-stdin", action="store_true",
                     help="also set a console password: read from stdin (typed twice on a terminal)")
    tok = agent_sub.add_parser("token", help="issue a new API token (the old one stops working)")
    tok.add_argument("id")
    pw = agent_sub.add_parser("passwd", help="set a console password (typed twice, or one line on stdin); "
                                             "ends their console sessions")
    pw.add_argument("id")
    agent_sub.add_parser("list", help="all staff accounts")
    agent.set_defaults(func=_cmd_agent)
    sla = sub.add_parser("sla", help="SLA timers")
    sla_sub = sla.add_subparsers(dest="sla_command", required=True)
    scan = sla_sub.add_parser("scan", help="fire the SLA warnings and breaches due now (or --at)")
    scan.add_argument("--at", help="judge at this ISO 8601 instant with offset, e.g. 2024-11-11T12:00:00+08:00")
    scan.set_defaults(func=_cmd_sla)
    bench = sub.add_parser("bench", help="ingest, answer-path and encoder benchmarks", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "faiss.loader", "jieba", "aiogram"):  # start-up chatter, not events
        logging.getLogger(noisy).setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    # These two own their options (argparse's REMAINDER does not pass leading --flags through).
    if argv[:1] == ["bench"]:
        from gateway.bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:2] == ["eval", "sentiment"]:
        from ticketing.sentiment_eval import main as sentiment_main

        return sentiment_main(argv[2:])
    if argv[:2] == ["eval", "nlu"]:
        from bot.nlu_eval import main as nlu_main

        return nlu_main(argv[2:])
    if argv[:2] == ["eval", "retrieval"]:
        from knowledge_index.evaluation import main_retrieval

        return main_retrieval(argv[2:])
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
