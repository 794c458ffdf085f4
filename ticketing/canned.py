"""Canned responses: reply templates staff write once and agents send with the customer's details.

Templates are written by staff, so rendering is a small placeholder substitution, never ``str.format``
(which would let a template reach attributes, e.g. ``{x.__class__}``). Only the placeholders in
``VARIABLES`` exist; ``{{`` and ``}}`` are literal braces. A placeholder with no value raises
``MissingVariables`` so the agent UI can ask for it, except the customer's name, which falls back to
the usual shop address ("亲" / "there").
"""

from __future__ import annotations

import builtins
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.orders import order_numbers_in
from gateway.db.schema import canned_responses

VARIABLES = frozenset({"customer_name", "order_number", "agent_name", "ticket_id"})
LANGUAGES = ("zh", "en")
MAX_TITLE, MAX_TEXT, MAX_CREATED_BY = 128, 4000, 64
FALLBACKS: dict[str, dict[str, str]] = {"zh": {"customer_name": "亲"}, "en": {"customer_name": "there"}}


class CannedError(ValueError):
    """An invalid template or canned response (answered 400 by the HTTP layer)."""


class MissingVariables(CannedError):
    """The template needs values nobody supplied (answered 422: the agent UI asks for them)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(f"缺少变量 / missing variables: {', '.join(self.names)}")


@dataclass(frozen=True, slots=True)
class CannedResponse:
    """One row of ``canned_responses``."""

    id: int
    title: str
    text: str
    language: str
    created_by: str
    created_at: datetime
    updated_at: datetime


# --- templates (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Var:
    name: str


# "{{" / "}}" literal braces; "{name}" a placeholder (anything inside is checked against VARIABLES);
# "｛name｝" typed with a Chinese IME counts only for a known name (full-width braces are ordinary
# punctuation otherwise); any other brace is unbalanced.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|｛\s*([a-z_]+)\s*｝|[{}]")


def _parse(template: str) -> list[str | _Var]:
    parts: list[str | _Var] = []
    unknown: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(template):
        parts.append(template[pos:m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif m.group(1) is not None:
            name = m.group(1).strip()
            if name in VARIABLES:
                parts.append(_Var(name))
            elif token not in unknown:
                unknown.append(token)
        elif m.group(2) is not None:
            parts.append(_Var(m.group(2)) if m.group(2) in VARIABLES else token)
        else:
            raise CannedError(f"第{m.start() + 1}个字符处花括号不配对（字面花括号请写 {{{{ 或 }}}}）/ unbalanced "
                              f"brace at character {m.start() + 1} (write {{{{ or }}}} for a literal brace)")
    parts.append(template[pos:])
    if unknown:
        allowed = ", ".join(f"{{{v}}}" for v in sorted(VARIABLES))
        raise CannedError(f"未知变量 / unknown placeholders: {', '.join(unknown)}; 可用 / allowed: {allowed}")
    return parts


def placeholders(template: str) -> set[str]:
    """The variable names a template uses (raises ``CannedError`` for an invalid template)."""
    return {p.name for p in _parse(template) if isinstance(p, _Var)}


def render(template: str, variables: Mapping[str, str | None], *, language: str = "zh") -> str:
    """Fill the placeholders. Extra keys in ``variables`` are ignored; blank values count as missing.
    Values are inserted verbatim and never re-scanned, so a customer name with braces stays text."""
    parts = _parse(template)
    fallbacks = FALLBACKS.get(language, FALLBACKS["zh"])
    values: dict[str, str] = {}
    missing: list[str] = []
    for part in parts:
        if isinstance(part, _Var) and part.name not in values:
            value = (variables.get(part.name) or "").strip() or fallbacks.get(part.name)
            if value is None:
                if part.name not in missing:
                    missing.append(part.name)
            else:
                values[part.name] = value
    if missing:
        raise MissingVariables(missing)
    return "".join(values[p.name] if isinstance(p, _Var) else p for p in parts)


def order_number_from(texts: Sequence[str]) -> str | None:
    """The most recent order number in the customer's messages (oldest first), found the way the bot
    finds them (``bot.orders.order_numbers_in``)."""
    for text in reversed(texts):
        found = order_numbers_in(text, limit=len(text))
        if found:
            # The pattern's \d also matches full-width digits ("２０２４…" typed with a Chinese IME).
            return "".join(str(unicodedata.digit(c)) for c in found[-1])
    return None


def _valid(title: str, text: str, language: str) -> tuple[str, str, str]:
    title = title.strip() if isinstance(title, str) else ""
    text = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(title) <= MAX_TITLE:
        raise CannedError(f"标题须为1-{MAX_TITLE}个字符 / title must be 1-{MAX_TITLE} characters")
    if not 1 <= len(text) <= MAX_TEXT:
        raise CannedError(f"内容须为1-{MAX_TEXT}个字符 / text must be 1-{MAX_TEXT} characters")
    if language not in LANGUAGES:
        raise CannedError("语言须为 zh 或 en / language must be zh or en")
    _parse(text)
    return title, text, language


# --- store -----------------------------------------------------------------------------------------

DEMO: tuple[tuple[str, str, str], ...] = (
    ("问候", "{customer_name}您好，我是客服{agent_name}，很高兴为您服务～请问有什么可以帮您？", "zh"),
    ("物流查询", "您的订单 {order_number} 我们正在为您查询物流信息，请稍等片刻，查到后第一时间回复您。", "zh"),
    ("催发货", "已为您的订单 {order_number} 联系仓库加急发货，发货后物流信息会同步更新，请留意。", "zh"),
    ("退款说明", "{customer_name}，退款审核通过后，款项会在1-3个工作日内原路退回您的支付账户，请注意查收。", "zh"),
    ("致歉", "非常抱歉给您带来不便，{customer_name}，我们会尽快为您处理，感谢您的理解和耐心。", "zh"),
    ("结束语", "请问还有其他可以帮您的吗？如果没有的话，感谢您的耐心，祝您生活愉快～", "zh"),
    ("Greeting", "Hi {customer_name}, this is {agent_name} from customer service. How can I help you today?", "en"),
    ("Shipping status", "We're checking the shipping status of your order {order_number} and will get back "
                        "to you shortly.", "en"),
    ("Refund policy", "Once your refund is approved, the money goes back to your original payment method "
                      "within 1-3 business days.", "en"),
    ("Apology", "We're sorry for the trouble. We're on it and will sort this out as quickly as we can.", "en"),
    ("Closing", "Is there anything else I can help you with? Thanks for your patience, and have a great day!",
     "en"),
)


def _record(row: Any) -> CannedResponse:
    m = row._mapping
    return CannedResponse(id=m["id"], title=m["title"], text=m["text"], language=m["language"],
                          created_by=m["created_by"], created_at=m["created_at"], updated_at=m["updated_at"])


class CannedStore:
    """The canned responses table."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    async def create(self, title: str, text: str, language: str, created_by: str) -> CannedResponse:
        """Validate (lengths, language, template syntax) and insert."""
        title, text, language = _valid(title, text, language)
        if not isinstance(created_by, str) or not 1 <= len(created_by) <= MAX_CREATED_BY:
            raise CannedError(f"created_by must be 1-{MAX_CREATED_BY} characters")
        now = self.clock()
        async with self.engine.begin() as conn:
            result = await conn.execute(canned_responses.insert().values(
                title=title, text=text, language=language, created_by=created_by, created_at=now, updated_at=now))
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            row = (await conn.execute(select(canned_responses).where(canned_responses.c.id == new_id))).one()
        return _record(row)

    async def update(self, canned_id: int, *, title: str | None = None, text: str | None = None,
                     language: str | None = None) -> CannedResponse | None:
        """Change the given fields (validated like ``create``); None when there is no such response."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(canned_responses).where(canned_responses.c.id == canned_id))).first()
            if row is None:
                return None
            current = _record(row)
            new_title, new_text, new_language = _valid(
                current.title if title is None else title, current.text if text is None else text,
                current.language if language is None else language)
            await conn.execute(update(canned_responses).where(canned_responses.c.id == canned_id).values(
                title=new_title, text=new_text, language=new_language, updated_at=self.clock()))
            row = (await conn.execute(select(canned_responses).where(canned_responses.c.id == canned_id))).one()
        return _record(row)

    async def delete(self, canned_id: int) -> bool:
        """Remove a response; False when there was none."""
        async with self.engine.begin() as conn:
            result = await conn.execute(canned_responses.delete().where(canned_responses.c.id == canned_id))
        return bool(result.rowcount)

    async def get(self, canned_id: int) -> CannedResponse | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(canned_responses).where(canned_responses.c.id == canned_id))).first()
        return _record(row) if row is not None else None

    async def list(self, language: str | None = None, query: str | None = None) -> builtins.list[CannedResponse]:
        """All responses ordered by language and title, optionally of one language and/or containing
        ``query`` in the title or text (case-insensitive)."""
        stmt = select(canned_responses).order_by(canned_responses.c.language, canned_responses.c.title,
                                                 canned_responses.c.id)
        if language:
            stmt = stmt.where(canned_responses.c.language == language)
        async with self.engine.connect() as conn:
            items = [_record(r) for r in await conn.execute(stmt)]
        needle = (query or "").strip().casefold()
        # Filtered here, not with SQL lower()/ILIKE: SQLite's lower() folds ASCII only, so the two
        # databases would disagree on "É"; the table holds tens to hundreds of rows.
        if needle:
            items = [c for c in items if needle in c.title.casefold() or needle in c.text.casefold()]
        return items

    async def seed_demo(self) -> int:
        """Insert the demo templates into an empty table (demo only); returns how many were inserted."""
        now = self.clock()
        async with self.engine.begin() as conn:
            if await conn.scalar(select(func.count()).select_from(canned_responses)):
                return 0
            await conn.execute(canned_responses.insert(), [
                {"title": t, "text": x, "language": lang, "created_by": "demo", "created_at": now, "updated_at": now}
                for t, x, lang in DEMO])
        return len(DEMO)
