"""The knowledge base as one process sees it: database articles + the local faiss index, kept in sync.

Writers change the database first, update their own index, then append the article id to a Redis
change stream. Every other process follows that stream (blocking read, 1 s at most) and reloads the
changed article from the database, so an admin's edit reaches every worker within about a second and
no change is missed even if a process was busy: the stream, unlike pub/sub, is replayed from the last
id the process applied.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from gateway.db.articles import ArticleStore
from gateway.keys import Keys
from gateway.streams import last_entry_id, read_entries
from knowledge_index.article import Article, ArticleStatus
from knowledge_index.embedder import Embedder
from knowledge_index.retriever import Decision, Hit, Retriever

log = logging.getLogger(__name__)


class KnowledgeService:
    def __init__(
        self,
        store: ArticleStore,
        redis: aioredis.Redis,
        keys: Keys,
        embedder: Embedder,
        index_dir: Path,
        *,
        threshold: float | None = None,
    ) -> None:
        self.store = store
        self._redis = redis
        self._keys = keys
        self._embedder = embedder
        self._index_dir = index_dir
        self._threshold = threshold
        self._origin = uuid.uuid4().hex
        self._articles: dict[str, Article] = {}
        self._retriever: Retriever | None = None
        self._last_change = "0-0"

    @property
    def embedder(self) -> Embedder:
        """The sentence encoder, shared with sentiment scoring (one model in memory, not two)."""
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            raise RuntimeError("KnowledgeService.start() was not awaited")
        return self._retriever

    async def start(self) -> None:
        """Load published articles and the persisted index (rebuilt when stale)."""
        # Take the change-log position *before* reading the database, so a change made during the
        # load is replayed afterwards (replaying an already-applied change is harmless).
        self._last_change = await last_entry_id(self._redis, self._keys.kb_changes)
        published = await self.store.list_articles(ArticleStatus.PUBLISHED)
        self._articles = {a.id: a for a in published}
        self._retriever = await asyncio.to_thread(
            Retriever.load_or_build, self._index_dir, self._embedder, published, threshold=self._threshold
        )
        log.info("knowledge index ready: %d published articles", len(published))

    def article(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    async def search(self, text: str, k: int = 5) -> list[Hit]:
        return await asyncio.to_thread(self.retriever.search, text, k)

    def decide(self, hits: list[Hit]) -> Decision:
        return self.retriever.decide(hits)

    # --- writes (admin API, importer) ------------------------------------------------------------
    async def save_article(self, article: Article) -> Article:
        saved = await self.store.upsert(article)
        await self._apply(saved.id)
        await self._announce(saved.id)
        return saved

    async def import_articles(self, items: list[Article]) -> int:
        """Bulk load (e.g. ``huiliu kb import``): one index rebuild, one announcement per article."""
        await self.store.upsert_many(items)
        await self.start()
        for item in items:
            await self._announce(item.id)
        return len(items)

    async def set_status(self, article_id: str, status: ArticleStatus) -> Article | None:
        saved = await self.store.set_status(article_id, status)
        if saved is not None:
            await self._apply(article_id)
            await self._announce(article_id)
        return saved

    async def delete_article(self, article_id: str) -> bool:
        deleted = await self.store.delete(article_id)
        if deleted:
            await self._apply(article_id)
            await self._announce(article_id)
        return deleted

    async def _announce(self, article_id: str) -> None:
        # _last_change is deliberately not advanced here: another process's change may sit between
        # our last read and this entry; sync_once skips our own entries by origin instead.
        await self._redis.xadd(
            self._keys.kb_changes, {"id": article_id, "origin": self._origin}, maxlen=10_000, approximate=True
        )

    async def _apply(self, article_id: str) -> None:
        """Make the local index agree with the database for one article."""
        article = await self.store.get(article_id)
        if article is not None and article.status == ArticleStatus.PUBLISHED:
            self._articles[article_id] = article
            await asyncio.to_thread(self.retriever.upsert, article)
        else:
            self._articles.pop(article_id, None)
            await asyncio.to_thread(self.retriever.remove, article_id)

    async def follow(self, stop: asyncio.Event, block_ms: int = 1000) -> None:
        """Apply other processes' changes until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.sync_once(block_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("knowledge sync failed; retrying")
                await asyncio.sleep(1.0)

    async def sync_once(self, block_ms: int | None = None) -> int:
        entries = await read_entries(self._redis, self._keys.kb_changes, self._last_change, count=500,
                                     block_ms=block_ms)
        applied = 0
        for sid, fields in entries:
            if fields.get(b"origin", b"").decode() != self._origin:
                await self._apply(fields[b"id"].decode())
                applied += 1
            self._last_change = sid
        return applied

    async def persist(self) -> None:
        await asyncio.to_thread(self.retriever.save, self._index_dir)

