"""What the bot should read of an email: HTML to text, quoted history and signatures removed.

Pure string functions, no I/O, tested table-driven (``tests/connectors/test_email_text.py``). The full
body is kept in the message's ``raw`` by the connector; only the bot's view is trimmed here.

Quoted history is recognised by the markers mail clients really write, in English and Chinese:
attribution lines ("On … wrote:", "在 … 写道：", Gmail's "… 于2024年1月2日周二 10:00写道："), separators
("-----Original Message-----", QQ/Foxmail's "------------------ 原始邮件 ------------------", Outlook's
underscore rule), Outlook's "From:/Sent:" ("发件人：/发送时间：") header blocks and ``>`` lines.
Forwarded mail keeps everything after the forward marker: that content is what the customer sends us.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

MAX_ATTRIBUTION_CHARS: Final = 300  # an attribution line is short; a long line ending in "wrote:" is prose
MAX_SIGNATURE_LINES: Final = 15  # a "-- " followed by more than this is probably not a signature

_SPACE_RE: Final = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_HTML_SPACE_RE: Final = re.compile(r"\s+")  # in HTML a newline is just a space
_SEPARATOR_RE: Final = re.compile(
    r"^[-_=*\s]*(original message|original|原始邮件|原始郵件|原邮件|回复的原邮件)[-_=*\s]*$", re.I)
_UNDERSCORE_RULE_RE: Final = re.compile(r"^_{8,}\s*$")
_HEADER_FROM_RE: Final = re.compile(r"^\*?(from|发件人|發件人|寄件者|寄件人)\*?\s*[:：]", re.I)
_HEADER_NEXT_RE: Final = re.compile(
    r"^\*?(sent|date|to|cc|subject|发送时间|發送時間|时间|日期|收件人|抄送|主题|主旨|寄件日期|收件者)\*?\s*[:：]", re.I)
_ON_WROTE_RE: Final = re.compile(r"^(on\s|在).*(wrote|写道|寫道)\s*[:：]?\s*$", re.I)
_DATED_WROTE_RE: Final = re.compile(r"^.*(\d|@).*(wrote|写道|寫道)\s*[:：]\s*$", re.I)
_ON_START_RE: Final = re.compile(r"^(on\s|在\s?\d)", re.I)
_FORWARD_RE: Final = re.compile(
    r"^[-_=*\s]*(forwarded message|begin forwarded message|转发的邮件|轉寄的郵件|转发邮件)[-_=*\s:：]*$", re.I)
_SIG_DASHES_RE: Final = re.compile(r"^--\s?$")
_MOBILE_SIG_RE: Final = re.compile(
    r"^(sent from my .{1,40}|sent from (mail|outlook|yahoo mail|gmail)\b.{0,40}|get outlook for .{1,30}"
    r"|发自我的.{1,20}|来自我的.{1,20}|从我的.{1,20}发送|"
    r"(发自|来自)\s?.{0,12}(邮箱|邮件|mail|iphone|ipad|android|手机|客户端).{0,12})$",
    re.I,
)
_REPLY_PREFIX_RE: Final = re.compile(
    r"^\s*(re|fw|fwd|aw|wg|sv|antw|回复|回覆|答复|转发|轉寄|转寄)\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*", re.I)
_FORWARD_PREFIX_RE: Final = re.compile(r"^\s*(fw|fwd|wg|转发|轉寄|转寄)\s*[:：]", re.I)
_TICKET_RE: Final = re.compile(r"\[#(\d{1,12})\]")


# ---- subjects -------------------------------------------------------------------------------------

def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes (``Re: 回复: Fwd:`` …) and ticket tags."""
    text = _SPACE_RE.sub(" ", subject).strip()
    while True:
        stripped = _REPLY_PREFIX_RE.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return _SPACE_RE.sub(" ", _TICKET_RE.sub("", text)).strip()


def is_forward(subject: str) -> bool:
    """True when the subject says the customer forwarded a mail to us (keep its content)."""
    return _FORWARD_PREFIX_RE.match(subject) is not None


def is_reply(subject: str) -> bool:
    return _REPLY_PREFIX_RE.match(subject) is not None and not is_forward(subject)


def ticket_number(subject: str) -> int | None:
    """The ticket number of a ``[#123]`` tag in the subject (the last one, as clients prepend tags)."""
    found = _TICKET_RE.findall(subject)
    return int(found[-1]) if found else None


def reply_subject(original: str, ticket_id: int | None = None) -> str:
    """``Re: <original>``, with a ``[#id]`` tag when a ticket exists (threads replies by subject)."""
    base = clean_subject(original) or "您的咨询 / Your enquiry"
    tag = f" [#{ticket_id}]" if ticket_id is not None else ""
    return f"Re: {base}{tag}"


# ---- HTML -> text ---------------------------------------------------------------------------------

_SKIP: Final = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCK: Final = frozenset({
    "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
    "blockquote", "hr", "section", "article", "header", "footer", "address", "dl", "dt", "dd", "center",
})
_PARAGRAPH: Final = frozenset({"p", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote",
                               "hr"})  # blocks set off by a blank line; the others just start a new line
# Outlook (desktop and web) puts its quoted reply/forward header in these; what follows is history.
_OUTLOOK_QUOTE_IDS: Final = frozenset({"divrplyfwdmsg", "appendonsend"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._pre = 0
        self._quote = 0

    def _flush(self, blank: bool = False) -> None:
        text = "".join(self._line)
        self._line = []
        text = text.rstrip() if self._pre else _HTML_SPACE_RE.sub(" ", text).strip()
        if text:
            self.lines.append("> " * self._quote + text)
        if blank and self.lines and self.lines[-1]:
            self.lines.append("")

    def _br(self) -> None:
        if "".join(self._line).strip():
            self._flush()
        elif self.lines and self.lines[-1]:
            self.lines.append("")  # <br><br>: a blank line

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if tag == "br":
            self._br()
        elif tag in _BLOCK:
            self._flush(blank=tag in _PARAGRAPH)
        if tag == "pre":
            self._pre += 1
        elif tag == "blockquote":
            self._quote += 1
        elif tag == "li":
            self._line.append("- ")
        element_id = next((v for k, v in attrs if k == "id" and v), "")
        if element_id.lower() in _OUTLOOK_QUOTE_IDS and not self._quote:
            self.lines.append("-----Original Message-----")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._br()
        elif tag in _BLOCK:  # <hr/>
            self._flush(blank=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if tag in _BLOCK:
            self._flush(blank=tag in _PARAGRAPH)
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
        elif tag in {"td", "th"}:
            self._line.append(" ")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            # Preformatted text keeps its line breaks: each one becomes a line of ours.
            head, *rest = data.split("\n")
            self._line.append(head)
            for part in rest:
                self._flush()
                self._line.append(part)
        else:
            self._line.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail body: blocks become lines, ``<blockquote>`` lines get ``> ``."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's rare internal failures on broken markup
        pass
    parser._flush()
    return _tidy(parser.lines)


# ---- quoted history and signatures ----------------------------------------------------------------

def _tidy(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue  # one blank line at most, none at the start
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _norm(line: str) -> str:
    # QQ Mail's text part carries a literal "&nbsp;" in its "原始邮件" separator.
    return _SPACE_RE.sub(" ", line.replace("&nbsp;", " ")).strip()


def _is_attribution(lines: list[str], i: int) -> bool:
    line = _norm(lines[i])
    if not line or len(line) > MAX_ATTRIBUTION_CHARS:
        return False
    if _ON_WROTE_RE.match(line) or _DATED_WROTE_RE.match(line):
        return True
    # Gmail and Apple Mail wrap long attributions: "On Tue, 2 Jan 2024 at 10:00, Wang Wei <w@x>\nwrote:"
    if _ON_START_RE.match(line) and i + 1 < len(lines):
        joined = f"{line} {_norm(lines[i + 1])}"
        return len(joined) <= MAX_ATTRIBUTION_CHARS and _ON_WROTE_RE.match(joined) is not None
    return False


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM_RE.match(_norm(lines[i])):
        return False
    following = [_norm(x) for x in lines[i + 1:i + 5] if _norm(x)]
    return any(_HEADER_NEXT_RE.match(x) for x in following[:3])


def _history_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history, or None. Stops at a forward marker."""
    for i, raw in enumerate(lines):
        line = _norm(raw)
        if _FORWARD_RE.match(line):
            return None  # what follows is forwarded content the customer wants us to read
        if _SEPARATOR_RE.match(line):
            return i
        if _UNDERSCORE_RULE_RE.match(line) and any(_HEADER_FROM_RE.match(_norm(x)) for x in lines[i + 1:i + 4]):
            return i
        if _is_header_block(lines, i) or _is_attribution(lines, i):
            return i
    return None


def _signature_start(lines: list[str]) -> int | None:
    """Index where the trailing signature begins, or None."""
    for i in range(len(lines) - 1, -1, -1):
        if _SIG_DASHES_RE.match(lines[i].rstrip("\r\n")) and len(lines) - i - 1 <= MAX_SIGNATURE_LINES:
            return i
    for i, raw in enumerate(lines):
        line = _norm(raw)
        if line and _MOBILE_SIG_RE.match(line) and sum(1 for x in lines[i + 1:] if x.strip()) <= 3:
            return i
    return None


def strip_reply(text: str, *, forwarded: bool = False) -> str:
    """The customer's own new words: quoted history, ``>`` lines and the signature removed.

    ``forwarded``: the mail is a forward, whose quoted content is the point, so only the signature is
    removed. Returns ``""`` when nothing of the customer's own remains (the caller decides a fallback).
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not forwarded:
        cut = _history_start(lines)
        if cut is not None:
            lines = lines[:cut]
        lines = [line for line in lines if not line.lstrip().startswith(">")]
    sig = _signature_start(lines)
    if sig is not None:
        lines = lines[:sig]
    return _tidy([line.replace("\u00a0", " ") for line in lines])
