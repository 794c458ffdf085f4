"""Email connector: RFC 5322 mail in (the IMAP poller hands us raw bytes), SMTP out via aiosmtplib.

Identity and dedupe: the customer is the From address (lower-cased) with its display name; the
external message id is the Message-ID, or ``sha256:<digest of the raw bytes>`` when a mail has none.

Threading (spec §4.1). Every email conversation's key is a *token*: 26 characters of base32 from an
HMAC over the first mail's id with a secret, so nobody can guess another customer's token. Our replies
carry it twice: ``Reply-To: <local>+<token>@<domain>`` and ``Message-ID: <<token>.<digest>@<domain>>``.
``parse`` threads a mail, in order, by (1) a plus-address with a token in To/Cc/Delivered-To, (2) one
of our Message-IDs in In-Reply-To/References, else (5) a new token. Steps (3) a ``[#123]`` ticket
number in the Subject and (4) References to the customer's own earlier mails need the database; the
gateway (``gateway/email_poller.py``) does them with the hints in ``ParsedMail``.

Machine mail (auto-replies, bounces, lists, our own mail looping back; ``connectors/email_auto.py``)
is returned with ``automated`` set: stored, never answered. A bounce of one of our replies threads
into its conversation through the returned mail's Message-ID, and its text says who could not be
reached, so the agent sees it in place.

Sending needs the thread the reply belongs to (subject, the customer's last Message-ID and
References). The connector never touches Redis itself: a ``ThreadContextReader`` is injected (the
gateway's ``gateway/email_threads.py``, written by the poller at ingest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from typing import Any, ClassVar, Final, Literal, Protocol

import aiosmtplib

from connectors.base import PayloadError, VerificationError, WebhookRequest, WebhookResponse
from connectors.email_auto import bounce_report, classify, is_dsn
from connectors.email_mime import addresses, attachments, body_text, header, msg_ids, sent_date
from connectors.email_text import clean_subject, is_forward, is_reply, reply_subject, strip_reply
from connectors.email_text import ticket_number as subject_ticket_number
from gateway.models import Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage

TOKEN_LEN: Final = 26  # base32 characters: 130 bits
_TOKEN_RE: Final = re.compile(rf"[a-z2-7]{{{TOKEN_LEN}}}")
_MAX_TEXT: Final = 20_000
_MAX_RAW_BODY: Final = 100_000
_MAX_HEADERS: Final = 200
_TRANSIENT_RETRY: Final = 30.0  # SMTP 4xx, disconnects, timeouts: the server asked us to come back
_CONFIG_RETRY: Final = 300.0  # authentication refused: an operator must fix the settings
_THREAD_HEADERS: Final = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
_LABELS: Final = {"auto_reply": "[自动回复 / auto-reply]", "bulk": "[群发邮件 / bulk mail]",
                  "loop": "[本店发出的邮件 / our own mail]", "bounce": "[退信 / bounce]"}

ThreadedBy = Literal["address", "our_message_id", "new"]
SmtpTls = Literal["starttls", "tls", "none"]


@dataclass(frozen=True, slots=True)
class ThreadContext:
    """What a reply needs to thread under the customer's last mail (stored by the gateway at ingest)."""

    subject: str
    parent_message_id: str | None
    parent_references: tuple[str, ...] = ()  # the parent's References, or its In-Reply-To if none
    reply_to: str | None = None  # the customer's Reply-To address, when it differs from From

    def references(self) -> tuple[str, ...]:
        """RFC 5322 §3.6.4: the parent's References (or In-Reply-To) followed by its Message-ID."""
        ids = (*self.parent_references, *((self.parent_message_id,) if self.parent_message_id else ()))
        return tuple(dict.fromkeys(ids))

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "parent_message_id": self.parent_message_id,
                "parent_references": list(self.parent_references), "reply_to": self.reply_to}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThreadContext:
        return cls(subject=str(data.get("subject") or ""), parent_message_id=data.get("parent_message_id"),
                   parent_references=tuple(data.get("parent_references") or ()), reply_to=data.get("reply_to"))


class ThreadContextReader(Protocol):
    """Where ``send`` finds a conversation's thread (implemented over Redis in the gateway)."""

    async def read(self, conversation_key: str, inbound_message_id: str | None) -> ThreadContext | None:
        """The context of the inbound mail answered, else the conversation's latest; None if unknown."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: SmtpTls = "starttls"
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """A parsed mail plus what the gateway needs for the threading steps that need the database."""

    message: InboundMessage
    threaded_by: ThreadedBy
    ticket_number: int | None  # a ``[#123]`` tag in the Subject
    references: tuple[str, ...]  # In-Reply-To and References ids, newest first
    context: ThreadContext  # what a reply to this mail needs


class EmailConnector:
    """Email over IMAP (via the gateway's poller) and SMTP (see the module docstring)."""

    channel: ClassVar[Channel] = Channel.EMAIL

    def __init__(self, *, address: str, token_secret: str, smtp: SmtpSettings,
                 threads: ThreadContextReader | None = None) -> None:
        name, addr = parseaddr(address)
        local, _, domain = addr.strip().lower().rpartition("@")
        if not local or not domain or "." not in domain:
            raise ValueError(f"not an email address: {address!r}")
        if not token_secret:
            raise ValueError("token_secret must not be empty (it makes conversation tokens unguessable)")
        self.address = f"{local}@{domain}"
        self.local, self.domain = local.split("+", 1)[0], domain
        self.display_name = name or None
        self._secret = token_secret.encode()
        self._smtp = smtp
        self._threads = threads
        self._our_id_re = re.compile(rf"^<?({_TOKEN_RE.pattern})\.[a-z0-9]{{8,64}}@{re.escape(domain)}>?$", re.I)

    # ---- tokens and our ids ----------------------------------------------------------------------

    def new_token(self, seed: str) -> str:
        """The conversation token a new thread started by the mail ``seed`` (its external id) gets."""
        digest = hmac.new(self._secret, b"conv\x1f" + seed.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:TOKEN_LEN]

    def reply_address(self, token: str) -> str:
        return f"{self.local}+{token}@{self.domain}"

    def message_id(self, token: str, outbound_id: str) -> str:
        """Our Message-ID for one reply: deterministic (a resend carries the same id) and carrying the
        conversation token, so a reply to it threads without any lookup."""
        digest = hashlib.sha256(outbound_id.encode()).hexdigest()[:20]
        return f"<{token}.{digest}@{self.domain}>"

    def token_of_message_id(self, message_id: str) -> str | None:
        match = self._our_id_re.match(message_id.strip())
        return match.group(1).lower() if match else None

    def _token_of_address(self, addr: str) -> str | None:
        local, _, domain = addr.lower().rpartition("@")
        if domain != self.domain or "+" not in local:
            return None
        tag = local.split("+", 1)[1]
        return tag if _TOKEN_RE.fullmatch(tag) else None

    # ---- inbound ---------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        raise VerificationError("email arrives by IMAP, not by webhook")

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        return WebhookResponse(200)

    def parse(self, body: bytes) -> list[InboundMessage]:
        """One raw RFC 5322 mail -> one message (``parse_mail`` gives the threading hints too)."""
        return [self.parse_mail(body).message]

    def parse_mail(self, raw: bytes, *, source: str | None = None, now: datetime | None = None) -> ParsedMail:
        """Parse one mail. ``source`` locates it for attachment refs (``imap:<uidvalidity>:<uid>``);
        ``now`` stands in for a missing or broken Date header. Raises only ``PayloadError``."""
        if not raw.strip():
            raise PayloadError("empty mail")
        try:
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(msg, EmailMessage)
            return self._parse(msg, raw, source, now or datetime.now(UTC))
        except PayloadError:
            raise
        except Exception as exc:  # the email package's rare failures on hostile input must not be 500s
            raise PayloadError(f"unparseable mail: {type(exc).__name__}: {exc}") from exc

    def _parse(self, msg: EmailMessage, raw: bytes, source: str | None, now: datetime) -> ParsedMail:
        senders = addresses(msg, "From") or addresses(msg, "Sender")
        name, sender = senders[0] if senders else ("", "")
        sender = sender.strip().lower()
        if "@" not in sender and not is_dsn(msg) and not sender.startswith("mailer-daemon"):
            raise PayloadError("mail has no sender address (From)")
        message_id = header(msg, "Message-ID")
        ids = msg_ids(message_id)
        external_id = ids[0] if ids else message_id
        if not external_id or len(external_id) > 256:
            external_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        in_reply_to = msg_ids(header(msg, "In-Reply-To"))
        references = msg_ids(" ".join(str(v) for v in msg.get_all("References") or []))
        automated = classify(msg, sender=sender if "@" in sender else "", own_address=self.address,
                             is_our_message_id=lambda mid: self.token_of_message_id(mid) is not None)
        subject = header(msg, "Subject")
        body = body_text(msg)
        bounce = bounce_report(msg) if automated == "bounce" else None

        # Threading: a token address, then one of our Message-IDs (newest first), else a new thread.
        lookups = tuple(dict.fromkeys([*in_reply_to, *reversed(references)]))
        if bounce and bounce.original_message_id:
            lookups = (bounce.original_message_id, *lookups)
        token = next((t for h in _THREAD_HEADERS for _, a in addresses(msg, h)
                      if (t := self._token_of_address(a))), None)
        threaded_by: ThreadedBy = "address"
        if token is None:
            token = next((t for mid in lookups if (t := self.token_of_message_id(mid))), None)
            threaded_by = "our_message_id"
        if token is None:
            token, threaded_by = self.new_token(external_id), "new"

        if bounce is not None:
            text = bounce.summary()
        elif automated is not None:  # agents see at a glance why the bot stayed silent
            text = f"{_LABELS[automated]} {clean_subject(subject)}\n\n{strip_reply(body) or body}"
        else:
            text = strip_reply(body, forwarded=is_forward(subject)) or strip_reply(body, forwarded=True) or body
            if subject and (not text.strip() or not (in_reply_to or is_reply(subject))):
                # A first mail's subject is often the question itself ("订单 123 什么时候发货").
                text = f"{clean_subject(subject)}\n\n{text}".strip()
        reply_to = next((a.strip().lower() for _, a in addresses(msg, "Reply-To")), None)
        context = ThreadContext(
            subject=subject, parent_message_id=ids[0] if ids else None,
            parent_references=tuple(references or in_reply_to),
            reply_to=reply_to if reply_to and reply_to != sender else None,
        )
        raw_fields: dict[str, Any] = {
            "headers": [[k, str(v)[:2000]] for k, v in list(msg.items())[:_MAX_HEADERS]],
            "body": body[:_MAX_RAW_BODY],
        }
        if source:
            raw_fields["source"] = source
        if automated is not None:
            raw_fields["automated"] = automated  # the stored row keeps why it was not answered
        if bounce is not None:
            raw_fields["bounce"] = {"failed_recipients": list(bounce.failed_recipients), "status": bounce.status,
                                    "diagnostic": bounce.diagnostic,
                                    "original_message_id": bounce.original_message_id}
        message = InboundMessage.build(
            channel=Channel.EMAIL, external_message_id=external_id, conversation_key=token,
            customer=CustomerRef(channel=Channel.EMAIL, external_id=sender[:256] or "mailer-daemon",
                                 display_name=(name.strip() or None) and name.strip()[:256]),
            text=text.strip()[:_MAX_TEXT], sent_at=sent_date(msg, now),
            attachments=attachments(msg, source or f"mail:{external_id}"),
            raw=raw_fields, automated=automated,
        )
        return ParsedMail(message=message, threaded_by=threaded_by, ticket_number=subject_ticket_number(subject),
                          references=lookups, context=context)

    # ---- outbound --------------------------------------------------------------------------------

    def build_reply(self, message: OutboundMessage, context: ThreadContext | None) -> EmailMessage:
        """The MIME message for one reply: threading headers, RFC 3834 marks on automatic mail,
        plain text in UTF-8 quoted-printable (Chinese survives every relay)."""
        token = message.conversation_key
        ctx = context or ThreadContext(subject="", parent_message_id=None)
        mail = EmailMessage(policy=policy.SMTP)
        mail["From"] = Address(self.display_name or "", addr_spec=self.address)
        if ctx.reply_to:  # the customer asked for replies elsewhere (their Reply-To)
            mail["To"] = Address("", addr_spec=ctx.reply_to)
        else:
            mail["To"] = Address(message.recipient.display_name or "", addr_spec=message.recipient.external_id)
        mail["Reply-To"] = self.reply_address(token)
        ticket = message.metadata.get("ticket_id")
        mail["Subject"] = reply_subject(ctx.subject, ticket if isinstance(ticket, int) else None)
        mail["Date"] = format_datetime(message.created_at.astimezone(UTC))
        mail["Message-ID"] = self.message_id(token, message.message_id)
        if ctx.parent_message_id:
            mail["In-Reply-To"] = ctx.parent_message_id
        refs = ctx.references()
        if refs:
            mail["References"] = " ".join(refs)  # the policy folds long lines with CRLF + space
        if message.author in ("bot", "system"):
            # RFC 3834: automatic mail says so, and asks Exchange not to answer it with an out-of-office.
            mail["Auto-Submitted"] = "auto-replied" if message.author == "bot" else "auto-generated"
            mail["X-Auto-Response-Suppress"] = "All"
        text = message.text
        if message.quick_replies:  # mail has no buttons: numbered options, as on every button-less channel
            text += "\n\n" + "\n".join(f"{i}. {r.title}" for i, r in enumerate(message.quick_replies, 1))
        mail.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        return mail

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send one reply over SMTP; never raises for mail-side failures."""
        if not _TOKEN_RE.fullmatch(message.conversation_key):
            return DeliveryResult(ok=False, permanent=True,
                                  error=f"not an email conversation token: {message.conversation_key!r}")
        if "@" not in message.recipient.external_id:
            return DeliveryResult(ok=False, permanent=True,
                                  error=f"not an email address: {message.recipient.external_id!r}")
        try:
            context = (await self._threads.read(message.conversation_key, message.in_reply_to)
                       if self._threads is not None else None)
        except Exception as exc:  # the context store is down: the reply is intact, try again later
            return DeliveryResult(ok=False, retry_after=_TRANSIENT_RETRY, error=f"thread context: {exc}")
        try:
            mail = self.build_reply(message, context)
            recipient = str(mail["To"].addresses[0].addr_spec)
        except Exception as exc:  # e.g. an address the header registry refuses: resending cannot help
            return DeliveryResult(ok=False, permanent=True, error=f"cannot build the mail: {exc}")
        s = self._smtp
        try:
            await aiosmtplib.send(
                mail, sender=self.address, recipients=[recipient], hostname=s.host, port=s.port,
                username=s.username, password=s.password, use_tls=s.tls == "tls",
                start_tls=s.tls == "starttls", timeout=s.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return _failed(exc, permanent=all(c >= 500 for c in codes))
        except aiosmtplib.SMTPAuthenticationError as exc:
            return _failed(exc, retry_after=_CONFIG_RETRY)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in (530, 534, 535, 538):  # authentication required/refused: fix the settings
                return _failed(exc, retry_after=_CONFIG_RETRY)
            return _failed(exc, permanent=exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return _failed(exc)  # disconnects, timeouts, refused connections, TLS trouble: transient
        return DeliveryResult(ok=True, external_ids=(str(mail["Message-ID"]),))

    async def aclose(self) -> None:
        """Nothing to close: every send opens and closes its own SMTP connection."""


def _failed(exc: BaseException, *, permanent: bool = False, retry_after: float | None = None) -> DeliveryResult:
    return DeliveryResult(ok=False, permanent=permanent,
                          retry_after=None if permanent else (retry_after or _TRANSIENT_RETRY),
                          error=f"{type(exc).__name__}: {exc}")
