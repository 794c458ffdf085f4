"""EMAIL_* settings: all-or-nothing, sensible port/TLS defaults, errors that name the variable, wiring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.channels import build_connectors
from gateway.config import ConfigError, Settings
from gateway.keys import Keys
from gateway.models import Channel

BASE = {"EMAIL_ADDRESS": "Service@Shop.example", "EMAIL_IMAP_HOST": "imap.shop.example",
        "EMAIL_SMTP_HOST": "smtp.shop.example", "EMAIL_IMAP_PASSWORD": "pw"}


def env(tmp_path: Path, **kw: str) -> dict[str, str]:
    return {"HUILIU_DATA_DIR": str(tmp_path / "d"), **kw}


def test_off_by_default(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.email_address is None and s.email_token_secret == ""
    assert not (tmp_path / "d" / "email_token_secret").exists()
    assert Channel.EMAIL not in build_connectors(s, aioredis.Redis(), Keys("t"))


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, **BASE))
    assert (s.email_address, s.email_imap_user, s.email_imap_port, s.email_imap_ssl, s.email_imap_folder) == (
        "service@shop.example", "service@shop.example", 993, True, "INBOX")
    assert (s.email_smtp_port, s.email_smtp_tls, s.email_smtp_user, s.email_smtp_password) == (
        587, "starttls", "service@shop.example", "pw")
    assert s.email_poll_interval_s == 60.0
    assert len(s.email_token_secret) >= 32
    assert Settings.from_env(env(tmp_path, **BASE)).email_token_secret == s.email_token_secret  # persisted
    connector = build_connectors(s, aioredis.Redis(), Keys("t"))[Channel.EMAIL]
    assert connector.address == "service@shop.example"


@pytest.mark.parametrize(("extra", "expected"), [
    ({"EMAIL_IMAP_PORT": "143"}, {"email_imap_ssl": False, "email_imap_port": 143}),
    ({"EMAIL_IMAP_SSL": "off"}, {"email_imap_ssl": False, "email_imap_port": 143}),
    ({"EMAIL_IMAP_SSL": "on", "EMAIL_IMAP_PORT": "10993"}, {"email_imap_ssl": True, "email_imap_port": 10993}),
    ({"EMAIL_SMTP_PORT": "465"}, {"email_smtp_tls": "tls", "email_smtp_port": 465}),
    ({"EMAIL_SMTP_TLS": "tls"}, {"email_smtp_tls": "tls", "email_smtp_port": 465}),
    ({"EMAIL_SMTP_TLS": "none"}, {"email_smtp_tls": "none", "email_smtp_port": 25}),
    ({"EMAIL_SMTP_USER": "-"}, {"email_smtp_user": None, "email_smtp_password": None}),
    ({"EMAIL_SMTP_USER": "relay", "EMAIL_SMTP_PASSWORD": "p2"}, {"email_smtp_user": "relay",
                                                                  "email_smtp_password": "p2"}),
    ({"EMAIL_POLL_INTERVAL_S": "15"}, {"email_poll_interval_s": 15.0}),
    ({"EMAIL_TOKEN_SECRET": "s3cret"}, {"email_token_secret": "s3cret"}),
])
def test_options(tmp_path: Path, extra: dict[str, str], expected: dict[str, object]) -> None:
    s = Settings.from_env(env(tmp_path, **BASE, **extra))
    assert {k: getattr(s, k) for k in expected} == expected


@pytest.mark.parametrize(("change", "message"), [
    ({"EMAIL_SMTP_HOST": ""}, "needs EMAIL_SMTP_HOST"),
    ({"EMAIL_IMAP_HOST": "", "EMAIL_SMTP_HOST": ""}, "needs EMAIL_IMAP_HOST, EMAIL_SMTP_HOST"),
    ({"EMAIL_ADDRESS": "shop"}, "EMAIL_ADDRESS must be a plain address"),
    ({"EMAIL_ADDRESS": "Shop <s@shop.example>"}, "EMAIL_ADDRESS must be a plain address"),
    ({"EMAIL_IMAP_PASSWORD": ""}, "EMAIL_IMAP_PASSWORD is empty"),
    ({"EMAIL_IMAP_SSL": "maybe"}, "EMAIL_IMAP_SSL must be on or off"),
    ({"EMAIL_IMAP_PORT": "imap"}, "EMAIL_IMAP_PORT must be an integer"),
    ({"EMAIL_SMTP_PORT": "70000"}, "EMAIL_SMTP_PORT must be a TCP port"),
    ({"EMAIL_SMTP_TLS": "ssl"}, "EMAIL_SMTP_TLS must be one of"),
    ({"EMAIL_POLL_INTERVAL_S": "0"}, "EMAIL_POLL_INTERVAL_S must be > 0"),
])
def test_bad_values_name_the_variable(tmp_path: Path, change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env(tmp_path, **{**BASE, **change}))
