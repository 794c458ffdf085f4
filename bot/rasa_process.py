"""Train and run Rasa next to the gateway: its own Python 3.10 venv, its own processes.

Rasa pins aiogram 2, pydantic 1 and an old aiohttp, so it is never imported here: we call its CLI.
A model is trained only when the project's content (config, domain, data) changed — the model file
is named after that content hash. Rasa keeps trackers and locks in our Redis (RedisTrackerStore +
RedisLockStore), so several Rasa replicas can serve one gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import aiohttp

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).parent / "rasa"
_HASHED = ("config.yml", "domain.yml", "data")


class RasaSetupError(RuntimeError):
    """The Rasa venv is missing or training/starting failed; the message says how to fix it."""


def project_hash(project: Path = PROJECT_DIR) -> str:
    """Content hash of everything that changes the trained model (not the actions: they are code)."""
    digest = hashlib.sha256()
    for name in _HASHED:
        path = project / name
        files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(project)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def rasa_bin(venv: Path) -> Path:
    exe = venv.resolve() / "bin" / "rasa"
    if not exe.exists():
        raise RasaSetupError(f"no Rasa in {venv}: run `make rasa-venv` (Python 3.10 venv with rasa==3.6.21)")
    return exe


def train(venv: Path, models_dir: Path, project: Path = PROJECT_DIR) -> Path:
    """Return the model for the current project content, training it first if it does not exist."""
    name = f"huiliu-{project_hash(project)}"
    model = models_dir / f"{name}.tar.gz"
    if model.exists():
        return model
    models_dir.mkdir(parents=True, exist_ok=True)
    log.info("training the Rasa model %s (project changed); takes about a minute", name)
    result = subprocess.run(
        [str(rasa_bin(venv)), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
         "--out", str(models_dir.resolve()), "--fixed-model-name", name],
        cwd=project, capture_output=True, text=True,
        # Rasa's training cache goes next to the models, never into the source tree.
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
             "RASA_CACHE_DIRECTORY": str((models_dir / "cache").resolve())},
    )
    if result.returncode != 0 or not model.exists():
        raise RasaSetupError(
            f"rasa train failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return model


def rasa_key_prefix(key_prefix: str) -> str:
    """Rasa's Redis stores accept only alphanumeric prefixes and silently fall back to a shared
    default otherwise (then deployments and test runs would read each other's trackers)."""
    return "".join(ch for ch in key_prefix if ch.isalnum()) + "rasa"


def endpoints_yaml(redis_url: str, key_prefix: str, action_url: str) -> str:
    """Rasa's endpoints.yml: trackers and locks in our Redis, actions on the action server."""
    prefix = rasa_key_prefix(key_prefix)
    u = urlparse(redis_url)
    db = (u.path or "/0").lstrip("/") or "0"
    password = f"\n  password: {u.password}" if u.password else ""
    common = f"url: {u.hostname or '127.0.0.1'}\n  port: {u.port or 6379}\n  db: {db}{password}"
    return (
        f"action_endpoint:\n  url: {action_url}\n"
        f"tracker_store:\n  type: redis\n  {common}\n  key_prefix: {prefix}\n  record_exp: 604800\n"
        f"lock_store:\n  type: redis\n  {common}\n  key_prefix: {prefix}lock\n"
    )


@dataclass
class RasaServers:
    """A Rasa server and its action server, started as child processes."""

    venv: Path
    model: Path
    run_dir: Path
    redis_url: str
    key_prefix: str
    port: int = 5005
    actions_port: int = 5055
    project: Path = PROJECT_DIR
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.run_dir / f"{name}.log").open("ab")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self._procs[name] = subprocess.Popen(
            [str(rasa_bin(self.venv)), *args], cwd=self.project, stdin=subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )

    def start_actions(self) -> None:
        self._spawn("actions", ["run", "actions", "--actions", "actions", "-p", str(self.actions_port)])

    def rasa_args(self) -> list[str]:
        """``rasa run`` arguments. Paths are absolute: Rasa runs in the project dir, and a relative
        ``--endpoints`` that does not resolve there is silently ignored (no actions, no Redis stores)."""
        run_dir = self.run_dir.resolve()
        return ["run", "--enable-api", "-i", "127.0.0.1", "-p", str(self.port), "-m", str(self.model.resolve()),
                "--endpoints", str(run_dir / "endpoints.yml"), "--credentials", str(run_dir / "credentials.yml")]

    def start_rasa(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "endpoints.yml").write_text(endpoints_yaml(
            self.redis_url, self.key_prefix, f"http://127.0.0.1:{self.actions_port}/webhook"))
        (self.run_dir / "credentials.yml").write_text("rest:\n")
        self._spawn("rasa", self.rasa_args())

    async def start(self, timeout: float = 180.0) -> None:
        self.start_actions()
        self.start_rasa()
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until the model is loaded and the action server answers; fail with the logs' tail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while loop.time() < deadline:
                for name, proc in self._procs.items():
                    if proc.poll() is not None:
                        raise RasaSetupError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
                if await _ok(http, f"{self.url}/status", "model_file") and await _ok(
                    http, f"http://127.0.0.1:{self.actions_port}/health", "status"
                ):
                    return
                await asyncio.sleep(0.5)
        raise RasaSetupError(f"Rasa not ready after {timeout}s:\n{self.log_tail('rasa')}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.run_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def kill(self, name: str = "rasa") -> None:
        """Stop one process at once (SIGKILL): what a crash looks like to the gateway."""
        proc = self._procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        for name in list(self._procs):
            proc = self._procs.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def _ok(http: aiohttp.ClientSession, url: str, key: str) -> bool:
    try:
        async with http.get(url) as resp:
            if resp.status != 200:
                return False
            data = await resp.json(content_type=None)
            return isinstance(data, dict) and bool(data.get(key))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
