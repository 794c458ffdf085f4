"""orders: the demo order book behind OrderLookup

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_number", sa.String(32)),
        sa.Column("channel", sa.String(32)),
        sa.Column("customer_external_id", sa.String(256)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("carrier", sa.String(64)),
        sa.Column("tracking_number", sa.String(64)),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("detail_en", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_number", name="pk_orders"),
    )


def downgrade() -> None:
    op.drop_table("orders")
