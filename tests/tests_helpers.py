"""Small helpers shared by tests (importable because `tests/` is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.runtime import Runtime
    from knowledge_index.embedder import Embedder


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, or fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class WebChatCustomer:
    """A customer on the web chat over real HTTP: opens a session, listens on SSE, says things."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session: dict[str, str] = {}
        self.seen: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, name: str | None = None) -> None:
        body = {"name": name} if name else {}
        self.session = await (await self.client.post("/api/webchat/session", json=body)).json()
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        import json

        resp = await self.client.get("/api/webchat/events", params={
            "visitor_id": self.session["visitor_id"], "token": self.session["token"]})
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                self.seen.append(json.loads(line[6:]))

    async def say(self, text: str) -> None:
        import uuid

        resp = await self.client.post("/api/webchat/messages", json={
            **{k: self.session[k] for k in ("visitor_id", "token")},
            "client_message_id": uuid.uuid4().hex, "text": text})
        assert resp.status == 202

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    @property
    def conversation_id(self) -> str:
        return f"webchat:{self.session['visitor_id']}"

    def by(self, author: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["author"] == author]


@asynccontextmanager
async def serve_live(settings: Settings, embedder: Embedder) -> AsyncIterator[tuple[Runtime, Any]]:
    """The whole product over real HTTP: services, bot/delivery/router/SLA workers and the aiohttp app."""
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import build_app
    from gateway.runtime import open_services, start_workers

    async with open_services(settings, embedder=embedder) as rt:
        start_workers(rt)
        client = TestClient(TestServer(build_app(rt.services)))
        await client.start_server()
        try:
            yield rt, client
        finally:
            await client.close()
