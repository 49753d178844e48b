"""The durable queue: enqueue in the caller's transaction, claim, and record every outcome.

- :func:`enqueue` adds rows inside the caller's session, so a message exists exactly when its
  cause (a status import, a broadcast) was committed.  A message with a ``dedupe_key`` is added
  once: enqueueing it again is a no-op (``ON CONFLICT DO NOTHING``).
- :func:`claim` hands a dispatcher a batch of ready rows of one channel, replies first, and
  leases them (``status = sending`` until ``lease_until``).  On PostgreSQL the candidates are
  picked with ``SELECT … FOR UPDATE SKIP LOCKED`` so several dispatchers share the queue; on
  SQLite the single ``UPDATE … WHERE id IN (SELECT …) AND status = 'queued' RETURNING`` is atomic
  because SQLite serialises writers.  A lease that ran out (its dispatcher died) is put back.
- :func:`record_outcome` is the ONE place where a channel's :class:`SendOutcome` becomes a row
  status (courier's idea): sent/delivered, retry with exponential backoff (or the channel's
  retry-after), failed, stopped (the recipient goes on the stop list and nothing more proactive
  goes to them).
- :func:`record_delivery_report` applies a channel's later delivery report (SMS DLR).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime, SmallInteger, String, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority, RecipientStop, Subscription
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store, now

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "MAX_ATTEMPTS",
    "Claimed",
    "NewMessage",
    "backoff_seconds",
    "claim",
    "enqueue",
    "enqueue_reply",
    "outcome_record",
    "record_delivery_report",
    "record_outcome",
    "record_outcomes",
    "recording_connection",
    "release",
    "stop_recipient",
    "stopped_recipients",
]

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 15.0
BACKOFF_MAX_SECONDS = 3600.0
MAX_ATTEMPTS = 8  # passing faults; a throttle does not use up an attempt
_ERROR_LIMIT = 300
_INSERT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to put in the outbox."""

    channel: str
    recipient: str
    text: str
    priority: int = Priority.NOTICE
    kind: str = "notice"
    dedupe_key: str | None = None
    broadcast_id: int | None = None
    not_before: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row a dispatcher leased: send it, then record the outcome."""

    id: int
    channel: str
    recipient: str
    text: str
    priority: int
    kind: str
    attempts: int  # including this one


def _insert(dialect: str, model: type) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _dialect(bind: Session | Connection) -> str:
    engine_or_connection = bind.get_bind() if isinstance(bind, Session) else bind
    return engine_or_connection.dialect.name


def stopped_recipients(session: Session | Connection, channels: Iterable[str]) -> set[tuple[str, str]]:
    """(channel, recipient) pairs on the stop list for these channels."""
    wanted = sorted(set(channels))
    if not wanted:
        return set()
    rows = session.execute(
        select(RecipientStop.channel, RecipientStop.recipient).where(RecipientStop.channel.in_(wanted))
    )
    return {(channel, recipient) for channel, recipient in rows}


def enqueue(session: Session | Connection, messages: Iterable[NewMessage], at: dt.datetime | None = None) -> int:
    """Add ``messages`` in the caller's transaction; returns how many rows were new.

    A message whose ``dedupe_key`` is already in the outbox is skipped; so is a proactive
    message (not a reply) to a recipient on the stop list.
    """
    batch = list(messages)
    if not batch:
        return 0
    at = at or now()
    proactive_channels = {m.channel for m in batch if m.priority != Priority.REPLY}
    stops = stopped_recipients(session, proactive_channels)
    rows = [
        {
            "channel": m.channel,
            "recipient": m.recipient,
            "text": m.text,
            "priority": int(m.priority),
            "kind": m.kind,
            "dedupe_key": m.dedupe_key,
            "broadcast_id": m.broadcast_id,
            "status": MessageStatus.QUEUED.value,
            "attempts": 0,
            "not_before": m.not_before or at,
            "created_at": at,
            "updated_at": at,
        }
        for m in batch
        if m.priority == Priority.REPLY or (m.channel, m.recipient) not in stops
    ]
    dialect = _dialect(session)
    added = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        statement = (
            _insert(dialect, OutboxMessage)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OutboxMessage.id)
        )
        added += len(session.execute(statement, rows[start : start + _INSERT_CHUNK]).all())
    return added


def enqueue_reply(store: Store, channel: str, recipient: str, text: str, dedupe_key: str | None = None) -> int:
    """Queue an answer to a citizen's own message: it goes ahead of all bulk traffic."""
    with store.session() as session:
        message = NewMessage(channel, recipient, text, Priority.REPLY, "reply", dedupe_key)
        return enqueue(session, [message])


def claim(
    store: Store,
    channel: str,
    worker: str,
    limit: int,
    *,
    at: dt.datetime | None = None,
    lease_seconds: float = 60.0,
    max_priority: int | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` ready rows of ``channel`` to ``worker``, replies first, oldest first.

    ``max_priority`` (e.g. ``Priority.REPLY`` during quiet hours) leaves lower-priority rows
    queued.  Rows whose lease ran out are put back first.
    """
    at = at or now()
    ready = and_(
        OutboxMessage.status == MessageStatus.QUEUED.value,
        OutboxMessage.channel == channel,
        OutboxMessage.not_before <= at,
    )
    if max_priority is not None:
        ready = and_(ready, OutboxMessage.priority <= max_priority)
    candidates = select(OutboxMessage.id).where(ready).order_by(OutboxMessage.priority, OutboxMessage.id).limit(limit)
    if store.dialect == "postgresql":
        # A materialized CTE, evaluated once: as a plain ``IN (subquery)`` PostgreSQL may run the
        # SKIP LOCKED subquery again for every row, each time skipping the rows this very update
        # just locked, and so claim the whole queue instead of ``limit`` rows.
        picked = candidates.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        chosen = OutboxMessage.id.in_(select(picked.c.id))
    else:
        chosen = OutboxMessage.id.in_(candidates.scalar_subquery())
    lease_until = at + dt.timedelta(seconds=lease_seconds)
    with store.engine.begin() as connection:
        _release_expired(connection, channel, at)
        rows = connection.execute(
            update(OutboxMessage)
            .where(chosen, OutboxMessage.status == MessageStatus.QUEUED.value)
            .values(status=MessageStatus.SENDING.value, claimed_by=worker, lease_until=lease_until,
                    attempts=OutboxMessage.attempts + 1, updated_at=at)
            .returning(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient, OutboxMessage.text,
                       OutboxMessage.priority, OutboxMessage.kind, OutboxMessage.attempts)
        ).all()
    claimed = [Claimed(*row) for row in rows]
    claimed.sort(key=lambda c: (c.priority, c.id))
    return claimed


def _release_expired(connection: Connection, channel: str, at: dt.datetime) -> None:
    # A dispatcher that died keeps its rows leased until the lease runs out; then they go back.
    # (Only a send in flight at the moment of the crash can be repeated: see docs/outbox.md.)
    connection.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == MessageStatus.SENDING.value, OutboxMessage.channel == channel,
               OutboxMessage.lease_until < at)
        .values(status=MessageStatus.QUEUED.value, claimed_by=None, lease_until=None, updated_at=at)
    )


def release(store: Store, ids: Sequence[int], worker: str) -> int:
    """Give leased rows that were never sent back to the queue (a graceful stop)."""
    if not ids:
        return 0
    with store.engine.begin() as connection:
        result = connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.claimed_by == worker,
                   OutboxMessage.status == MessageStatus.SENDING.value)
            .values(status=MessageStatus.QUEUED.value, claimed_by=None, lease_until=None,
                    attempts=OutboxMessage.attempts - 1, updated_at=now())
        )
    return result.rowcount or 0


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff for the ``attempts``-th failed try: 15 s, 30 s, 60 s … ≤ 1 h, ±20 % jitter."""
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * (rng or random).random())


def record_outcome(
    store: Store,
    message: Claimed,
    worker: str,
    result: SendResult,
    *,
    at: dt.datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    connection: Connection | None = None,
) -> MessageStatus:
    """Turn one send's outcome into the row's status — the only place this mapping lives.

    ============  ==============================================================
    SENT          sent (a delivery report may make it delivered)
    DELIVERED     delivered
    RETRY         queued again after backoff (or retry_after); failed after ``max_attempts``
    THROTTLED     queued again after retry_after; does not use up an attempt
    FAILED        failed (permanent for this message)
    STOPPED       stopped; the recipient goes on the stop list, their other queued
                  proactive rows are stopped and their subscriptions end
    ============  ==============================================================
    """
    at = at or now()
    status, params = _outcome_params(message, worker, result, at, max_attempts)
    [status] = record_outcomes(store, [(message, status, params)], connection=connection)
    return status


def _outcome_params(message: Claimed, worker: str, result: SendResult, at: dt.datetime,
                    max_attempts: int) -> tuple[MessageStatus, dict[str, Any]]:
    error = (result.error or "")[:_ERROR_LIMIT] or None
    params: dict[str, Any] = {"row_id": message.id, "worker": worker, "at": at, "error": error, "sent_at": None,
                              "provider_id": None, "not_before": None, "attempts": None}
    outcome = result.outcome
    if outcome in (SendOutcome.SENT, SendOutcome.DELIVERED):
        status = MessageStatus.SENT if outcome is SendOutcome.SENT else MessageStatus.DELIVERED
        params.update(sent_at=at, provider_id=result.provider_id or None)
    elif outcome is SendOutcome.THROTTLED:
        status = MessageStatus.QUEUED
        wait = result.retry_after if result.retry_after is not None else backoff_seconds(1)
        params.update(not_before=at + dt.timedelta(seconds=max(0.0, wait)), attempts=max(0, message.attempts - 1))
    elif outcome is SendOutcome.RETRY:
        if message.attempts >= max_attempts:
            status = MessageStatus.FAILED
            params["error"] = f"gave up after {message.attempts} attempts: {error or 'retry'}"[:_ERROR_LIMIT]
        else:
            status = MessageStatus.QUEUED
            wait = max(backoff_seconds(message.attempts), result.retry_after or 0.0)
            params["not_before"] = at + dt.timedelta(seconds=wait)
    elif outcome is SendOutcome.STOPPED:
        status = MessageStatus.STOPPED
    else:
        status = MessageStatus.FAILED
    params["status"] = status.value
    return status, params


def outcome_record(message: Claimed, worker: str, result: SendResult, *, at: dt.datetime | None = None,
                   max_attempts: int = MAX_ATTEMPTS) -> tuple[Claimed, MessageStatus, dict[str, Any]]:
    """The row update for one outcome, for :func:`record_outcomes` (the mapping of record_outcome)."""
    status, params = _outcome_params(message, worker, result, at or now(), max_attempts)
    return message, status, params


def record_outcomes(store: Store, records: Sequence[tuple[Claimed, MessageStatus, dict[str, Any]]],
                    connection: Connection | None = None) -> list[MessageStatus]:
    """Write several outcomes in one transaction (the dispatcher records the outcomes that
    completed in one event-loop turn together; nothing waits for a batch to fill)."""
    if not records:
        return []
    params = [p for _, _, p in records]
    if connection is not None:
        with connection.begin():
            updated = connection.execute(_RECORD, params).rowcount
    else:
        with store.engine.begin() as own:
            updated = own.execute(_RECORD, params).rowcount
    if updated is not None and 0 <= updated < len(params):
        # A lease ran out and another dispatcher took the row: its record wins.
        log.warning("outbox: %d of %d outcomes not recorded: rows no longer leased to this dispatcher",
                    len(params) - updated, len(params))
    stopped = [(m, p) for m, status, p in records if status is MessageStatus.STOPPED]
    if stopped:
        with store.session() as session:
            for message, p in stopped:
                _stop(session, message.channel, message.recipient, p["error"] or "stopped", p["at"])
    return [status for _, status, _ in records]


def recording_connection(store: Store) -> Connection:
    """The dispatcher's connection for recording outcomes.  On PostgreSQL its commits do not wait
    for the WAL flush: a dispatcher
    killed after the statement loses nothing (the server has it); only a crash of the database
    server itself may forget the last fraction of a second of outcomes, whose messages are then
    sent again — the same window as a send in flight."""
    connection = store.engine.connect()
    if store.dialect == "postgresql":
        connection.exec_driver_sql("SET synchronous_commit TO OFF")
        connection.commit()
    return connection


# One prepared statement for every outcome (compiled once, cached): the hot path of dispatching.
_RECORD = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.claimed_by == bindparam("worker"),
           OutboxMessage.status == MessageStatus.SENDING.value)
    .values(
        status=bindparam("status"),
        updated_at=bindparam("at"),
        claimed_by=None,
        lease_until=None,
        error=bindparam("error"),
        sent_at=func.coalesce(bindparam("sent_at", type_=DateTime()), OutboxMessage.sent_at),
        provider_id=func.coalesce(bindparam("provider_id", type_=String()), OutboxMessage.provider_id),
        not_before=func.coalesce(bindparam("not_before", type_=DateTime()), OutboxMessage.not_before),
        attempts=func.coalesce(bindparam("attempts", type_=SmallInteger()), OutboxMessage.attempts),
    )
)


def _stop(session: Session, channel: str, recipient: str, reason: str, at: dt.datetime) -> None:
    statement = _insert(_dialect(session), RecipientStop).values(
        channel=channel, recipient=recipient, reason=reason[:_ERROR_LIMIT], stopped_at=at
    )
    session.execute(statement.on_conflict_do_update(
        index_elements=["channel", "recipient"], set_={"reason": reason[:_ERROR_LIMIT], "stopped_at": at}
    ))
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.channel == channel, OutboxMessage.recipient == recipient,
               OutboxMessage.status == MessageStatus.QUEUED.value, OutboxMessage.priority > Priority.REPLY)
        .values(status=MessageStatus.STOPPED.value, error="recipient stopped", updated_at=at)
    )
    session.execute(
        update(Subscription)
        .where(Subscription.channel == channel, Subscription.recipient == recipient, Subscription.active.is_(True))
        .values(active=False, ended_at=at, end_reason="stopped")
    )


def stop_recipient(store: Store, channel: str, recipient: str, reason: str) -> None:
    """Put a recipient on the stop list (e.g. the SMS gateway said the number is invalid)."""
    with store.session() as session:
        _stop(session, channel, recipient, reason, now())


def resume_recipient(store: Store, channel: str, recipient: str) -> bool:
    """Take a recipient off the stop list (they wrote to us again, so they are reachable)."""
    from sqlalchemy import delete

    with store.session() as session:
        removed = session.execute(
            delete(RecipientStop).where(RecipientStop.channel == channel, RecipientStop.recipient == recipient)
        ).rowcount
    return bool(removed)


def record_delivery_report(store: Store, channel: str, provider_id: str, delivered: bool, error: str = "") -> bool:
    """Apply a channel's delivery report to the row it sent; False when no row has that id (yet).

    The dispatcher passes the row id as ``reference`` to senders that accept one, so a report
    that overtakes the recording of the send still finds its row.
    """
    if not provider_id:
        return False
    at = now()
    matches = OutboxMessage.provider_id == provider_id
    if provider_id.isdigit():
        matches = or_(matches, and_(OutboxMessage.id == int(provider_id), OutboxMessage.provider_id.is_(None)))
    status = MessageStatus.DELIVERED if delivered else MessageStatus.FAILED
    values: dict[str, Any] = {"status": status.value, "updated_at": at}
    if not delivered:
        values["error"] = (error or "delivery failed")[:_ERROR_LIMIT]
    with store.session() as session:
        row = session.execute(
            select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.channel == channel, matches).limit(1)
        ).first()
        if row is None:
            return False
        if row.status == MessageStatus.SENDING.value:
            return False  # the dispatcher has not recorded the send yet; the caller offers it again
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
    return True


def counts_by_status(store: Store) -> dict[str, int]:
    """How many rows are in each status (for ``guidebot outbox status``)."""
    with store.session() as session:
        rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {status: int(n) for status, n in rows}
