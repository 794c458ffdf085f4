"""微信客服 ``kf/sync_msg`` pages, pure: customer messages, kf events and unreadable items (spec §2.2).

Customer messages (origin 3) become ``InboundMessage`` with dedupe id ``msgid`` and conversation key
``"{open_kfid}:{external_userid}"``; system events (origin 4, ``msgtype`` event) and what a human servicer
typed in the WeCom client (origin 5) become ``KfEvent``; an item that cannot be read becomes a
``BadItem`` for the dead-letter stream without failing its page. Media stay references (``media_id``):
nothing is downloaded on the intake path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from connectors.base import PayloadError
from gateway.models import Attachment, Channel, CustomerRef, InboundMessage

ORIGIN_CUSTOMER: Final = 3  # sent by the WeChat customer
ORIGIN_SYSTEM: Final = 4  # system-pushed event
ORIGIN_SERVICER: Final = 5  # typed by a human servicer (接待人员) in the WeCom client
_MEDIA_KINDS: Final[dict[str, Literal["image", "audio", "video", "file"]]] = {
    "image": "image", "voice": "audio", "video": "video", "file": "file"}


@dataclass(frozen=True, slots=True)
class KfEvent:
    """Something in ``msg_list`` that is not a customer message.

    ``kind`` is WeCom's ``event_type`` (``enter_session``, ``session_status_change``, ``msg_send_fail``,
    ``servicer_status_change``, ``user_recall_msg``, ``servicer_recall_msg``...), or ``servicer_message``
    for an origin-5 item (a human servicer wrote to the customer from the WeCom client).
    """

    kind: str
    msgid: str
    open_kfid: str
    external_userid: str | None
    sent_at: datetime
    servicer_userid: str | None = None
    change_type: int | None = None  # session_status_change: 1 picked up, 2 transferred, 3 ended, 4 re-joined
    fail_msgid: str | None = None
    fail_type: int | None = None
    text: str = ""  # servicer_message: what was said (or a "[image]"-style placeholder)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def conversation_key(self) -> str | None:
        return conversation_key(self.open_kfid, self.external_userid) if self.external_userid else None


@dataclass(frozen=True, slots=True)
class BadItem:
    """A ``msg_list`` item we cannot read: kept whole for the dead-letter stream."""

    raw: Any
    error: str

    @property
    def source_id(self) -> str:
        msgid = self.raw.get("msgid") if isinstance(self.raw, dict) else None
        return f"wecom:{msgid}" if isinstance(msgid, str) and msgid else "wecom:?"


Item = InboundMessage | KfEvent | BadItem


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One ``kf/sync_msg`` answer, items in WeCom's order (ingest and apply them in that order)."""

    items: tuple[Item, ...]
    next_cursor: str
    has_more: bool

    @property
    def messages(self) -> list[InboundMessage]:
        return [i for i in self.items if isinstance(i, InboundMessage)]

    @property
    def events(self) -> list[KfEvent]:
        return [i for i in self.items if isinstance(i, KfEvent)]

    @property
    def bad(self) -> list[BadItem]:
        return [i for i in self.items if isinstance(i, BadItem)]


def conversation_key(open_kfid: str, external_userid: str) -> str:
    """Our thread key: one conversation per (kf account, customer); neither id contains ``:``."""
    return f"{open_kfid}:{external_userid}"


def split_conversation_key(key: str) -> tuple[str, str] | None:
    """``(open_kfid, external_userid)``, or None when ``key`` is not one of ours."""
    open_kfid, sep, external_userid = key.partition(":")
    return (open_kfid, external_userid) if sep and open_kfid and external_userid else None


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where}.{key} is missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key} must be a string")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError(f"{where}.{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{where}.{key} must be an integer")
    return value


def _obj(obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"{where}.{key} must be an object")
    return value


def _sent_at(item: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(_int(item, "send_time", "msg") or 0, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError("msg.send_time is out of range") from exc


def _content(item: Mapping[str, Any], msgtype: str) -> tuple[str, tuple[Attachment, ...]]:
    """The text and attachments of a customer (or servicer) message of ``msgtype``."""
    if msgtype == "text":
        text = _obj(item, "text", "msg")
        # A click on a menu we sent (msgmenu) arrives as text with the item's id: like a button press
        # on other channels, the id is what the customer chose.
        return _str(text, "menu_id", "text", required=False) or _str(text, "content", "text") or "", ()
    if msgtype in _MEDIA_KINDS:
        media = _obj(item, msgtype, "msg")
        return "", (Attachment(kind=_MEDIA_KINDS[msgtype], ref=_str(media, "media_id", msgtype) or ""),)
    if msgtype == "location":
        loc = _obj(item, "location", "msg")
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
            raise PayloadError("location needs numeric latitude/longitude")
        label = " ".join(p for p in (_str(loc, "name", "location", required=False),
                                     _str(loc, "address", "location", required=False)) if p)
        return label, (Attachment(kind="location", ref=f"{lat},{lon}", name=label or None),)
    if msgtype == "link":
        link = _obj(item, "link", "msg")
        url = _str(link, "url", "link") or ""
        title = _str(link, "title", "link", required=False)
        desc = _str(link, "desc", "link", required=False)
        return "\n".join(p for p in (title, desc, url) if p), (Attachment(kind="other", ref=url, name=title),)
    if msgtype == "miniprogram":
        mini = _obj(item, "miniprogram", "msg")
        title = _str(mini, "title", "miniprogram", required=False)
        ref = f"{_str(mini, 'appid', 'miniprogram')}:{_str(mini, 'pagepath', 'miniprogram', required=False) or ''}"
        return title or "", (Attachment(kind="other", ref=ref, name=title, mime_type="application/x-wx-miniprogram"),)
    if msgtype == "business_card":
        card = _obj(item, "business_card", "msg")
        return "", (Attachment(kind="other", ref=_str(card, "userid", "business_card") or "", name="business_card"),)
    # msgmenu, channels_shop_product/order, merged_msg, channels, note...: kept as a reference so an
    # agent sees that something arrived (and raw keeps the payload); the bot sees no text.
    return "", (Attachment(kind="other", ref=msgtype, name=msgtype),)


def _parse_item(item: Any) -> Item:
    if not isinstance(item, dict):
        raise PayloadError("msg_list item must be an object")
    msgid = _str(item, "msgid", "msg") or ""
    msgtype = _str(item, "msgtype", "msg") or ""
    origin = _int(item, "origin", "msg")
    sent_at = _sent_at(item)
    if msgtype == "event":
        ev = _obj(item, "event", "msg")
        return KfEvent(
            kind=_str(ev, "event_type", "event") or "", msgid=msgid, sent_at=sent_at, raw=item,
            open_kfid=_str(ev, "open_kfid", "event") or "",
            external_userid=_str(ev, "external_userid", "event", required=False),
            servicer_userid=(_str(ev, "new_servicer_userid", "event", required=False)
                             or _str(ev, "servicer_userid", "event", required=False)),
            change_type=_int(ev, "change_type", "event", required=False),
            fail_msgid=_str(ev, "fail_msgid", "event", required=False),
            fail_type=_int(ev, "fail_type", "event", required=False),
        )
    open_kfid = _str(item, "open_kfid", "msg") or ""
    external_userid = _str(item, "external_userid", "msg") or ""
    if origin == ORIGIN_SERVICER:
        text, attachments = _content(item, msgtype)
        return KfEvent(
            kind="servicer_message", msgid=msgid, open_kfid=open_kfid, external_userid=external_userid,
            sent_at=sent_at, servicer_userid=_str(item, "servicer_userid", "msg", required=False),
            text=text or " ".join(f"[{a.kind}]" for a in attachments) or f"[{msgtype}]", raw=item,
        )
    if origin != ORIGIN_CUSTOMER:
        raise PayloadError(f"unknown origin {origin} for msgtype {msgtype!r}")
    text, attachments = _content(item, msgtype)
    return InboundMessage.build(
        channel=Channel.WECOM, external_message_id=msgid,
        conversation_key=conversation_key(open_kfid, external_userid),
        customer=CustomerRef(channel=Channel.WECOM, external_id=external_userid),
        text=text, sent_at=sent_at, attachments=attachments, raw=item,
    )


def parse_sync_page(page: Any) -> SyncPage:
    """A ``kf/sync_msg`` answer -> ``SyncPage``. Pure.

    The page envelope must be sound (``errcode`` 0, ``next_cursor``, ``has_more``, ``msg_list``) or
    ``PayloadError`` is raised: without a cursor nothing can advance. A single unreadable item becomes a
    ``BadItem`` instead, so one odd message never blocks the ones after it.
    """
    if not isinstance(page, dict):
        raise PayloadError("sync_msg answer must be a JSON object")
    errcode = page.get("errcode", 0)
    if errcode != 0:
        raise PayloadError(f"sync_msg answer carries errcode {errcode}: {page.get('errmsg')}")
    has_more = page.get("has_more")
    if has_more not in (0, 1) or isinstance(has_more, bool):
        raise PayloadError("sync_msg has_more must be 0 or 1")
    next_cursor = page.get("next_cursor", "")
    if not isinstance(next_cursor, str):
        raise PayloadError("sync_msg next_cursor must be a string")
    if has_more and not next_cursor:
        raise PayloadError("sync_msg says has_more=1 but gives no next_cursor")
    msg_list = page.get("msg_list", [])
    if not isinstance(msg_list, list):
        raise PayloadError("sync_msg msg_list must be an array")
    items: list[Item] = []
    for raw in msg_list:
        try:
            items.append(_parse_item(raw))
        except PayloadError as exc:
            items.append(BadItem(raw, str(exc)))
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            items.append(BadItem(raw, f"{type(exc).__name__}: {exc}"))
    return SyncPage(tuple(items), next_cursor, bool(has_more))
