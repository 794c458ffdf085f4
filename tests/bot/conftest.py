"""A real Rasa server + action server for the whole test session (model trained once, cached by hash)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import rasa_process
from gateway.redis_conn import connect, free_port

ROOT = Path(__file__).resolve().parents[2]
RASA_VENV = ROOT / ".venv-rasa"
MODELS = ROOT / ".huiliu" / "rasa-models"  # outside the test tmp dirs: reused across runs


@pytest.fixture(scope="session")
async def rasa(redis_url: str) -> AsyncIterator[rasa_process.RasaServers]:
    try:
        model = await asyncio.to_thread(rasa_process.train, RASA_VENV, MODELS)
    except rasa_process.RasaSetupError as exc:
        pytest.skip(f"Rasa not available ({str(exc).splitlines()[0]}); `make test` installs it")
    with tempfile.TemporaryDirectory(prefix="huiliu-rasa-") as tmp:
        servers = rasa_process.RasaServers(
            RASA_VENV, model, Path(tmp), redis_url, f"trasa{uuid.uuid4().hex[:8]}",
            port=free_port(), actions_port=free_port())
        await servers.start()
        yield servers
        servers.stop()
    client = connect(redis_url)  # the session's trackers and locks
    async for key in client.scan_iter(match=f"{rasa_process.rasa_key_prefix(servers.key_prefix)}*"):
        await client.delete(key)
    await client.aclose()
