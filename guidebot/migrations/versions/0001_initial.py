"""Initial schema: cases and their history, lookup rate limit, conversations, query log.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than generated from the models, so this migration never changes when the
# models do.
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_no", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(128), nullable=False),
        sa.Column("item_name", sa.String(256), nullable=True),
        sa.Column("applicant_masked", sa.String(64), nullable=False),
        sa.Column("phone_last4", sa.String(4), nullable=True),
        sa.Column("id_last4", sa.String(4), nullable=True),
        sa.Column("service_window", sa.String(128), nullable=True),
        sa.Column("accepted_at", sa.DateTime(), nullable=False),
        sa.Column("promised_days", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at", sa.DateTime(), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("case_no", name="pk_cases"),
    )
    op.create_table(
        "case_events",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("case_no", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_no"], ["cases.case_no"], name="fk_case_events_case_no_cases", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.UniqueConstraint("case_no", "occurred_at", "status", name="uq_case_events_case_no"),
    )
    op.create_table(
        "lookup_failures",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lookup_failures"),
    )
    op.create_index(
        "ix_lookup_failures_sender_at", "lookup_failures", ["channel", "sender_hash", "attempted_at"]
    )
    op.create_table(
        "conversations",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sender_hash", name="pk_conversations"),
    )
    op.create_table(
        "query_log",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("item_code", sa.String(128), nullable=True),
        sa.Column("field", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_query_log"),
    )
    op.create_index("ix_query_log_decision_at", "query_log", ["decision", "at"])
    op.create_table(
        "guidebot_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_guidebot_meta"),
    )


def downgrade() -> None:
    op.drop_table("guidebot_meta")
    op.drop_index("ix_query_log_decision_at", table_name="query_log")
    op.drop_table("query_log")
    op.drop_table("conversations")
    op.drop_index("ix_lookup_failures_sender_at", table_name="lookup_failures")
    op.drop_table("lookup_failures")
    op.drop_table("case_events")
    op.drop_table("cases")
