"""ticketing core: ticket priority/skills/SLA/assignee columns, append-only audit log, agents

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
def _new_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    # Fresh Column objects per call: a Column can belong to one table only.
    return [
        sa.Column("priority", sa.Integer, nullable=False, server_default="2"),
        sa.Column("priority_reasons", sa.JSON, nullable=False, server_default="[]"),
        sa.Column("skills", sa.JSON, nullable=False, server_default="[]"),
        sa.Column("tier", sa.String(16), nullable=False, server_default="normal"),
        sa.Column("channel", sa.String(32)),
        sa.Column("assignee_id", sa.String(64)),
        sa.Column("first_response_due", TS),
        sa.Column("next_response_due", TS),
        sa.Column("resolution_due", TS),
        sa.Column("first_responded_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("reopened_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("csat", sa.Integer),
        sa.Column("csat_comment", sa.Text),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for column in _new_columns():
            batch.add_column(column)
        batch.create_index("ix_tickets_assignee", ["assignee_id"])
    # The Foundation issue opened tickets as "open"; the lifecycle calls an unassigned ticket "new".
    op.execute("UPDATE tickets SET status = 'new' WHERE status = 'open'")
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),  # agent id, "bot", "system" or "customer"
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_events"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_ticket_events_ticket_id_tickets"),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "id"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64)),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("max_concurrent", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )


def downgrade() -> None:
    op.drop_table("agents")
    op.drop_index("ix_ticket_events_ticket", table_name="ticket_events")
    op.drop_table("ticket_events")
    op.execute("UPDATE tickets SET status = 'open' WHERE status = 'new'")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_assignee")
        for column in reversed(_new_columns()):
            batch.drop_column(column.name)
