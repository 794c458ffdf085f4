"""Every staff endpoint × every role: who gets in, who is refused (401/403/404), nothing else leaks.

"Allowed" means the request passed authorization: any status except 401/403/404 (a 409 from acting on
a ticket an earlier row already resolved still proves the caller was let in). The last test checks
that every /api route the app serves appears in the table, so a new endpoint cannot ship untested.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from gateway.db.conversations import insert_inbound
from gateway.db.schema import tickets
from gateway.models import Channel, CustomerRef, InboundMessage, utcnow
from gateway.runtime import Runtime
from ticketing.customers import Identity
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.priority import Tier
from ticketing.routing import Presence
from ticketing.service import assign_in

ROLES = ("anon", "other", "owner", "sup", "admin")
DENIED = {401, 403, 404}
Y, N = True, False


async def _ticket(rt: Runtime, visitor: str, skills: list[str], assignee: str | None) -> tuple[int, str]:
    now = utcnow()
    msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"m-{visitor}", conversation_key=visitor,
                               customer=CustomerRef(channel=Channel.WEBCHAT, external_id=visitor), text="转人工",
                               sent_at=now)
    async with rt.services.engine.begin() as conn:
        await insert_inbound(conn, msg)
        esc = await escalate_in(conn, msg.conversation_id, EscalationReason.ASKED_FOR_HUMAN, summary="转人工", now=now)
        await conn.execute(update(tickets).where(tickets.c.id == esc.ticket.id)
                           .values(skills=skills, channel="webchat"))
        if assignee:
            await assign_in(conn, esc.ticket.id, assignee, actor="test", now=now)
    return esc.ticket.id, msg.conversation_id


# (method, path, body, allowed for anon/other agent/owner agent/supervisor/admin)
def table(t: int, q: int, conv: str, canned: int, cust: int = 4) -> list[tuple[str, str, Any, tuple[bool, ...]]]:
    return [
        ("GET", "/api/me", None, (N, Y, Y, Y, Y)),
        # console login is open to anyone with credentials (a bearer token neither helps nor hurts)
        ("POST", "/api/session", {"username": "admin", "password": "test-admin-token"}, (Y, Y, Y, Y, Y)),
        ("GET", "/api/session", None, (N, Y, Y, Y, Y)),
        ("DELETE", "/api/session", None, (N, Y, Y, Y, Y)),
        # own password: token callers without one may set it; the bootstrap admin gets a 400 (it has none)
        ("POST", "/api/me/password", {"new": "password-of-{role}"}, (N, Y, Y, Y, Y)),
        ("POST", "/api/agents/other/password", {"password": "set-by-{role}"}, (N, N, N, N, Y)),
        ("POST", "/api/me/presence", {"status": "online"}, (N, Y, Y, Y, Y)),
        ("GET", "/api/tickets", None, (N, Y, Y, Y, Y)),
        ("GET", "/api/tickets?view=queue", None, (N, Y, Y, Y, Y)),
        ("GET", f"/api/tickets/{t}", None, (N, N, Y, Y, Y)),
        ("GET", f"/api/tickets/{t}/suggestions", None, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/reply-preview", {"canned_id": canned}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/note", {"text": "客户很着急"}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/reply", {"text": "您好"}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/assign", {"agent_id": "owner"}, (N, N, N, Y, Y)),
        ("POST", f"/api/tickets/{t}/transfer", {"agent_id": "owner"}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/resolve", {}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/reopen", {}, (N, N, Y, Y, Y)),
        ("POST", f"/api/tickets/{t}/hand-back", {}, (N, N, Y, Y, Y)),
        # the queued ticket needs "returns": only "other" holds it
        ("GET", f"/api/tickets/{q}", None, (N, Y, N, Y, Y)),
        # claiming is an agent's own act (supervisors assign): refused without the skill or an agent record
        ("POST", f"/api/tickets/{q}/claim", {}, (N, Y, N, N, N)),
        ("GET", "/api/agent/events?probe=1", None, (N, Y, Y, Y, Y)),
        ("GET", "/api/colleagues", None, (N, Y, Y, Y, Y)),
        ("GET", "/api/agents", None, (N, N, N, Y, Y)),
        ("POST", "/api/agents", {"id": "new-{role}", "skills": ["returns"]}, (N, N, N, Y, Y)),
        ("PATCH", "/api/agents/other", {"max_concurrent": 4}, (N, N, N, Y, Y)),
        ("PATCH", "/api/agents/other", {"role": "agent"}, (N, N, N, N, Y)),
        ("POST", "/api/agents/new-admin/token", {}, (N, N, N, N, Y)),
        ("GET", "/api/customers/webchat/v-owner", None, (N, N, N, Y, Y)),
        ("PUT", "/api/customers/webchat/v-owner", {"tier": "vip"}, (N, N, N, Y, Y)),
        # one customer across channels: agents act on profiles with a ticket they may see (owner: v-owner's)
        ("GET", f"/api/customers/{cust}", None, (N, N, Y, Y, Y)),
        ("GET", f"/api/conversations/{conv}/customer", None, (N, N, Y, Y, Y)),
        ("POST", f"/api/conversations/{conv}/customer/identities", {"channel": "telegram", "external_id": "tg-{role}"},
         (N, N, Y, Y, Y)),
        ("POST", f"/api/customers/{cust}/identities", {"channel": "email", "external_id": "{role}@example.com"},
         (N, N, Y, Y, Y)),
        ("DELETE", f"/api/customers/{cust}/identities/email/{{role}}@example.com", None, (N, N, Y, Y, Y)),
        # "{merge}": a fresh profile per role on a ticket assigned to owner (agents merge what they see)
        ("POST", f"/api/customers/{cust}/merge", {"other_id": "{merge}", "reason": "同一人"}, (N, N, Y, Y, Y)),
        ("GET", "/api/canned", None, (N, Y, Y, Y, Y)),
        ("POST", "/api/canned", {"title": "t", "text": "您好 {customer_name}"}, (N, N, N, Y, Y)),
        ("PUT", f"/api/canned/{canned}", {"title": "问候"}, (N, N, N, Y, Y)),
        ("DELETE", "/api/canned/{created}", None, (N, N, N, Y, Y)),
        ("GET", "/api/sla", None, (N, N, N, Y, Y)),
        ("PUT", "/api/sla", {"profile": "standard"}, (N, N, N, N, Y)),
        ("PUT", "/api/sla", {"targets": {"P3": {"resolution_s": 259200}}, "warn_before_s": 1800}, (N, N, N, N, Y)),
        ("DELETE", "/api/sla/policy", None, (N, N, N, N, Y)),
        ("GET", "/api/supervisor/alerts", None, (N, N, N, Y, Y)),
        ("GET", "/api/metrics", None, (N, N, N, Y, Y)),
        ("GET", f"/api/conversations/{conv}", None, (N, N, N, Y, Y)),
        ("POST", "/api/kb/search", {"text": "怎么退货"}, (N, Y, Y, Y, Y)),
        ("GET", "/api/kb/articles", None, (N, N, N, N, Y)),
        ("GET", "/api/kb/articles/return-how", None, (N, N, N, N, Y)),
        ("POST", "/api/kb/articles", {"id": "t-{role}", "title": "t", "questions": ["q"], "answer": "a"},
         (N, N, N, N, Y)),
        ("PUT", "/api/kb/articles/t-{role}", {"title": "t", "questions": ["q"], "answer": "a"}, (N, N, N, N, Y)),
        ("POST", "/api/kb/articles/t-{role}/publish", {}, (N, N, N, N, Y)),
        ("POST", "/api/kb/articles/t-{role}/unpublish", {}, (N, N, N, N, Y)),
        ("DELETE", "/api/kb/articles/t-{role}", None, (N, N, N, N, Y)),
        # channel status page: configuration and intake health (admin only)
        ("GET", "/api/channels", None, (N, N, N, N, Y)),
        # one JSON object is a one-line kb JSONL file (the import reads the raw body)
        ("GET", "/api/kb/export", None, (N, N, N, N, Y)),
        ("POST", "/api/kb/import", {"id": "io-{role}", "title": "t", "questions": ["q"], "answer": "a"},
         (N, N, N, N, Y)),
    ]


async def test_every_endpoint_for_every_role(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    s = rt.services
    for task in rt.tasks:  # no automatic routing here: the queued tickets must wait to be claimed
        if task.get_name() == "router":
            task.cancel()
    _, other_token = await s.agents.create("other", "Other", ["returns"], 5)
    _, owner_token = await s.agents.create("owner", "Owner", ["logistics"], 5)
    _, sup_token = await s.agents.create("sup", "Sup", [], 5, role="supervisor")
    await s.presence.heartbeat("other", Presence.ONLINE)
    tokens = {"anon": None, "other": other_token, "owner": owner_token, "sup": sup_token,
              "admin": "test-admin-token"}
    t, conv = await _ticket(rt, "v-owner", ["logistics"], "owner")
    canned = (await s.canned.create("问候", "您好 {customer_name}", "zh", "test")).id
    cust = (await s.profiles.set_tier(Identity("webchat", "v-owner"), Tier.NORMAL, now=utcnow()))["id"]
    failures = []
    for role_index, role in enumerate(ROLES):
        q, _ = await _ticket(rt, f"v-queue-{role}", ["returns"], None)  # a fresh queued ticket per role
        created = (await s.canned.create("tmp", "x", "zh", "test")).id
        await _ticket(rt, f"v-merge-{role}", ["logistics"], "owner")
        merge = (await s.profiles.set_tier(Identity("webchat", f"v-merge-{role}"), Tier.NORMAL, now=utcnow()))["id"]
        for method, path, body, allowed in table(t, q, conv, canned, cust):
            path = path.replace("{role}", role).replace("{created}", str(created))
            if isinstance(body, dict):
                body = {k: v.replace("{role}", role).replace("{merge}", str(merge)) if isinstance(v, str) else v
                        for k, v in body.items()}
            headers = {"Authorization": f"Bearer {tokens[role]}"} if tokens[role] else {}
            client.session.cookie_jar.clear()  # bearer callers only: the login row must not log "anon" in
            resp = await client.request(method, path, json=body, headers=headers)
            if path.startswith("/api/agent/events"):
                status = resp.status
                resp.close()
            else:
                status = resp.status
                await resp.read()
            ok = status not in DENIED
            if ok != allowed[role_index]:
                failures.append(f"{role}: {method} {path} -> {status}")
            if path == f"/api/tickets/{t}/hand-back" and ok:
                async with s.engine.begin() as conn:  # give the owner the ticket back for the next role
                    await conn.execute(update(tickets).where(tickets.c.id == t).values(
                        status="assigned", assignee_id="owner", open_key=conv, details={}))
    assert not failures, "\n".join(failures)


async def test_every_api_route_is_in_the_table(live: tuple[Runtime, Any]) -> None:
    _rt, client = live
    covered = {(m, p.split("?")[0]) for m, p, _b, _a in table(1, 2, "c", 3)}
    normalized = {(m, _pattern(p)) for m, p in covered}
    missing = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/api/") or path.startswith("/api/webchat/") or route.method == "HEAD":
            continue
        if (route.method, _pattern(path)) not in normalized:
            missing.append(f"{route.method} {path}")
    assert not missing, f"endpoints without an authorization row: {missing}"


def _pattern(path: str) -> str:
    """Concrete or templated path -> a shape where every variable segment is '*'."""
    known = {"api", "me", "presence", "tickets", "suggestions", "reply-preview", "note", "reply", "assign", "transfer",
             "resolve", "reopen", "hand-back", "claim", "agent", "events", "agents", "token", "customers",
             "canned", "sla", "supervisor", "alerts", "metrics", "conversations", "kb", "search", "articles",
             "publish", "unpublish", "customer", "identities", "merge", "export", "import",
             "session", "password", "policy"}
    return "/".join(seg if seg in known or seg == "" else "*" for seg in path.split("/"))
