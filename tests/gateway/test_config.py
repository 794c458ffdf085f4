"""Settings from the environment: defaults, persisted secrets, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings


def env(tmp_path: Path, **kw: str) -> dict[str, str]:
    return {"HUILIU_DATA_DIR": str(tmp_path / "d"), **kw}


def test_defaults_and_persisted_secrets(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path))
    assert (first.host, first.port, first.telegram_mode, first.redis_url) == ("127.0.0.1", 8080, "off", None)
    assert first.effective_database_url.startswith("sqlite+aiosqlite:///")
    second = Settings.from_env(env(tmp_path))
    assert second.admin_token == first.admin_token and len(first.admin_token) >= 32
    assert second.webchat_secret == first.webchat_secret != first.admin_token
    assert (tmp_path / "d" / "admin_token").stat().st_mode & 0o077 == 0


def test_token_alone_means_polling(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path, TELEGRAM_BOT_TOKEN="1:x")).telegram_mode == "polling"


@pytest.mark.parametrize(("extra", "message"), [
    ({"HUILIU_PORT": "eighty"}, "HUILIU_PORT must be an integer"),
    ({"HUILIU_MAX_ATTEMPTS": "0"}, "HUILIU_MAX_ATTEMPTS must be >= 1"),
    ({"KB_DECLINE_THRESHOLD": "high"}, "KB_DECLINE_THRESHOLD must be a number"),
    ({"TELEGRAM_MODE": "carrier-pigeon"}, "TELEGRAM_MODE must be off, polling or webhook"),
    ({"TELEGRAM_MODE": "polling"}, "TELEGRAM_BOT_TOKEN is empty"),
    ({"TELEGRAM_MODE": "webhook", "TELEGRAM_BOT_TOKEN": "1:x"}, "needs TELEGRAM_WEBHOOK_SECRET"),
])
def test_bad_values_name_the_variable(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env(tmp_path, **extra))


def test_cli_reports_config_errors_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    monkeypatch.setenv("HUILIU_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TELEGRAM_MODE", "bogus")
    assert main(["db", "upgrade"]) == 2
    assert "TELEGRAM_MODE must be" in capsys.readouterr().err


@pytest.mark.parametrize(("url", "expected"), [
    ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
    ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
    ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
])
def test_database_urls_pick_async_drivers(url: str, expected: str) -> None:
    from gateway.db.engine import normalize_url

    assert normalize_url(url) == expected


def test_unsupported_database_url_is_a_config_error() -> None:
    from gateway.db.engine import normalize_url

    with pytest.raises(ConfigError, match="unsupported DATABASE_URL 'mysql'"):
        normalize_url("mysql://root@localhost/x")
