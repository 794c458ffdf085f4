"""The relational schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Durable state lives here: conversations and their transcript, tickets, knowledge articles.
Redis holds only streams, dedupe markers and caches that can be rebuilt or expire.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.db.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

articles = Table(
    "articles",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("questions", JSON, nullable=False),
    Column("answer", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("language", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(300), primary_key=True),  # "<channel>:<channel's thread key>"
    Column("channel", String(32), nullable=False),
    Column("conversation_key", String(256), nullable=False),
    Column("customer_external_id", String(256), nullable=False),
    Column("customer_name", String(256)),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),  # deterministic: redelivery hits the same row
    Column("conversation_id", String(300), ForeignKey("conversations.id"), nullable=False),
    Column("direction", String(8), nullable=False),  # in | out
    Column("author", String(16), nullable=False),  # customer | bot | agent | system
    Column("channel", String(32), nullable=False),
    Column("external_id", String(256)),
    Column("text", Text, nullable=False),
    Column("attachments", JSON, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # ticketing.sentiment scores of customer messages; SQL NULL (not JSON null) while unscored, so
    # "IS NULL" finds the messages still to score
    Column("sentiment", JSON(none_as_null=True)),
    Index("ix_messages_conversation_created", "conversation_id", "created_at"),
    Index("ix_messages_created_at", "created_at"),
    Index("ix_messages_channel_external_id", "channel", "external_id"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(300), ForeignKey("conversations.id"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    # Equal to conversation_id while the ticket is open, NULL after: a portable "one open ticket per
    # conversation" constraint (partial unique indexes differ between SQLite and PostgreSQL).
    Column("open_key", String(300)),
    Column("details", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("priority", Integer, nullable=False, server_default="2"),  # 0 = P0 (most urgent) .. 3
    Column("priority_reasons", JSON, nullable=False, server_default="[]"),
    Column("skills", JSON, nullable=False, server_default="[]"),
    Column("tier", String(16), nullable=False, server_default="normal"),
    Column("channel", String(32)),
    Column("assignee_id", String(64)),
    # SLA due times are data: a scheduler scans them, so timers survive restarts.
    Column("first_response_due", UtcDateTime()),
    Column("next_response_due", UtcDateTime()),
    Column("resolution_due", UtcDateTime()),
    Column("first_responded_at", UtcDateTime()),
    Column("resolved_at", UtcDateTime()),
    Column("reopened_count", Integer, nullable=False, server_default="0"),
    Column("csat", Integer),
    Column("csat_comment", Text),
    # The earliest instant an SLA warning or breach can fire; the scheduler scans this index.
    Column("sla_next_check_at", UtcDateTime()),
    Column("sla_fired", JSON, nullable=False, server_default="[]"),  # e.g. "first_response:warning"
    Column("intent", String(64)),
    Column("language", String(8), nullable=False, server_default="zh"),
    Column("assigned_at", UtcDateTime()),
    Column("last_customer_message_at", UtcDateTime()),
    Column("csat_requested_at", UtcDateTime()),
    Column("csat_at", UtcDateTime()),
    UniqueConstraint("open_key", name="uq_tickets_open_key"),
    Index("ix_tickets_conversation", "conversation_id"),
    Index("ix_tickets_assignee", "assignee_id"),
    Index("ix_tickets_sla_next_check_at", "sla_next_check_at"),
    Index("ix_tickets_status", "status"),
    Index("ix_tickets_created_at", "created_at"),
    Index("ix_tickets_resolved_at", "resolved_at"),
)

ticket_events = Table(
    "ticket_events",
    metadata,
    # Append-only audit log: every change to a ticket, who made it and when. Never updated.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_ticket_events_ticket", "ticket_id", "id"),
    Index("ix_ticket_events_actor_kind_at", "actor", "kind", "at"),
    Index("ix_ticket_events_kind_at", "kind", "at"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("skills", JSON, nullable=False),
    Column("max_concurrent", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("role", String(16), nullable=False, server_default="agent"),  # agent | supervisor | admin
    Column("team", String(64), nullable=False, server_default="default"),
    Column("token_hash", String(64)),  # sha256 of the API token; the token itself is never stored
    Column("active", Boolean, nullable=False, server_default="1"),
    # --- console sessions ---
    Column("password_hash", String(256)),  # scrypt$n$r$p$salt$hash (gateway.passwords); NULL: token only
    # --- end console sessions ---
    UniqueConstraint("token_hash", name="uq_agents_token_hash"),
)

# A customer profile; identities on channels point at it. An identity is linked to an existing
# profile only on proof (same order number, verified phone/email, an agent's explicit merge).
customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256)),
    Column("tier", String(16), nullable=False, server_default="normal"),  # normal | vip
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # Set when an agent merged this profile into another: old links to it still resolve.
    Column("merged_into", Integer),
    Index("ix_customers_merged_into", "merged_into"),
)

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("external_id", String(256), primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("proven_by", String(128), nullable=False),  # order:<number> | agent:<id> | merge:<id> | staff
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_customer_identities_customer", "customer_id"),
)

# Append-only audit of identity links (ticketing.identity_links): who linked, unlinked or merged what,
# when and why, and the link suggestions order proofs raised but did not apply (conflicts).
customer_link_events = Table(
    "customer_link_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),  # "system" for order proofs, else the agent id
    Column("kind", String(16), nullable=False),  # linked | unlinked | merged | suggested
    Column("customer_id", Integer),  # the profile acted on (the surviving one of a merge)
    Column("other_customer_id", Integer),  # the profile merged away / the other side of a suggestion
    Column("channel", String(32)),  # the identity concerned
    Column("external_id", String(256)),
    Column("other_channel", String(32)),  # the identity it was linked to (e.g. the order's owner)
    Column("other_external_id", String(256)),
    Column("proof", String(128)),
    Column("reason", Text),
    Column("data", JSON, nullable=False),
    Column("dedupe_key", String(64)),  # one suggestion per (identity, order), however often it is repeated
    UniqueConstraint("dedupe_key", name="uq_customer_link_events_dedupe_key"),
    Index("ix_customer_link_events_customer", "customer_id"),
    Index("ix_customer_link_events_other_customer", "other_customer_id"),
    Index("ix_customer_link_events_identity", "channel", "external_id"),
    Index("ix_customer_link_events_other_identity", "other_channel", "other_external_id"),
)

# The first identity that mentioned an order without a known owner (demo orders, order systems that do
# not say who bought): later writers with the same order number are linked to its profile.
order_claims = Table(
    "order_claims",
    metadata,
    Column("order_number", String(32), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("external_id", String(256), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_order_claims_identity", "channel", "external_id"),
)

canned_responses = Table(
    "canned_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(128), nullable=False),
    Column("text", Text, nullable=False),  # may contain {customer_name}, {order_number}, {agent_name}, {ticket_id}
    Column("language", String(8), nullable=False, server_default="zh"),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Runtime switches an admin flips without a restart (e.g. the 双11 peak SLA profile).
app_settings = Table(
    "app_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_number", String(32), primary_key=True),
    Column("channel", String(32)),
    Column("customer_external_id", String(256)),
    Column("status", String(32), nullable=False),  # pending | shipped | in_transit | delivered | cancelled
    Column("carrier", String(64)),
    Column("tracking_number", String(64)),
    Column("items", JSON, nullable=False),
    Column("detail", Text, nullable=False),  # latest logistics line, Chinese
    Column("detail_en", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_orders_customer", "channel", "customer_external_id"),  # a customer's orders (customer view)
)
