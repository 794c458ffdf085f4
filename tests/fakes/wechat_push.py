"""Builds WeChat Official Account callbacks exactly as WeChat's servers send them (channels spec §1.1–§1.2).

Plaintext mode: the XML body, query ``signature``/``timestamp``/``nonce``/``openid``. Safe mode: the body
is ``<xml><ToUserName/><Encrypt/></xml>`` and the query adds ``encrypt_type=aes`` and ``msg_signature``.
Compatibility mode: the body carries both the plaintext fields and ``<Encrypt>``. The AES layer uses
``connectors.wechat_crypto``, which is pinned to Tencent's official vectors (tests/connectors/test_wechat_crypto.py).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

from connectors.wechat_crypto import WeChatCrypto, msg_signature, plain_signature

Mode = Literal["plain", "safe", "compat"]
ACCOUNT = "gh_5e0b6a1c2d3f"  # the Official Account's original id (ToUserName)


def callback_xml(openid: str, msg_type: str, create_time: int | None = None, **fields: str | int) -> str:
    """The plaintext callback XML with WeChat's CDATA layout; ``fields`` in the order given."""
    parts = [f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
             f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
             f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    for key, value in fields.items():
        parts.append(f"<{key}>{value}</{key}>" if isinstance(value, int) else f"<{key}><![CDATA[{value}]]></{key}>")
    return "<xml>" + "\n".join(parts) + "</xml>"


@dataclass
class WeChatPush:
    """Signs (and in safe/compat mode encrypts) callback bodies for one account."""

    token: str
    app_id: str
    aes_key: str | None = None
    mode: Mode = "plain"

    def request(self, xml: str, *, timestamp: int | None = None, nonce: str | None = None,
                openid: str = "") -> tuple[dict[str, str], bytes]:
        """``(query, body)`` for one POST of ``xml``."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        query = {"signature": plain_signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if openid:
            query["openid"] = openid
        if self.mode == "plain":
            return query, xml.encode()
        assert self.aes_key is not None, "safe/compat mode needs the EncodingAESKey"
        encrypt = WeChatCrypto(self.token, self.aes_key, self.app_id).encrypt(xml)
        query.update(encrypt_type="aes", msg_signature=msg_signature(self.token, ts, nonce, encrypt))
        envelope = f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        if self.mode == "safe":
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>\n{envelope}\n</xml>"
        else:
            body = xml.replace("</xml>", envelope + "</xml>")
        return query, body.encode()

    def url_check(self, echostr: str, *, timestamp: int | None = None) -> dict[str, str]:
        """The query of the console's GET URL verification."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(secrets.randbelow(10**10))
        return {"signature": plain_signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                "echostr": echostr}

