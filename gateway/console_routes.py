"""The staff web console: one HTML shell and its ES modules, served with a strict security policy.

The console is plain ES modules with no build step (see the README for why). It talks to the same
JSON API as any other client, authenticated by the session cookie (gateway.session_routes), so the
pages hold no data of their own and every customer string reaches the DOM as a text node.

The Content-Security-Policy is the second line of defence: no inline script, no eval, no third-party
origin. Even if a customer string were ever inserted as markup, the browser would not run it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

CONSOLE_DIR = Path(__file__).parent / "console"

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def setup_console(app: web.Application) -> None:
    """``/console`` (the shell; the client routes by URL hash) and ``/console/static/...``."""

    async def shell(_request: web.Request) -> web.StreamResponse:
        # no-store: the shell names module versions; a stale cached copy would mix old and new code.
        return web.FileResponse(CONSOLE_DIR / "index.html",
                                headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    async def redirect(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console/")

    async def asset(request: web.Request) -> web.StreamResponse:
        # Resolve inside CONSOLE_DIR only: "../" in the path must never reach other files.
        rel = request.match_info["path"]
        path = (CONSOLE_DIR / rel).resolve()
        if CONSOLE_DIR.resolve() not in path.parents or not path.is_file() or path.suffix not in _TYPES:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**SECURITY_HEADERS, "Content-Type": _TYPES[path.suffix],
                                               "Cache-Control": "no-cache"})

    app.router.add_get("/console", redirect)
    app.router.add_get("/console/", shell)
    app.router.add_get("/console/static/{path:.+}", asset)


_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
