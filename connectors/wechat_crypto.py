"""WeChat Official Account / WeCom callback crypto ("WXBizMsgCrypt"), as in channels spec §1.1, §1.6, §2.1.

Both platforms share one scheme:

* plain ``signature = sha1("".join(sorted([token, timestamp, nonce])))`` (OA URL check, plaintext mode);
* ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypt])))`` (safe mode, WeCom);
* ``encrypt = base64(AES-256-CBC(key, iv=key[:16], pkcs7_32(random16 + be32(len(msg)) + msg + receiveid)))``
  with ``key = base64decode(EncodingAESKey + "=")``.

The PKCS#7 block is **32** bytes (pad value 1..32), not AES's 16: a stock 16-byte unpadder rejects real
payloads (official vectors carry pads of 22 and 30), so padding is done by hand here.

Every failure is a ``WeChatCryptoError`` (a ``ValueError``) carrying Tencent's sample error code, so a
connector can answer 4xx and log the code; signature failures are the ``WeChatSignatureError`` subclass.
The signed entry points (``decrypt_message``, ``verify_url``) check the signature before decrypting, so
padding errors are never an oracle to outsiders; call bare ``decrypt`` only on already-verified input.
Pure functions and an immutable class: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK: Final = 32  # WeChat's PKCS#7 block size ("K 为秘钥字节数（采用 32）")
_RANDOM_LEN: Final = 16
_LEN_FIELD: Final = 4


class ErrorCode(IntEnum):
    """Error codes of Tencent's WXBizMsgCrypt samples (spec §1.6), kept for logs and support tickets."""

    VALIDATE_SIGNATURE = -40001
    ILLEGAL_AES_KEY = -40004
    VALIDATE_RECEIVE_ID = -40005
    ENCRYPT_AES = -40006
    DECRYPT_AES = -40007
    ILLEGAL_BUFFER = -40008
    DECODE_BASE64 = -40010
    GEN_RETURN_XML = -40011


class WeChatCryptoError(ValueError):
    """A WeChat/WeCom payload (or our configuration) failed a crypto check; ``code`` is Tencent's code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{message} ({int(code)})")
        self.code = code


class WeChatSignatureError(WeChatCryptoError):
    """The (msg_)signature does not match: the request is not from WeChat/WeCom."""

    def __init__(self, message: str = "signature mismatch") -> None:
        super().__init__(ErrorCode.VALIDATE_SIGNATURE, message)


def _sha1_sorted(*values: str) -> str:
    return hashlib.sha1("".join(sorted(values)).encode("utf-8")).hexdigest()


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """Lowercase hex ``sha1`` of the sorted concatenation of the three values (OA ``signature``)."""
    return _sha1_sorted(token, timestamp, nonce)


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Lowercase hex ``sha1`` of the sorted concatenation of the four values (``msg_signature``)."""
    return _sha1_sorted(token, timestamp, nonce, encrypt)


def verify_signature(expected: str, given: str) -> bool:
    """Constant-time, case-insensitive compare of two hex signatures.

    Compares bytes, not ``str``: ``hmac.compare_digest`` raises ``TypeError`` on non-ASCII ``str``, and
    ``given`` comes straight from a query string.
    """
    return hmac.compare_digest(expected.lower().encode("utf-8"), given.lower().encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Envelope:
    """The decrypted plaintext layout, before the receive-id check."""

    random16: bytes
    msg: bytes
    receive_id: bytes


def _b64decode(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise WeChatCryptoError(ErrorCode.DECODE_BASE64, f"{what} is not valid base64") from exc


def _pad(data: bytes) -> bytes:
    n = _BLOCK - len(data) % _BLOCK  # always 1..32: a full block of padding when already aligned
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1]
    if not 1 <= n <= _BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        raise WeChatCryptoError(ErrorCode.ILLEGAL_BUFFER, f"bad PKCS#7 padding (pad value {n})")
    return data[:-n]


class WeChatCrypto:
    """One account's callback crypto: ``token``, ``EncodingAESKey`` and the receive id.

    ``app_id`` is what the plaintext must end with: the OA AppID, the CorpID for WeCom (incl. 微信客服),
    or the suite_id / third-party AppID when receiving on behalf of another account.
    """

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise WeChatCryptoError(
                ErrorCode.ILLEGAL_AES_KEY, f"EncodingAESKey must be 43 characters, got {len(encoding_aes_key)}"
            )
        try:
            key = base64.b64decode((encoding_aes_key + "=").encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise WeChatCryptoError(ErrorCode.ILLEGAL_AES_KEY, "EncodingAESKey is not valid base64") from exc
        if len(key) != 32:  # unreachable for 43 valid base64 chars; kept as the real invariant
            raise WeChatCryptoError(ErrorCode.ILLEGAL_AES_KEY, f"AES key must be 32 bytes, got {len(key)}")
        self.token = token
        self.app_id = app_id
        self._key = key
        self._iv = key[:16]

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    # -- AES layer ---------------------------------------------------------------------------------

    def open_envelope(self, encrypt_b64: str) -> Envelope:
        """Base64-decode, AES-decrypt and unpack ``encrypt_b64`` without checking the receive id."""
        raw = _b64decode(encrypt_b64, "Encrypt")
        if not raw or len(raw) % _BLOCK:
            raise WeChatCryptoError(ErrorCode.DECRYPT_AES, f"ciphertext length {len(raw)} is not a multiple of 32")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < _RANDOM_LEN + _LEN_FIELD:
            raise WeChatCryptoError(ErrorCode.ILLEGAL_BUFFER, "plaintext too short")
        body = plain[_RANDOM_LEN:]
        msg_len = int.from_bytes(body[:_LEN_FIELD], "big")
        if msg_len > len(body) - _LEN_FIELD:
            raise WeChatCryptoError(ErrorCode.ILLEGAL_BUFFER, f"message length {msg_len} exceeds the plaintext")
        end = _LEN_FIELD + msg_len
        return Envelope(random16=plain[:_RANDOM_LEN], msg=body[_LEN_FIELD:end], receive_id=body[end:])

    def decrypt(self, encrypt_b64: str) -> str:
        """Decrypt an ``Encrypt`` value; the receive id must equal ``app_id``. The message is not trimmed."""
        env = self.open_envelope(encrypt_b64)
        if not hmac.compare_digest(env.receive_id, self.app_id.encode("utf-8")):
            raise WeChatCryptoError(ErrorCode.VALIDATE_RECEIVE_ID, "receive id does not match the configured app id")
        try:
            return env.msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WeChatCryptoError(ErrorCode.ILLEGAL_BUFFER, "message is not valid UTF-8") from exc

    def encrypt(self, msg: str, *, random16: bytes | None = None) -> str:
        """Encrypt ``msg`` for WeChat; ``random16`` fixes the 16-byte prefix (tests only)."""
        if random16 is None:
            # 16 ASCII hex chars, the same shape WeChat itself uses (W1), in case a peer ever inspects it.
            random16 = secrets.token_hex(_RANDOM_LEN // 2).encode("ascii")
        if len(random16) != _RANDOM_LEN:
            raise WeChatCryptoError(ErrorCode.ENCRYPT_AES, f"random prefix must be 16 bytes, got {len(random16)}")
        data = msg.encode("utf-8")
        plain = random16 + len(data).to_bytes(_LEN_FIELD, "big") + data + self.app_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(_pad(plain)) + encryptor.finalize()).decode("ascii")

    # -- signed operations -------------------------------------------------------------------------

    def verify_plain(self, signature: str, timestamp: str, nonce: str) -> None:
        """Check an OA plaintext-mode ``signature`` (GET URL check and every POST); raise on mismatch."""
        if not verify_signature(plain_signature(self.token, timestamp, nonce), signature):
            raise WeChatSignatureError()

    def verify_msg(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Check a four-value ``msg_signature``; raise ``WeChatSignatureError`` on mismatch."""
        if not verify_signature(msg_signature(self.token, timestamp, nonce, encrypt), signature):
            raise WeChatSignatureError()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """WeCom GET URL verification: check the signature over ``echostr``, return its decrypted plaintext.

        Spaces are turned back into ``+`` first: base64 never contains a space, so one can only come from a
        form-style query decoder that read ``+`` as a space (spec §2.1).
        """
        echostr = echostr.replace(" ", "+")
        self.verify_msg(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Safe-mode POST: check ``msg_signature`` over the body's ``Encrypt``, then decrypt it."""
        self.verify_msg(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_reply(
        self, msg: str, timestamp: str, nonce: str, *, random16: bytes | None = None
    ) -> tuple[str, str]:
        """Encrypt a passive reply; returns ``(Encrypt, MsgSignature)`` for ``encrypted_reply_xml``."""
        encrypt = self.encrypt(msg, random16=random16)
        return encrypt, msg_signature(self.token, timestamp, nonce, encrypt)


def encrypted_reply_xml(encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
    """The safe-mode passive reply body (spec §1.4), in wechatpy's exact layout (vector C3).

    ``timestamp`` is written outside CDATA and ``nonce`` inside it, so both are checked to keep a
    reflected query value from injecting XML.
    """
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WeChatCryptoError(ErrorCode.GEN_RETURN_XML, "timestamp must be decimal digits")
    if "]]>" in nonce or "]]>" in encrypt or "]]>" in signature:
        raise WeChatCryptoError(ErrorCode.GEN_RETURN_XML, "value would break out of CDATA")
    return (
        f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
        f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
        f"<TimeStamp>{timestamp}</TimeStamp>\n"
        f"<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
    )
