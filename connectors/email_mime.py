"""MIME helpers of the email connector: decoding text parts, finding the body, attachments as refs.

Pure functions over stdlib ``email`` messages (``policy.default``); no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Final, Literal

from connectors.email_text import html_to_text
from gateway.models import Attachment

_MSGID_RE: Final = re.compile(r"<[^<>\s]+>")
_CHARSET_ALIASES: Final = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
                           "ks_c_5601-1987": "cp949", "iso-8859-1": "cp1252", "us-ascii": "utf-8"}


def msg_ids(value: str) -> list[str]:
    """The ``<id@host>`` tokens of a Message-ID, In-Reply-To or References value, in order."""
    return _MSGID_RE.findall(value)


def header(msg: Message, name: str) -> str:
    """A header's decoded value, stripped; "" when absent."""
    value = msg.get(name)
    return str(value).strip() if value is not None else ""


def _decode(part: Message) -> str:
    """A text part's content. Declared charsets are often narrower than the bytes (GB2312 mail with GBK
    characters), so aliases widen them, and undecodable bytes become U+FFFD rather than an error."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    declared = (part.get_content_charset() or "utf-8").lower()
    for charset in (_CHARSET_ALIASES.get(declared, declared), "utf-8", "gb18030"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", errors="replace")


def _walk(part: Message, prefix: str = "") -> Iterator[tuple[str, Message]]:
    """Leaf parts with their IMAP section numbers (RFC 3501 §6.4.5), so ``BODY[<section>]`` fetches one
    later. Encapsulated messages are leaves: a forwarded mail stays one attachment."""
    if part.get_content_maintype() != "multipart":
        yield (prefix or "1"), part
        return
    children = part.get_payload()
    for i, child in enumerate(children if isinstance(children, list) else [], 1):
        section = f"{prefix}.{i}" if prefix else str(i)
        if child.get_content_maintype() == "multipart":
            yield from _walk(child, section)
        else:
            yield section, child


def _kind(mime: str) -> Literal["image", "audio", "video", "file"]:
    major = mime.partition("/")[0]
    return major if major in ("image", "audio", "video") else "file"  # type: ignore[return-value]


def attachments(msg: EmailMessage, ref_base: str) -> tuple[Attachment, ...]:
    """Every non-body part as a reference ``<ref_base>:<IMAP section>`` with name, type and size."""
    found: list[Attachment] = []
    for section, part in _walk(msg):
        mime = part.get_content_type()
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if mime in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            continue  # the body (or its alternative rendering), not an attachment
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else None
        found.append(Attachment(kind=_kind(mime), ref=f"{ref_base}:{section}", name=filename,
                                mime_type=mime, size=size))
    return tuple(found)


def body_text(msg: EmailMessage) -> str:
    """The full text body: the plain part, else the HTML part as text."""
    plain = msg.get_body(preferencelist=("plain",))
    text = _decode(plain) if plain is not None else ""
    if not text.strip():
        html = msg.get_body(preferencelist=("html",))
        text = html_to_text(_decode(html)) if html is not None else ""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header (all occurrences)."""
    values = [str(v) for v in msg.get_all(name) or []]
    return [(n, a) for n, a in getaddresses(values) if a]


def sent_date(msg: Message, now: datetime) -> datetime:
    """The Date header in UTC (a zone-less date is taken as UTC); ``now`` when missing or broken."""
    header = msg.get("Date")
    value = getattr(header, "datetime", None)
    if not isinstance(value, datetime):
        return now
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
