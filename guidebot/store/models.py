"""SQLAlchemy 2 models: everything guidebot keeps, in one database.

Times are naive datetimes in China Standard Time (UTC+8, no daylight saving): import files and
staff think in local time, and the working-day calendar is local.  ``guidebot.store.db.now()``
gives the current time in that convention.

Privacy (docs/cases.md): a case keeps the applicant's name already masked and only the last
4 digits of the phone and ID numbers — exactly what lookup shows and verifies.  Senders are
stored as a keyed hash (``sender_hash``), never as the raw chat id or phone number.

Schema changes go through Alembic (guidebot/migrations); a test checks the latest migration
matches these models.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Case",
    "CaseEvent",
    "Conversation",
    "LookupFailure",
    "MetaSetting",
    "QueryLog",
]

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Case(Base):
    """An application (办件) as the approval system reports it, with its current status."""

    __tablename__ = "cases"

    # The number exactly as the approval system writes it; lookup matches it exactly.
    case_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(128))
    # The import file's item name, used when the catalog does not know the item code.
    item_name: Mapped[str | None] = mapped_column(String(256))
    applicant_masked: Mapped[str] = mapped_column(String(64))
    phone_last4: Mapped[str | None] = mapped_column(String(4))
    id_last4: Mapped[str | None] = mapped_column(String(4))
    # "window" is a reserved word in PostgreSQL; a plain name keeps hand-written SQL simple.
    service_window: Mapped[str | None] = mapped_column(String(128))
    accepted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # Per-case promised limit in working days when the import file gives one (承诺时限);
    # otherwise the catalog's limit for the item applies.
    promised_days: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # The note of the current status: missing materials for 补正, the reason for a refusal.
    status_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="(CaseEvent.occurred_at, CaseEvent.id)", passive_deletes=True
    )


class CaseEvent(Base):
    """One entry of a case's history: a status at a time, with its note and where it came from."""

    __tablename__ = "case_events"
    # The identity of an event: importing the same row twice adds nothing.
    __table_args__ = (UniqueConstraint("case_no", "occurred_at", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(ForeignKey("cases.case_no", ondelete="CASCADE"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    # "import:<file name>" or "staff:<user>".
    source: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)

    case: Mapped[Case] = relationship(back_populates="events")


class LookupFailure(Base):
    """A failed lookup verification, counted per sender for the rate limit (5/hour, 20/day)."""

    __tablename__ = "lookup_failures"
    __table_args__ = (Index("ix_lookup_failures_sender_at", "channel", "sender_hash", "attempted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    sender_hash: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Conversation(Base):
    """Per-sender dialog state (pending choices, last item, a lookup awaiting its factor)."""

    __tablename__ = "conversations"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class QueryLog(Base):
    """One citizen question and what the bot decided, for the "what could we not answer" report."""

    __tablename__ = "query_log"
    __table_args__ = (Index("ix_query_log_decision_at", "decision", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(32))
    sender_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)  # masked before it is stored
    decision: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str | None] = mapped_column(String(128))
    field: Mapped[str | None] = mapped_column(String(16))


class MetaSetting(Base):
    """Small key/value settings the store keeps for itself (e.g. the sender-hash key)."""

    __tablename__ = "guidebot_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
