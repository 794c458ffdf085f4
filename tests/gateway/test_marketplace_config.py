"""Marketplace settings from the environment (each marketplace on only with all its credentials; bad
values -> ConfigError naming the variable) and their wiring into connectors and intake tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.jd import JdAdapter
from connectors.pinduoduo import PinduoduoAdapter
from connectors.registry import connector_class
from connectors.taobao import TaobaoAdapter
from gateway.channels import build_connectors
from gateway.config import ConfigError, Settings
from gateway.keys import Keys
from gateway.models import Channel

TAOBAO = {"TAOBAO_APP_KEY": "12345678", "TAOBAO_APP_SECRET": "s", "TAOBAO_SESSION": "sess",
          "TAOBAO_CHAT_TOPICS": "topic_a, topic_b"}
JD = {"JD_APP_KEY": "ak", "JD_APP_SECRET": "sk", "JD_ACCESS_TOKEN": "tok"}
PDD = {"PDD_CLIENT_ID": "cid", "PDD_CLIENT_SECRET": "cs", "PDD_ACCESS_TOKEN": "tok", "PDD_CHAT_TYPES": "t1"}


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"HUILIU_DATA_DIR": str(tmp_path), **env})


def test_off_without_credentials(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.taobao_app_key is None and s.jd_app_key is None and s.pdd_client_id is None
    assert set(build_connectors(s, None, Keys("t"))) & {Channel.TAOBAO, Channel.JD, Channel.PINDUODUO} == set()  # type: ignore[arg-type]


def test_all_three_on(tmp_path: Path) -> None:
    s = load(tmp_path, **TAOBAO, **JD, **PDD, TAOBAO_SIGN_METHOD="HMAC-SHA256", TAOBAO_SEND_METHOD="x.send",
             JD_PUSH_PARAM1='{"aspid": "a", "accessid": 7}', JD_WAITER="w", PDD_WS_SIGN_DIGEST="raw")
    assert s.taobao_chat_topics == ("topic_a", "topic_b") and s.taobao_sign_method == "hmac-sha256"
    assert s.taobao_send_method == "x.send" and s.taobao_tmc_group is None
    assert s.jd_push_param1 == {"aspid": "a", "accessid": "7"} and s.jd_waiter == "w"
    assert s.pdd_ws_sign_digest == "raw" and s.pdd_send_type is None
    built = build_connectors(s, None, Keys("t"))  # type: ignore[arg-type]  # marketplaces need no Redis
    assert isinstance(built[Channel.TAOBAO], TaobaoAdapter) and isinstance(built[Channel.JD], JdAdapter)
    assert isinstance(built[Channel.PINDUODUO], PinduoduoAdapter)
    assert built[Channel.TAOBAO].sign_method == "hmac-sha256" and built[Channel.PINDUODUO].ws_sign_digest == "raw"
    assert connector_class(Channel.JD) is JdAdapter


@pytest.mark.parametrize(("env", "needle"), [
    ({"TAOBAO_APP_KEY": "k"}, "TAOBAO_APP_SECRET, TAOBAO_SESSION"),
    ({**TAOBAO, "TAOBAO_CHAT_TOPICS": " , "}, "TAOBAO_CHAT_TOPICS"),
    ({**TAOBAO, "TAOBAO_SIGN_METHOD": "sha1"}, "TAOBAO_SIGN_METHOD"),
    ({**TAOBAO, "TAOBAO_API_BASE": "gw.api.taobao.com"}, "TAOBAO_API_BASE"),
    ({**TAOBAO, "TAOBAO_POLL_IDLE_S": "0"}, "TAOBAO_POLL_IDLE_S"),
    ({"JD_ACCESS_TOKEN": "t"}, "JD_APP_KEY, JD_APP_SECRET"),
    ({**JD, "JD_PUSH_PARAM1": "aspid=1"}, "JD_PUSH_PARAM1"),
    ({**JD, "JD_PUSH_PARAM1": '["a"]'}, "JD_PUSH_PARAM1"),
    ({**JD, "JD_PUSH_PARAM1": '{"a": {"b": 1}}'}, "JD_PUSH_PARAM1"),
    ({**JD, "JD_POLL_OVERLAP_S": "-5"}, "JD_POLL_OVERLAP_S"),
    ({**JD, "JD_POLL_INTERVAL_S": "soon"}, "JD_POLL_INTERVAL_S"),
    ({"PDD_CLIENT_SECRET": "x"}, "PDD_CLIENT_ID, PDD_ACCESS_TOKEN"),
    ({**PDD, "PDD_CHAT_TYPES": ""}, "PDD_CHAT_TYPES"),
    ({**PDD, "PDD_WS_BASE": "https://message-api.pinduoduo.com"}, "PDD_WS_BASE"),
    ({**PDD, "PDD_WS_SIGN_DIGEST": "base64"}, "PDD_WS_SIGN_DIGEST"),
])
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(tmp_path, **env)

