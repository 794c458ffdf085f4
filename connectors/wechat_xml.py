"""WeChat Official Account callback XML -> fields -> canonical message (channels spec §1.2, §1.3). Pure.

Parsing goes through ``defusedxml`` with DTDs forbidden outright: WeChat never sends a DOCTYPE, so
any DTD (external entities reading local files, "billion laughs" entity expansion) is refused before
a single entity is resolved, and every parse failure is a ``PayloadError`` (400).

What each callback becomes (decided here, documented in the README):

* ``text`` -> its ``Content``; ``voice`` -> the ``Recognition`` text when speech recognition is on,
  plus the audio as an attachment; ``image``/``video``/``shortvideo``/``location``/``link`` and unknown
  types -> attachments with empty text (the bot hands those to a human, as on every channel).
* ``event``: ``CLICK`` -> the menu's ``EventKey`` as text (operators set keys such as "怎么退货");
  ``subscribe`` -> ``subscribe_text`` (the bot's greeting: with a server URL configured WeChat disables
  the console's own follow auto-reply, and a follow opens a 3-message/1-minute send window), or
  nothing when ``subscribe_text`` is empty. ``unsubscribe``, ``SCAN``, ``VIEW``, ``LOCATION`` and
  the rest carry no customer words -> ``[]``.

Dedupe ids: ``MsgId`` for messages, ``FromUserName:CreateTime`` for events (spec §1.3; events have no
``MsgId``). The conversation key is the customer's openid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from connectors.base import PayloadError
from gateway.models import Attachment, Channel, CustomerRef, InboundMessage

MAX_TEXT: Final = 20_000  # InboundMessage.text limit; the full Content stays in raw
_MAX_DEPTH: Final = 3  # nested event blocks (ScanCodeInfo, SendPicsInfo/PicList/item) are shallow


def parse_xml(data: bytes | str, what: str = "WeChat body") -> dict[str, Any]:
    """The children of the ``<xml>`` root as ``{tag: text}`` (nested blocks as dicts; first tag wins).

    Raises ``PayloadError`` for anything that is not plain, DTD-free XML with an ``<xml>`` root.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise PayloadError(f"{what}: DTDs and entities are refused ({type(exc).__name__})") from exc
    except (ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding declaration
        raise PayloadError(f"{what} is not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise PayloadError(f"{what}: root element must be <xml>, got <{root.tag[:40]}>")
    return _children(root, 1)


def _children(element: Element, depth: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for child in element:
        if child.tag in fields:
            continue
        if len(child) and depth < _MAX_DEPTH:
            fields[child.tag] = _children(child, depth + 1)
        else:
            fields[child.tag] = child.text or ""
    return fields


def encrypt_field(body: bytes) -> str | None:
    """The ``<Encrypt>`` value of a safe-mode or compatibility-mode body, ``None`` in plaintext mode."""
    value = parse_xml(body).get("Encrypt")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise PayloadError("WeChat body: <Encrypt> is empty")
    return value.strip()


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def _required(fields: dict[str, Any], key: str) -> str:
    value = _text(fields, key)
    if not value:
        raise PayloadError(f"WeChat message: <{key}> is missing")
    return value


def _sent_at(fields: dict[str, Any]) -> tuple[str, datetime]:
    raw = _required(fields, "CreateTime")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise PayloadError(f"WeChat message: <CreateTime> must be unix seconds, got {raw[:20]!r}")
    try:
        return raw, datetime.fromtimestamp(int(raw), UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError("WeChat message: <CreateTime> is out of range") from exc


def _media(fields: dict[str, Any]) -> str:
    media_id = _text(fields, "MediaId")
    return f"wechat-media:{media_id}" if media_id else ""


def _attachments(msg_type: str, fields: dict[str, Any]) -> tuple[Attachment, ...]:
    if msg_type == "image":
        # PicUrl opens in a browser; MediaId (in raw) fetches the original for 3 days via media/get.
        ref = _text(fields, "PicUrl") or _media(fields)
        return (Attachment(kind="image", ref=ref or "wechat-image"),)
    if msg_type == "voice":
        fmt = _text(fields, "Format").lower()
        return (Attachment(kind="audio", ref=_media(fields) or "wechat-voice",
                           mime_type=f"audio/{fmt}" if fmt.isalnum() else None),)
    if msg_type in {"video", "shortvideo"}:
        return (Attachment(kind="video", ref=_media(fields) or f"wechat-{msg_type}"),)
    if msg_type == "location":
        lat, lon = _text(fields, "Location_X"), _text(fields, "Location_Y")
        return (Attachment(kind="location", ref=f"{lat},{lon}", name=_text(fields, "Label") or None),)
    if msg_type == "link":
        return (Attachment(kind="other", ref=_text(fields, "Url") or "wechat-link",
                           name=_text(fields, "Title") or None),)
    # file, miniprogrampage and future types: an agent can look at them in raw.
    ref = _media(fields) or _text(fields, "Url") or f"wechat-{msg_type or 'unknown'}"
    return (Attachment(kind="other", ref=ref, name=_text(fields, "Title") or None),)


def to_message(fields: dict[str, Any], *, subscribe_text: str | None) -> InboundMessage | None:
    """One callback's fields -> at most one message (``None`` for events without customer words)."""
    openid = _required(fields, "FromUserName")
    if len(openid) > 128 or any(ch.isspace() for ch in openid):
        raise PayloadError("WeChat message: <FromUserName> is not an openid")
    create_time, sent_at = _sent_at(fields)
    msg_type = _required(fields, "MsgType").lower()
    attachments: tuple[Attachment, ...] = ()
    if msg_type == "event":
        event = _text(fields, "Event").lower()
        if event == "click":
            text = _text(fields, "EventKey")
        elif event == "subscribe":
            text = subscribe_text or ""
        else:
            text = ""  # unsubscribe, SCAN, VIEW, LOCATION, template/mass-send reports...
        if not text:
            return None
        external_id = f"{openid}:{create_time}"
    else:
        msg_id = _text(fields, "MsgId")
        # MsgId is always there in practice; without it fall back to the event key rather than lose it.
        external_id = msg_id or f"{openid}:{create_time}"
        if msg_type == "text":
            content = fields.get("Content")
            if not isinstance(content, str):
                raise PayloadError("WeChat message: text message without <Content>")
            text = content
        elif msg_type == "voice":
            text = _text(fields, "Recognition")
            attachments = _attachments(msg_type, fields)
        else:
            text = ""
            attachments = _attachments(msg_type, fields)
        if not text.strip() and not attachments:
            return None  # a blank text: nothing to answer, and not junk worth a WeChat retry
    try:
        return InboundMessage.build(
            channel=Channel.WECHAT, external_message_id=external_id, conversation_key=openid,
            customer=CustomerRef(channel=Channel.WECHAT, external_id=openid), text=text[:MAX_TEXT],
            sent_at=sent_at, attachments=attachments, raw=fields,
        )
    except ValidationError as exc:
        raise PayloadError(f"WeChat message does not fit the canonical model: {exc.errors()[0]['msg']}") from exc
