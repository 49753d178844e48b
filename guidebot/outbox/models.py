"""The outbox's tables, on the store's declarative Base (migration 0002).

- ``subscriptions``: who agreed to be told what, on which channel, and when (consent).
- ``outbox``: one row per recipient and message — the durable queue the dispatcher drains.
- ``outbox_stops``: recipients a channel reported unreachable (blocked the bot, invalid number).
- ``broadcasts``: a staff notice: its text, audience filter and (optional) scheduled time.
- ``ratings``: 好差评 — five-level ratings of an answer or a finished case.
- ``outbox_rate`` (migration 0003): per channel, the next free send time every dispatcher
  reserves from, so the channel's rate limit holds across processes (``outbox/ratelimit.py``).

Privacy: sending needs the address, so ``subscriptions``, ``outbox`` and ``outbox_stops`` keep
the recipient as the channel knows it (chat id, E.164 number) — that is what the citizen agreed to
by subscribing (or, for a reply, by writing to us).  Ratings keep only the keyed sender hash.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum, StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from guidebot.store.models import Base, BigId

__all__ = [
    "Broadcast",
    "BroadcastStatus",
    "ChannelRate",
    "MessageStatus",
    "OutboxMessage",
    "Priority",
    "Rating",
    "RecipientStop",
    "Subscription",
]


class Priority(IntEnum):
    """Lower goes first. Quiet hours hold everything but replies."""

    REPLY = 0  # an answer to the citizen's own message
    NOTICE = 5  # a subscribed case's status change, a rating invitation
    BULK = 9  # a staff broadcast


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting (maybe until not_before: backoff, quiet hours)
    SENDING = "sending"  # claimed by a dispatcher until lease_until
    SENT = "sent"  # accepted by the channel
    DELIVERED = "delivered"  # the channel confirmed delivery
    FAILED = "failed"  # permanent failure, or retries exhausted
    STOPPED = "stopped"  # the recipient cannot be reached; nothing more goes to them
    CANCELLED = "cancelled"  # the recipient unsubscribed before it went out


FINAL_MESSAGE_STATUSES = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.STOPPED,
     MessageStatus.CANCELLED}
)


class BroadcastStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time; its rows are written then
    QUEUED = "queued"  # its rows are in the outbox


class Subscription(Base):
    """A citizen's consent to be notified: one case (kind ``case``) or the center's notices."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("channel", "recipient", "scope"),
        Index("ix_subscriptions_case_no", "case_no"),
        Index("ix_subscriptions_kind_active", "kind", "active"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # "case" | "notices"
    # What the consent covers, unique per recipient: "case:<no>", "all", "dept:<name>", "item:<code>".
    scope: Mapped[str] = mapped_column(String(300))
    case_no: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(128))
    item_code: Mapped[str | None] = mapped_column(String(128))
    consented_at: Mapped[dt.datetime] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))  # optout | completed | stopped
    # For a case: the status (and its time) the citizen last saw or was told about; a notice goes
    # out when the case's current status differs, so notifying is idempotent and can catch up.
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_status_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Broadcast(Base):
    """A notice staff send to the notice subscribers (all, or by department / item)."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_at", "status", "send_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    # A shorter text for SMS (None: SMS get ``text`` too), stored as sent, with the footer or
    # as the notice template's text (migration 0003).
    sms_text: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(128))
    item_code: Mapped[str | None] = mapped_column(String(128))
    send_at: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    recipients: Mapped[int] = mapped_column(Integer)  # rows written (0 while scheduled)


class OutboxMessage(Base):
    """One message to one recipient; its status is the record of every outcome."""

    __tablename__ = "outbox"
    __table_args__ = (
        # What the claim reads: ready rows of a channel, replies first.
        Index("ix_outbox_claim", "status", "channel", "priority", "id"),
        Index("ix_outbox_provider", "channel", "provider_id"),
        Index("ix_outbox_recipient", "channel", "recipient", "status"),
        Index("ix_outbox_broadcast", "broadcast_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(16))  # reply | case | rating | broadcast
    # The identity of the message: enqueueing it again adds nothing (idempotent causes).
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(SmallInteger)
    not_before: Mapped[dt.datetime] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class RecipientStop(Base):
    """A recipient the channel said cannot be reached: no more proactive messages to them."""

    __tablename__ = "outbox_stops"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(300))
    stopped_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Rating(Base):
    """A 好差评 rating: level 5 非常满意 … 1 非常不满意; 差评 (1, 2) carry a reason and a flag."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_at", "rated_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    sender_hash: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(16))  # answer | case
    item_code: Mapped[str | None] = mapped_column(String(128))
    case_no: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str | None] = mapped_column(Text)  # masked
    flagged: Mapped[bool] = mapped_column(Boolean)  # a 差评 for staff to follow up
    rated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ChannelRate(Base):
    """One row per rate-limited channel: when its next send may start, on the dispatchers' shared
    clock (Unix time, seconds).  A dispatcher reserves ``n`` sends by moving it on by ``n``
    spacings in one atomic upsert; one row per channel, so nothing accumulates."""

    __tablename__ = "outbox_rate"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[float] = mapped_column(Double)
