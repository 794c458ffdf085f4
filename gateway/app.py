"""The aiohttp application: routes only; every piece of work is in a service or a stream consumer."""

from __future__ import annotations

from aiohttp import web

from gateway.admin_api import setup_admin_api
from gateway.agent_api import setup_agent_api
from gateway.auth import Principal, Role, auth_middleware
from gateway.channel_status import setup_channel_status
from gateway.channels import setup_channel_routes
from gateway.console_routes import setup_console
from gateway.customer_api import setup_customer_api
from gateway.http_errors import errors_middleware
from gateway.services import Services
from gateway.session_routes import setup_console_sessions
from gateway.staff_api import setup_staff_api
from gateway.webchat_routes import setup_webchat

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)


def build_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=services.settings.max_body_bytes, middlewares=[errors_middleware])
    app[SERVICES] = services

    async def healthz(_request: web.Request) -> web.Response:
        redis_ok = bool(await services.redis.ping())
        backlog = await services.redis.xlen(services.keys.inbound)
        bot = services.bot
        engine = "rasa" if hasattr(bot, "rasa") else "retrieval"
        return web.json_response({"ok": redis_ok, "inbound_backlog": backlog, "bot": {
            "engine": engine, "degraded": bool(getattr(bot, "degraded", False))}})

    app.router.add_get("/healthz", healthz)
    setup_webchat(app, services)
    # --- web console (static shell; its data comes from the staff API below) ---
    setup_console(app)
    setup_channel_routes(app, services)

    async def authenticate(token: str) -> Principal | None:
        agent = await services.agents.authenticate(token)
        if agent is None:
            return None
        return Principal(agent.id, Role(agent.role), name=agent.name, skills=agent.skills,
                         max_concurrent=agent.max_concurrent)

    app.middlewares.append(auth_middleware(services.settings.admin_token, authenticate, exempt=("/api/webchat/",)))
    # --- console sessions --- login/logout and the session cookie the auth middleware accepts
    setup_console_sessions(app, services)
    # --- end console sessions ---
    setup_admin_api(app, services)
    setup_agent_api(app, services)
    setup_staff_api(app, services)
    setup_customer_api(app, services)
    setup_channel_status(app, services)  # GET /api/channels: the admin's 渠道状态 page
    return app
