"""Shared per-channel rate limits (outbox_rate) and a broadcast's own SMS text.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_rate",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("next_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_outbox_rate"),
    )
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("sms_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("sms_text")
    op.drop_table("outbox_rate")
