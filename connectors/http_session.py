"""The lazily created HTTP client session every outbound connector keeps.

Constructing a connector does no I/O and needs no running loop (the registry builds them at start-up,
and tests build them anywhere), so the ``aiohttp.ClientSession`` is made on first use and recreated if
something closed it.
"""

from __future__ import annotations

import aiohttp


class LazySession:
    """One ``aiohttp.ClientSession`` per connector, created on first use and closed by ``aclose``."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["LazySession"]
