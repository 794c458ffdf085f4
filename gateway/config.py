"""Settings, read once from the environment and passed in everywhere (nothing reads os.environ later).

Every variable is listed in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


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
    # --- routing mode --- auto: the router assigns; claim (抢单): agents take tickets from the queue
    routing_mode: str = "auto"
    # --- wechat (Official Account) ---
    # The channel is on when app id, app secret and token are set; safe mode when the AES key is set too.
    wechat_app_id: str | None = None  # AppID (also the receive id inside safe-mode ciphertexts)
    wechat_app_secret: str | None = None  # AppSecret, for /cgi-bin/token
    wechat_token: str | None = None  # the server-config Token (3-32 letters/digits) signing callbacks
    wechat_encoding_aes_key: str | None = None  # EncodingAESKey (43 chars): safe mode; None: plaintext mode
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_subscribe_text: str | None = "你好"  # what a follow says to the bot (its greeting); None: ignore

    @staticmethod
    def _wechat_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        """The WECHAT_* variables: app id, secret and token together, or none (channel off)."""
        names = ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN")
        values = {n: (env.get(n) or "").strip() for n in names}
        aes_key = (env.get("WECHAT_ENCODING_AES_KEY") or "").strip()
        if not any(values.values()) and not aes_key:
            return {}
        missing = [n for n, v in values.items() if not v]
        if missing:
            raise ConfigError(f"the WeChat channel needs {', '.join(missing)} as well (set all three, or none)")
        token = values["WECHAT_TOKEN"]
        if not (3 <= len(token) <= 32 and token.isascii() and token.isalnum()):
            raise ConfigError("WECHAT_TOKEN must be the 3-32 letters/digits Token of the MP server config")
        if aes_key and (len(aes_key) != 43 or not (aes_key.isascii() and aes_key.isalnum())):
            raise ConfigError("WECHAT_ENCODING_AES_KEY must be the 43-character EncodingAESKey (letters/digits) "
                              "from the MP console, or empty for plaintext mode")
        api_base = (env.get("WECHAT_API_BASE") or "https://api.weixin.qq.com").strip().rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError(f"WECHAT_API_BASE must be an http(s) URL, got {api_base!r}")
        greeting = env.get("WECHAT_SUBSCRIBE_TEXT")
        return {
            "wechat_app_id": values["WECHAT_APP_ID"], "wechat_app_secret": values["WECHAT_APP_SECRET"],
            "wechat_token": token, "wechat_encoding_aes_key": aes_key or None, "wechat_api_base": api_base,
            "wechat_subscribe_text": "你好" if greeting is None else (greeting.strip()[:500] or None),
        }

    # --- wecom kf ---
    # The channel is on when corp id, kf secret, callback token and EncodingAESKey are all set.
    wecom_corp_id: str | None = None  # CorpID: the receive id of callbacks and the gettoken corpid
    wecom_kf_secret: str | None = None  # the 微信客服 secret (kf APIs need its own access token)
    wecom_token: str | None = None  # callback Token set in the WeCom admin console
    wecom_encoding_aes_key: str | None = None  # callback EncodingAESKey (43 characters)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_poll_interval_s: float = 300.0  # catch-up pull without a callback token (rate-limited by WeCom)

    @staticmethod
    def _wecom_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        """The WECOM_* variables: the four credentials together, or none (channel off)."""
        names = ("WECOM_CORP_ID", "WECOM_KF_SECRET", "WECOM_TOKEN", "WECOM_ENCODING_AES_KEY")
        values = {n: (env.get(n) or "").strip() for n in names}
        if not any(values.values()):
            return {}
        missing = [n for n, v in values.items() if not v]
        if missing:
            raise ConfigError(f"the WeCom kf channel needs {', '.join(missing)} as well (set all four, or none)")
        aes_key = values["WECOM_ENCODING_AES_KEY"]
        if len(aes_key) != 43 or not all(c.isascii() and (c.isalnum() or c in "+/") for c in aes_key):
            raise ConfigError("WECOM_ENCODING_AES_KEY must be the 43-character EncodingAESKey from the WeCom console")
        api_base = (env.get("WECOM_API_BASE") or "https://qyapi.weixin.qq.com").strip().rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError(f"WECOM_API_BASE must be an http(s) URL, got {api_base!r}")
        interval = _float(env, "WECOM_POLL_INTERVAL_S")
        if interval is not None and interval < 1:
            raise ConfigError(f"WECOM_POLL_INTERVAL_S must be >= 1, got {interval}")
        return {
            "wecom_corp_id": values["WECOM_CORP_ID"], "wecom_kf_secret": values["WECOM_KF_SECRET"],
            "wecom_token": values["WECOM_TOKEN"], "wecom_encoding_aes_key": aes_key,
            "wecom_api_base": api_base, "wecom_poll_interval_s": interval or 300.0,
        }

    # --- email ---
    # The channel is on when email_address, email_imap_host and email_smtp_host are all set.
    email_address: str | None = None  # the shop's address: From of replies, base of reply+<token>@
    email_imap_host: str | None = None
    email_imap_port: int = 993
    email_imap_user: str | None = None  # None: the address
    email_imap_password: str | None = None
    email_imap_ssl: bool = True
    email_imap_folder: str = "INBOX"
    email_smtp_host: str | None = None
    email_smtp_port: int = 587
    email_smtp_user: str | None = None  # None: no SMTP AUTH
    email_smtp_password: str | None = None
    email_smtp_tls: str = "starttls"  # starttls | tls | none
    email_poll_interval_s: float = 60.0
    email_token_secret: str = ""  # HMAC key of conversation tokens; "" falls back to webchat_secret

    @staticmethod
    def _email_from_env(env: Mapping[str, str], data_dir: Path) -> dict[str, Any]:
        """The EMAIL_* variables: all of EMAIL_ADDRESS, EMAIL_IMAP_HOST, EMAIL_SMTP_HOST, or none."""
        required = {n: (env.get(n) or "").strip() for n in ("EMAIL_ADDRESS", "EMAIL_IMAP_HOST", "EMAIL_SMTP_HOST")}
        if not any(required.values()):
            return {}
        missing = [n for n, v in required.items() if not v]
        if missing:
            raise ConfigError(f"the email channel needs {', '.join(missing)} as well (set all three, or none)")
        address = required["EMAIL_ADDRESS"].lower()
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or any(c.isspace() or c in "<>,;" for c in address):
            raise ConfigError(f"EMAIL_ADDRESS must be a plain address like service@shop.example, got {address!r}")
        raw_ssl = (env.get("EMAIL_IMAP_SSL") or "").strip().lower()
        if raw_ssl not in {"", "1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise ConfigError(f"EMAIL_IMAP_SSL must be on or off, got {raw_ssl!r}")
        imap_ssl = raw_ssl in {"1", "true", "yes", "on"} or (not raw_ssl and env.get("EMAIL_IMAP_PORT") != "143")
        user = env.get("EMAIL_IMAP_USER") or address
        password = env.get("EMAIL_IMAP_PASSWORD") or ""
        if not password:
            raise ConfigError("EMAIL_IMAP_PASSWORD is empty (the IMAP login needs it)")
        tls = _choice(env, "EMAIL_SMTP_TLS", "tls" if env.get("EMAIL_SMTP_PORT") == "465" else "starttls",
                      {"starttls", "tls", "none"})
        ports = {"EMAIL_IMAP_PORT": _int(env, "EMAIL_IMAP_PORT", 993 if imap_ssl else 143, minimum=1),
                 "EMAIL_SMTP_PORT": _int(env, "EMAIL_SMTP_PORT", {"tls": 465, "starttls": 587, "none": 25}[tls],
                                         minimum=1)}
        for name, port in ports.items():
            if port > 65535:
                raise ConfigError(f"{name} must be a TCP port (1-65535), got {port}")
        # SMTP logs in like IMAP unless told otherwise; EMAIL_SMTP_USER=- sends without AUTH (a local relay).
        smtp_user = env.get("EMAIL_SMTP_USER") or user
        interval = _float(env, "EMAIL_POLL_INTERVAL_S")
        if interval is not None and interval <= 0:
            raise ConfigError(f"EMAIL_POLL_INTERVAL_S must be > 0, got {interval}")
        return {
            "email_address": address, "email_imap_host": required["EMAIL_IMAP_HOST"],
            "email_imap_port": ports["EMAIL_IMAP_PORT"], "email_imap_user": user, "email_imap_password": password,
            "email_imap_ssl": imap_ssl, "email_imap_folder": env.get("EMAIL_IMAP_FOLDER") or "INBOX",
            "email_smtp_host": required["EMAIL_SMTP_HOST"], "email_smtp_port": ports["EMAIL_SMTP_PORT"],
            "email_smtp_user": None if smtp_user == "-" else smtp_user,
            "email_smtp_password": None if smtp_user == "-" else (env.get("EMAIL_SMTP_PASSWORD") or password),
            "email_smtp_tls": tls, "email_poll_interval_s": interval or 60.0,
            "email_token_secret": env.get("EMAIL_TOKEN_SECRET") or _persistent_secret(data_dir, "email_token_secret"),
        }

    # --- marketplaces and signed webhook ---
    # A marketplace is on when its three credentials are set (see _marketplaces_from_env).
    taobao_app_key: str | None = None
    taobao_app_secret: str | None = None
    taobao_session: str | None = None  # the seller's authorisation (sessionKey)
    taobao_api_base: str = "https://gw.api.taobao.com/router/rest"
    taobao_sign_method: str = "md5"  # md5 | hmac | hmac-sha256
    taobao_tmc_group: str | None = None  # None: the app's default TMC group
    taobao_chat_topics: tuple[str, ...] = ()  # TMC topics of 旺旺聊天消息服务 (not public: from the console)
    taobao_send_method: str | None = None  # not public; None: replies fail over to a human
    taobao_poll_idle_s: float = 1.0
    jd_app_key: str | None = None
    jd_app_secret: str | None = None
    jd_access_token: str | None = None
    jd_api_base: str = "https://api.jd.com/routerjson"
    jd_waiter: str | None = None  # 咚咚 waiter pin: chat-log filter and fromPin of replies
    jd_push_method: str = "jingdong.dongdong.packet.josChatMessage.push"
    jd_push_param1: dict[str, str] = field(default_factory=dict)  # accessid/aspid/source/version from JD
    jd_poll_interval_s: float = 15.0
    jd_poll_overlap_s: int = 120
    pdd_client_id: str | None = None
    pdd_client_secret: str | None = None
    pdd_access_token: str | None = None
    pdd_api_base: str = "https://gw-api.pinduoduo.com"
    pdd_ws_base: str = "wss://message-api.pinduoduo.com"
    pdd_ws_sign_digest: str = "hex"  # hex | raw: base64 of the hex or the raw MD5 (sources disagree)
    pdd_chat_types: tuple[str, ...] = ()  # message types carrying buyer chat (not public)
    pdd_send_type: str | None = None  # not public; None: replies fail over to a human

    @staticmethod
    def _marketplaces_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        """TAOBAO_*, JD_*, PDD_*: each marketplace needs all three credentials or none."""

        def creds(names: tuple[str, str, str], label: str) -> list[str] | None:
            values = [(env.get(n) or "").strip() for n in names]
            if not any(values):
                return None
            missing = [n for n, v in zip(names, values, strict=True) if not v]
            if missing:
                raise ConfigError(f"{label} needs {', '.join(missing)} as well (set all three, or none)")
            return values

        def url(name: str, default: str, schemes: tuple[str, ...] = ("http://", "https://")) -> str:
            value = (env.get(name) or default).strip()
            if not value.startswith(schemes):
                raise ConfigError(f"{name} must start with {' or '.join(schemes)}, got {value!r}")
            return value

        def names(name: str, label: str) -> tuple[str, ...]:
            found = tuple(p.strip() for p in (env.get(name) or "").split(",") if p.strip())
            if not found:
                raise ConfigError(f"{label} needs {name}: the comma-separated chat message names your app "
                                  "receives (not public: see the platform console of your approved app)")
            return found

        def positive(name: str, default: float) -> float:
            value = _float(env, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
            return value or default

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        out: dict[str, Any] = {}
        if (tb := creds(("TAOBAO_APP_KEY", "TAOBAO_APP_SECRET", "TAOBAO_SESSION"), "Taobao")) is not None:
            out.update(
                taobao_app_key=tb[0], taobao_app_secret=tb[1], taobao_session=tb[2],
                taobao_api_base=url("TAOBAO_API_BASE", "https://gw.api.taobao.com/router/rest"),
                taobao_sign_method=_choice(env, "TAOBAO_SIGN_METHOD", "md5", {"md5", "hmac", "hmac-sha256"}),
                taobao_tmc_group=text("TAOBAO_TMC_GROUP"), taobao_chat_topics=names("TAOBAO_CHAT_TOPICS", "Taobao"),
                taobao_send_method=text("TAOBAO_SEND_METHOD"), taobao_poll_idle_s=positive("TAOBAO_POLL_IDLE_S", 1.0),
            )
        if (jd := creds(("JD_APP_KEY", "JD_APP_SECRET", "JD_ACCESS_TOKEN"), "JD")) is not None:
            raw_param1 = (env.get("JD_PUSH_PARAM1") or "").strip()
            try:
                param1 = json.loads(raw_param1) if raw_param1 else {}
            except ValueError as exc:
                raise ConfigError(f"JD_PUSH_PARAM1 must be a JSON object, got {raw_param1!r}") from exc
            if not isinstance(param1, dict) or not all(isinstance(v, str | int) for v in param1.values()):
                raise ConfigError(f"JD_PUSH_PARAM1 must be a JSON object of strings, got {raw_param1!r}")
            out.update(
                jd_app_key=jd[0], jd_app_secret=jd[1], jd_access_token=jd[2],
                jd_api_base=url("JD_API_BASE", "https://api.jd.com/routerjson"), jd_waiter=text("JD_WAITER"),
                jd_push_method=text("JD_PUSH_METHOD") or "jingdong.dongdong.packet.josChatMessage.push",
                jd_push_param1={str(k): str(v) for k, v in param1.items()},
                jd_poll_interval_s=positive("JD_POLL_INTERVAL_S", 15.0),
                jd_poll_overlap_s=_int(env, "JD_POLL_OVERLAP_S", 120),
            )
        if (pdd := creds(("PDD_CLIENT_ID", "PDD_CLIENT_SECRET", "PDD_ACCESS_TOKEN"), "Pinduoduo")) is not None:
            out.update(
                pdd_client_id=pdd[0], pdd_client_secret=pdd[1], pdd_access_token=pdd[2],
                pdd_api_base=url("PDD_API_BASE", "https://gw-api.pinduoduo.com"),
                pdd_ws_base=url("PDD_WS_BASE", "wss://message-api.pinduoduo.com", ("ws://", "wss://")),
                pdd_ws_sign_digest=_choice(env, "PDD_WS_SIGN_DIGEST", "hex", {"hex", "raw"}),
                pdd_chat_types=names("PDD_CHAT_TYPES", "Pinduoduo"), pdd_send_type=text("PDD_SEND_TYPE"),
            )
        return out

    # Generic signed webhook channel (docs/webhook-channel.md): on when WEBHOOK_SECRET is set.
    webhook_secret: str | None = None  # HMAC-SHA256 key of pushes in and replies out
    webhook_callback_url: str | None = None  # where replies are POSTed
    webhook_max_skew_s: int = 300  # accepted |now - X-Huiliu-Timestamp|

    @staticmethod
    def _signed_webhook_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        """WEBHOOK_SECRET (>= 16 characters) with WEBHOOK_CALLBACK_URL (http(s)), or neither."""
        secret = env.get("WEBHOOK_SECRET") or ""
        url = (env.get("WEBHOOK_CALLBACK_URL") or "").strip()
        skew = _int(env, "WEBHOOK_MAX_SKEW_S", 300, minimum=1)
        if not secret:
            if url:
                raise ConfigError("WEBHOOK_CALLBACK_URL is set but WEBHOOK_SECRET is empty")
            return {"webhook_max_skew_s": skew}
        if len(secret) < 16:
            raise ConfigError("WEBHOOK_SECRET must be at least 16 characters")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"WEBHOOK_CALLBACK_URL must be an http(s) URL when WEBHOOK_SECRET is set, got {url!r}")
        return {"webhook_secret": secret, "webhook_callback_url": url, "webhook_max_skew_s": skew}
    # --- outbound limits ---
    # Per-channel outbound limits and retries (gateway/outbound_limits.py).
    outbound_telegram_per_chat_per_s: int = 1
    outbound_telegram_group_per_min: int = 20
    outbound_telegram_global_per_s: int = 30
    outbound_wechat_per_s: int = 20  # each WeChat OA / WeCom kf account
    outbound_reply_window_h: int = 48  # WeChat/WeCom: replies allowed this long after the customer wrote
    outbound_reply_window_max: int = 5  # ... and at most this many
    outbound_smtp_per_min: int = 60
    outbound_default_per_s: int = 10  # marketplaces and the signed webhook, per channel
    outbound_max_inline_wait_ms: int = 2000  # longer rate-limit waits are scheduled, not slept
    outbound_max_attempts: int = 8
    outbound_max_age_s: int = 6 * 3600
    # --- console sessions ---
    # Secure flag of the console session cookie: auto (when the request is https or a proxy says
    # X-Forwarded-Proto: https) | true (always; the console then only works over https) | false
    console_secure_cookies: str = "auto"
    # --- end console sessions ---
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
            routing_mode=_choice(env, "ROUTING_MODE", "auto", {"auto", "claim"}),
            # --- wechat (Official Account) ---
            **cls._wechat_from_env(env),
            # --- wecom kf ---
            **cls._wecom_from_env(env),
            # --- email ---
            **cls._email_from_env(env, data_dir),
            # --- marketplaces and signed webhook ---
            **cls._marketplaces_from_env(env),
            **cls._signed_webhook_from_env(env),
            # --- outbound limits ---
            outbound_telegram_per_chat_per_s=_int(env, "OUTBOUND_TELEGRAM_PER_CHAT_PER_S", 1, minimum=1),
            outbound_telegram_group_per_min=_int(env, "OUTBOUND_TELEGRAM_GROUP_PER_MIN", 20, minimum=1),
            outbound_telegram_global_per_s=_int(env, "OUTBOUND_TELEGRAM_GLOBAL_PER_S", 30, minimum=1),
            outbound_wechat_per_s=_int(env, "OUTBOUND_WECHAT_PER_S", 20, minimum=1),
            outbound_reply_window_h=_int(env, "OUTBOUND_REPLY_WINDOW_H", 48, minimum=1),
            outbound_reply_window_max=_int(env, "OUTBOUND_REPLY_WINDOW_MAX", 5, minimum=1),
            outbound_smtp_per_min=_int(env, "OUTBOUND_SMTP_PER_MIN", 60, minimum=1),
            outbound_default_per_s=_int(env, "OUTBOUND_DEFAULT_PER_S", 10, minimum=1),
            outbound_max_inline_wait_ms=_int(env, "OUTBOUND_MAX_INLINE_WAIT_MS", 2000),
            outbound_max_attempts=_int(env, "OUTBOUND_MAX_ATTEMPTS", 8, minimum=1),
            outbound_max_age_s=_int(env, "OUTBOUND_MAX_AGE_S", 6 * 3600, minimum=60),
            # --- console sessions ---
            console_secure_cookies=_choice(env, "CONSOLE_SECURE_COOKIES", "auto", {"auto", "true", "false"}),
            # --- end console sessions ---
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
