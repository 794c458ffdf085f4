"""Is this mail from a machine? Auto-replies, bounces, list mail and our own mail coming back.

Pure functions over a parsed ``email.message.EmailMessage`` (stdlib, ``policy.default``). The rules are
RFC 3834 (``Auto-Submitted``), RFC 3464 (delivery status notifications) and the vendor headers Chatwoot
and Zammad check (spec §4.2–4.5). Such mail is still stored; the bot never answers it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Final

from gateway.models import Automated

_BULK_PRECEDENCE: Final = frozenset({"bulk", "list", "junk"})
_DAEMON_RE: Final = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)$", re.I)
_MSGID_RE: Final = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class BounceReport:
    """What a delivery status notification says about the mail it returns."""

    failed_recipients: tuple[str, ...]
    status: str | None  # RFC 3463 enhanced code, e.g. "5.1.1" (permanent) or "4.2.2" (transient)
    diagnostic: str | None
    original_message_id: str | None  # the Message-ID of the mail that could not be delivered

    def summary(self) -> str:
        """One line for the transcript and the ticket, Chinese first."""
        who = ", ".join(self.failed_recipients) or "?"
        detail = " ".join(x for x in (self.status, self.diagnostic) if x)
        return f"退信：邮件未能送达 {who} / Delivery failed to {who}" + (f" ({detail[:300]})" if detail else "")


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return str(value).strip() if value is not None else ""


def _local_part(address: str) -> str:
    return address.rpartition("@")[0] if "@" in address else address


def is_dsn(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and msg.get_param("report-type", "").lower() == "delivery-status")  # type: ignore[union-attr]


def classify(
    msg: EmailMessage, *, sender: str, own_address: str, is_our_message_id: Callable[[str], bool]
) -> Automated | None:
    """Why nobody should answer ``msg``, or None for mail a person wrote.

    ``sender`` is the lower-cased From address ("" when there is none); ``is_our_message_id`` tells
    whether a Message-ID is one we generated (our mail looping back to us).
    """
    return_path = _header(msg, "Return-Path")
    if (is_dsn(msg) or _header(msg, "X-Failed-Recipients")
            or _DAEMON_RE.match(_local_part(sender)) or not sender):
        return "bounce"
    message_id = _header(msg, "Message-ID")
    x_loop = _header(msg, "X-Loop").lower()
    if (sender == own_address or (message_id and is_our_message_id(message_id))
            or x_loop in {"yes", "true", own_address}):
        return "loop"
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    precedence = _header(msg, "Precedence").lower()
    if ((auto_submitted and auto_submitted.split(";")[0].strip() != "no")
            or _header(msg, "X-Autoreply").lower() in {"yes", "true"}
            or _header(msg, "X-Autorespond")
            or _header(msg, "X-Auto-Response-Suppress").lower() in {"all", "oof", "autoreply"}
            or precedence == "auto_reply"):
        return "auto_reply"
    if precedence in _BULK_PRECEDENCE or _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return "bulk"
    if return_path == "<>":
        return "bounce"  # null reverse path and no other sign: a DSN from a terse MTA; no one to answer
    return None


def _first_msgid(value: str) -> str | None:
    found = _MSGID_RE.findall(value)
    return found[0] if found else (value.strip() or None)


def bounce_report(msg: EmailMessage) -> BounceReport:
    """Failed recipients, status and the returned mail's Message-ID, as far as the bounce tells."""
    recipients: list[str] = []
    status = diagnostic = original = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            # The stdlib parses the status body into header blocks: per-message, then per-recipient.
            blocks = part.get_payload()
            for block in blocks[1:] if isinstance(blocks, list) else []:
                if not isinstance(block, Message):
                    continue
                action = _header(block, "Action").lower()
                if action and action not in {"failed", "delayed"}:
                    continue
                final = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
                if final:
                    recipients.append(final.partition(";")[2].strip() or final)
                status = status or _header(block, "Status") or None
                diagnostic = diagnostic or _header(block, "Diagnostic-Code") or None
        elif ctype == "message/rfc822" and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = _first_msgid(_header(inner[0], "Message-ID"))
        elif ctype == "text/rfc822-headers" and original is None:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = BytesHeaderParser(policy=default_policy).parsebytes(payload)
                original = _first_msgid(_header(headers, "Message-ID"))
    if not recipients:
        recipients = [a.strip() for a in _header(msg, "X-Failed-Recipients").split(",") if a.strip()]
    return BounceReport(tuple(dict.fromkeys(r.lower() for r in recipients)), status, diagnostic, original)
