"""HTTP client of a Rasa server's REST channel (Rasa runs in its own venv and process)."""

from __future__ import annotations

from typing import Any

import aiohttp


class RasaUnavailable(Exception):
    """Rasa did not answer in time, refused the connection, or answered with an error."""


class RasaClient:
    def __init__(self, url: str, *, timeout_s: float = 8.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # A Rasa replica set behind one URL: keep connections, but not too many per process.
            self._http = aiohttp.ClientSession(timeout=self.timeout,
                                               connector=aiohttp.TCPConnector(limit=64))
        return self._http

    async def message(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """POST one message to ``/webhooks/rest/webhook``; Rasa's replies in order."""
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            async with self._session().post(f"{self.url}/webhooks/rest/webhook", json=body) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}: {(await resp.text())[:200]}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(data, list):
            raise RasaUnavailable("Rasa answered something other than a list of messages")
        return [m for m in data if isinstance(m, dict)]

    async def ready(self) -> bool:
        """True once the server answers ``/status`` with a loaded model."""
        try:
            async with self._session().get(f"{self.url}/status") as resp:
                if resp.status != 200:
                    return False
                data = await resp.json(content_type=None)
                return bool(isinstance(data, dict) and data.get("model_file"))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
