"""Settings, read once from the environment and passed in everywhere (nothing reads os.environ later).

Every variable is listed in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _choice(env: Mapping[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return value


def _persistent_secret(data_dir: Path, name: str) -> str:
    """A secret generated on first start and kept in the data dir, so restarts keep sessions valid."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """All runtime configuration. Build with ``Settings.from_env()``; tests use ``replace``."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".huiliu")
    redis_url: str | None = None
    database_url: str | None = None
    key_prefix: str = "huiliu"
    admin_token: str = ""
    webchat_secret: str = ""
    telegram_bot_token: str | None = None
    telegram_mode: str = "off"  # off | polling | webhook
    telegram_webhook_secret: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    embedding_model: str = "use-multilingual"
    decline_threshold: float | None = None  # None: the tuned default of the embedder
    max_body_bytes: int = 1_048_576
    stream_maxlen: int = 1_000_000
    dedupe_ttl_s: int = 7 * 24 * 3600
    max_attempts: int = 5
    claim_idle_ms: int = 30_000
    bot_concurrency: int = 8
    load_demo_kb: bool = True
    rasa_mode: str = "embedded"  # embedded (start Rasa from the Rasa venv) | url | off
    rasa_url: str | None = None
    rasa_venv: Path = Path(".venv-rasa")
    rasa_port: int = 5005
    rasa_actions_port: int = 5055
    rasa_timeout_s: float = 8.0
    fast_path_score: float = 0.9
    # ticketing
    sla_profile: str = "standard"  # standard | peak (an admin can flip it at runtime: PUT /api/sla)
    sla_warn_before_min: int = 30
    sla_peak_factor: float = 2.0
    sla_scan_interval_s: float = 5.0
    reopen_days: int = 7
    claim_cap_per_day: int = 20
    ask_csat: bool = True
    presence_ttl_s: int = 60
    routing_interval_s: float = 2.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'huiliu.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("HUILIU_DATA_DIR") or ".huiliu")
        mode = (env.get("TELEGRAM_MODE") or "").strip().lower()
        token = env.get("TELEGRAM_BOT_TOKEN") or None
        if not mode:
            mode = "polling" if token else "off"
        if mode not in {"off", "polling", "webhook"}:
            raise ConfigError(f"TELEGRAM_MODE must be off, polling or webhook, got {mode!r}")
        if mode != "off" and not token:
            raise ConfigError("TELEGRAM_MODE is set but TELEGRAM_BOT_TOKEN is empty")
        webhook_secret = env.get("TELEGRAM_WEBHOOK_SECRET") or None
        if mode == "webhook" and not webhook_secret:
            raise ConfigError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET (1-256 chars A-Za-z0-9_-)")
        rasa_url = (env.get("RASA_URL") or "").strip()
        rasa_mode = "off" if rasa_url.lower() == "off" else ("url" if rasa_url else "embedded")
        if rasa_mode == "url" and not rasa_url.startswith(("http://", "https://")):
            raise ConfigError(f"RASA_URL must be http(s)://host:port or 'off', got {rasa_url!r}")
        return cls(
            rasa_mode=rasa_mode,
            rasa_url=rasa_url if rasa_mode == "url" else None,
            rasa_venv=Path(env.get("HUILIU_RASA_VENV") or ".venv-rasa"),
            rasa_port=_int(env, "RASA_PORT", 5005, minimum=1),
            rasa_actions_port=_int(env, "RASA_ACTIONS_PORT", 5055, minimum=1),
            rasa_timeout_s=_float(env, "RASA_TIMEOUT_S") or 8.0,
            fast_path_score=_float(env, "BOT_FAST_PATH_SCORE") or 0.9,
            host=env.get("HUILIU_HOST") or "127.0.0.1",
            port=_int(env, "HUILIU_PORT", 8080, minimum=0),
            data_dir=data_dir,
            redis_url=env.get("REDIS_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            key_prefix=env.get("HUILIU_KEY_PREFIX") or "huiliu",
            admin_token=env.get("HUILIU_ADMIN_TOKEN") or _persistent_secret(data_dir, "admin_token"),
            webchat_secret=env.get("WEBCHAT_SECRET") or _persistent_secret(data_dir, "webchat_secret"),
            telegram_bot_token=token,
            telegram_mode=mode,
            telegram_webhook_secret=webhook_secret,
            telegram_api_base=env.get("TELEGRAM_API_BASE") or "https://api.telegram.org",
            embedding_model=env.get("EMBEDDING_MODEL") or "use-multilingual",
            decline_threshold=_float(env, "KB_DECLINE_THRESHOLD"),
            max_body_bytes=_int(env, "HUILIU_MAX_BODY_BYTES", 1_048_576, minimum=1024),
            stream_maxlen=_int(env, "HUILIU_STREAM_MAXLEN", 1_000_000, minimum=1000),
            dedupe_ttl_s=_int(env, "HUILIU_DEDUPE_TTL_S", 7 * 24 * 3600, minimum=60),
            max_attempts=_int(env, "HUILIU_MAX_ATTEMPTS", 5, minimum=1),
            claim_idle_ms=_int(env, "HUILIU_CLAIM_IDLE_MS", 30_000, minimum=100),
            bot_concurrency=_int(env, "HUILIU_BOT_CONCURRENCY", 8, minimum=1),
            load_demo_kb=(env.get("HUILIU_DEMO_KB") or "1") not in {"0", "false", "no"},
            sla_profile=_choice(env, "SLA_PROFILE", "standard", {"standard", "peak"}),
            sla_warn_before_min=_int(env, "SLA_WARN_BEFORE_MIN", 30),
            sla_peak_factor=_float(env, "SLA_PEAK_FACTOR") or 2.0,
            sla_scan_interval_s=_float(env, "SLA_SCAN_INTERVAL_S") or 5.0,
            reopen_days=_int(env, "TICKET_REOPEN_DAYS", 7),
            claim_cap_per_day=_int(env, "TICKET_CLAIM_CAP", 20),
            ask_csat=(env.get("CSAT_ENABLED") or "1") not in {"0", "false", "no"},
            presence_ttl_s=_int(env, "AGENT_PRESENCE_TTL_S", 60, minimum=5),
            routing_interval_s=_float(env, "ROUTING_INTERVAL_S") or 2.0,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
