"""Outbox: subscriptions, outbox rows, recipient stops, broadcasts, ratings.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("case_no", sa.String(64), nullable=True),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("item_code", sa.String(128), nullable=True),
        sa.Column("consented_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_status_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("channel", "recipient", "scope", name="uq_subscriptions_channel"),
    )
    op.create_index("ix_subscriptions_case_no", "subscriptions", ["case_no"])
    op.create_index("ix_subscriptions_kind_active", "subscriptions", ["kind", "active"])
    op.create_table(
        "broadcasts",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("item_code", sa.String(128), nullable=True),
        sa.Column("send_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_broadcasts"),
    )
    op.create_index("ix_broadcasts_status_at", "broadcasts", ["status", "send_at"])
    op.create_table(
        "outbox",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=True),
        sa.Column("broadcast_id", big_id, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"], ["broadcasts.id"], name="fk_outbox_broadcast_id_broadcasts", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_claim", "outbox", ["status", "channel", "priority", "id"])
    op.create_index("ix_outbox_provider", "outbox", ["channel", "provider_id"])
    op.create_index("ix_outbox_recipient", "outbox", ["channel", "recipient", "status"])
    op.create_index("ix_outbox_broadcast", "outbox", ["broadcast_id", "status"])
    op.create_table(
        "outbox_stops",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "recipient", name="pk_outbox_stops"),
    )
    op.create_table(
        "ratings",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("item_code", sa.String(128), nullable=True),
        sa.Column("case_no", sa.String(64), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("rated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
    )
    op.create_index("ix_ratings_at", "ratings", ["rated_at"])


def downgrade() -> None:
    op.drop_index("ix_ratings_at", table_name="ratings")
    op.drop_table("ratings")
    op.drop_table("outbox_stops")
    for name in ("ix_outbox_broadcast", "ix_outbox_recipient", "ix_outbox_provider", "ix_outbox_claim"):
        op.drop_index(name, table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_broadcasts_status_at", table_name="broadcasts")
    op.drop_table("broadcasts")
    op.drop_index("ix_subscriptions_kind_active", table_name="subscriptions")
    op.drop_index("ix_subscriptions_case_no", table_name="subscriptions")
    op.drop_table("subscriptions")
