"""identity links: one customer across channels -- link audit and suggestions, order claims, merged
profiles, longer proofs (agent ids are up to 64 characters), a customer's orders by identity, and
messages by channel message id (email threading by References)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("merged_into", sa.Integer))
        batch.create_index("ix_customers_merged_into", ["merged_into"])
    with op.batch_alter_table("customer_identities") as batch:
        batch.alter_column("proven_by", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=False)
    op.create_index("ix_orders_customer", "orders", ["channel", "customer_external_id"])
    # Email threading looks up the customer's earlier mails by Message-ID (References header).
    op.create_index("ix_messages_channel_external_id", "messages", ["channel", "external_id"])
    op.create_table(
        "customer_link_events",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Integer),
        sa.Column("other_customer_id", sa.Integer),
        sa.Column("channel", sa.String(32)),
        sa.Column("external_id", sa.String(256)),
        sa.Column("other_channel", sa.String(32)),
        sa.Column("other_external_id", sa.String(256)),
        sa.Column("proof", sa.String(128)),
        sa.Column("reason", sa.Text),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("dedupe_key", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_customer_link_events"),
        sa.UniqueConstraint("dedupe_key", name="uq_customer_link_events_dedupe_key"),
    )
    op.create_index("ix_customer_link_events_customer", "customer_link_events", ["customer_id"])
    op.create_index("ix_customer_link_events_other_customer", "customer_link_events", ["other_customer_id"])
    op.create_index("ix_customer_link_events_identity", "customer_link_events", ["channel", "external_id"])
    op.create_index("ix_customer_link_events_other_identity", "customer_link_events",
                    ["other_channel", "other_external_id"])
    op.create_table(
        "order_claims",
        sa.Column("order_number", sa.String(32)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("order_number", name="pk_order_claims"),
    )
    op.create_index("ix_order_claims_identity", "order_claims", ["channel", "external_id"])


def downgrade() -> None:
    op.drop_index("ix_order_claims_identity", table_name="order_claims")
    op.drop_table("order_claims")
    for name in ("ix_customer_link_events_other_identity", "ix_customer_link_events_identity",
                 "ix_customer_link_events_other_customer", "ix_customer_link_events_customer"):
        op.drop_index(name, table_name="customer_link_events")
    op.drop_table("customer_link_events")
    op.drop_index("ix_messages_channel_external_id", table_name="messages")
    op.drop_index("ix_orders_customer", table_name="orders")
    with op.batch_alter_table("customer_identities") as batch:
        batch.alter_column("proven_by", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=False)
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_merged_into")
        batch.drop_column("merged_into")
