"""The wired-up parts of one running process, passed to routes and workers (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import Connectors
from gateway.config import Settings
from gateway.db.conversations import ConversationStore
from gateway.keys import Keys
from gateway.knowledge import KnowledgeService
from gateway.streams import StreamBus
from ticketing.agents import AgentDirectory
from ticketing.canned import CannedStore
from ticketing.customers import CustomerProfiles
from ticketing.dispatcher import Dispatcher
from ticketing.escalation import TicketStore
from ticketing.policy import PolicyStore
from ticketing.presence import PresenceBoard
from ticketing.service import TicketService


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    engine: AsyncEngine
    bus: StreamBus
    conversations: ConversationStore
    tickets: TicketStore
    kb: KnowledgeService
    connectors: Connectors
    clock: Callable[[], datetime]
    ticket_service: TicketService
    policies: PolicyStore
    profiles: CustomerProfiles
    agents: AgentDirectory
    presence: PresenceBoard
    dispatcher: Dispatcher
    canned: CannedStore
    bot: Any = None  # set by start_workers: the RetrievalBot or DialogueBot answering this process
