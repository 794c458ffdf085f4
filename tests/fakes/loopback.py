"""Serve an aiohttp app on a free loopback port — how every fake cloud and callback receiver listens."""

from __future__ import annotations

from aiohttp import web


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1, port chosen by the kernel; returns the runner (``cleanup()`` stops
    it) and the base URL ``http://127.0.0.1:<port>``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
