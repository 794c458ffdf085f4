"""staff passwords: console login for agents, supervisors and admins (scrypt hash; NULL: no password,
API token only)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(256)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("password_hash")
