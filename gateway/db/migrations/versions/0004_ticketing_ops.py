"""ticketing operations: staff roles and API tokens, customer profiles and tiers, SLA scheduling
columns, per-message sentiment, canned responses, runtime settings (peak-season switch)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _ticket_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        # The earliest instant an SLA warning or breach can fire; the scheduler scans this index.
        sa.Column("sla_next_check_at", TS),
        sa.Column("sla_fired", sa.JSON, nullable=False, server_default="[]"),  # e.g. "first_response:warning"
        sa.Column("intent", sa.String(64)),
        sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("assigned_at", TS),
        sa.Column("last_customer_message_at", TS),
        sa.Column("csat_requested_at", TS),
        sa.Column("csat_at", TS),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for column in _ticket_columns():
            batch.add_column(column)
        batch.create_index("ix_tickets_sla_next_check_at", ["sla_next_check_at"])
        batch.create_index("ix_tickets_status", ["status"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="agent"))
        batch.add_column(sa.Column("team", sa.String(64), nullable=False, server_default="default"))
        # sha256 of the agent's API token: a leaked database does not leak usable tokens.
        batch.add_column(sa.Column("token_hash", sa.String(64)))
        batch.add_column(sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.create_unique_constraint("uq_agents_token_hash", ["token_hash"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sentiment", sa.JSON))
    # Claims per agent per day are counted from the audit log (the pool's anti-cherry-picking cap).
    op.create_index("ix_ticket_events_actor_kind_at", "ticket_events", ["actor", "kind", "at"])
    # Reports read periods of tickets, messages and audit rows.
    op.create_index("ix_ticket_events_kind_at", "ticket_events", ["kind", "at"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index("ix_tickets_resolved_at", "tickets", ["resolved_at"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("name", sa.String(256)),
        sa.Column("tier", sa.String(16), nullable=False, server_default="normal"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_table(
        "customer_identities",
        sa.Column("channel", sa.String(32)),
        sa.Column("external_id", sa.String(256)),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("proven_by", sa.String(64), nullable=False),  # first_contact | order_number | agent_merge ...
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("channel", "external_id", name="pk_customer_identities"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name="fk_customer_identities_customer_id_customers"),
    )
    op.create_index("ix_customer_identities_customer", "customer_identities", ["customer_id"])
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
    )
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(64)),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_app_settings"),
    )


def downgrade() -> None:
    op.drop_table("app_settings")
    op.drop_table("canned_responses")
    op.drop_index("ix_customer_identities_customer", table_name="customer_identities")
    op.drop_table("customer_identities")
    op.drop_table("customers")
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.drop_index("ix_tickets_resolved_at", table_name="tickets")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.drop_index("ix_ticket_events_kind_at", table_name="ticket_events")
    op.drop_index("ix_ticket_events_actor_kind_at", table_name="ticket_events")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sentiment")
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("uq_agents_token_hash", type_="unique")
        for name in ("active", "token_hash", "team", "role"):
            batch.drop_column(name)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_status")
        batch.drop_index("ix_tickets_sla_next_check_at")
        for column in reversed(_ticket_columns()):
            batch.drop_column(column.name)
