"""The dispatcher and the queue: every outcome ends in the right state; priority, quiet hours, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from guidebot.outbox import queue
from guidebot.outbox.dispatcher import Dispatcher, QuietHours, RateLimiter
from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority, RecipientStop, Subscription
from guidebot.outbox.queue import NewMessage, enqueue, record_delivery_report
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.outbox.subscriptions import active_subscriptions
from guidebot.store.db import Store
from tests.outbox.fakes_outbox import HANG, FakeChannel, VirtualClock, add_notice_subscribers, at_noon
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401

NOON = at_noon()


def put(store: Store, *messages: NewMessage, at: dt.datetime = NOON) -> None:  # noqa: F811
    with store.session() as session:
        enqueue(session, messages, at=at)


def row(store: Store, recipient: str) -> OutboxMessage:  # noqa: F811
    with store.session() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)).one()


def dispatcher(store: Store, channel: FakeChannel, at: dt.datetime = NOON, **kwargs) -> Dispatcher:  # noqa: F811
    kwargs.setdefault("quiet_hours", None)
    return Dispatcher(store, {channel.channel: channel}, clock=lambda: at, **kwargs)


CASES = [
    # cue, expected status, attempts left on the row, waits at least (s), stopped?
    (HANG, MessageStatus.QUEUED, 1, 10.0, False),
    (SendResult(SendOutcome.RETRY, error="HTTP 502"), MessageStatus.QUEUED, 1, 10.0, False),
    (ConnectionResetError("reset"), MessageStatus.QUEUED, 1, 10.0, False),
    (SendResult(SendOutcome.THROTTLED, retry_after=37, error="429 Too Many Requests"), MessageStatus.QUEUED, 0, 37.0,
     False),
    (SendResult(SendOutcome.FAILED, error="400 chat not found"), MessageStatus.FAILED, 1, 0.0, False),
    (SendResult(SendOutcome.STOPPED, error="403 bot was blocked by the user"), MessageStatus.STOPPED, 1, 0.0, True),
    (None, MessageStatus.SENT, 1, 0.0, False),
    (SendResult(SendOutcome.DELIVERED, provider_id="x1"), MessageStatus.DELIVERED, 1, 0.0, False),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("cue", "status", "attempts", "waits", "stopped"), CASES,
                         ids=["timeout", "5xx", "exception", "429-retry-after", "permanent", "blocked", "ok",
                              "delivered"])
async def test_each_outcome_ends_in_the_right_state(store: Store, cue, status, attempts, waits, stopped) -> None:  # noqa: F811
    channel = FakeChannel()
    if cue is not None:
        channel.cue("1001", cue)
    add_notice_subscribers(store, ["1001"])
    put(store, NewMessage("telegram", "1001", "闭厅通知", Priority.BULK, "broadcast"),
        NewMessage("telegram", "1001", "另一条通知", Priority.BULK, "broadcast",
                   not_before=NOON + dt.timedelta(hours=1)))
    stats = await dispatcher(store, channel, send_timeout=0.2).run(until_idle=True)
    assert stats.attempted == 1
    with store.session() as session:
        first, second = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert first.status == status.value
    assert first.attempts == attempts
    assert first.claimed_by is None and first.lease_until is None
    if status is MessageStatus.QUEUED:
        assert first.not_before >= NOON + dt.timedelta(seconds=waits)
        assert first.error
    if stopped:
        assert second.status == MessageStatus.STOPPED.value  # nothing more goes to them
        assert active_subscriptions(store, "telegram", "1001") == []
        with store.session() as session:
            assert session.get(RecipientStop, ("telegram", "1001")) is not None
        put(store, NewMessage("telegram", "1001", "再一条", Priority.BULK, "broadcast", "k3"))
        with store.session() as session:
            assert session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == "k3")) is None
    else:
        assert second.status == MessageStatus.QUEUED.value


@pytest.mark.asyncio
async def test_a_passing_fault_is_retried_with_backoff_then_sent(store: Store) -> None:  # noqa: F811
    channel = FakeChannel()
    channel.cue("1001", SendResult(SendOutcome.RETRY, error="HTTP 503"), SendResult(SendOutcome.RETRY, error="503"))
    put(store, NewMessage("telegram", "1001", "通知"))
    when = NOON
    waits = []
    for _ in range(3):
        await dispatcher(store, channel, at=when).run(until_idle=True)
        message = row(store, "1001")
        waits.append((message.not_before - when).total_seconds())
        when = message.not_before
    assert message.status == MessageStatus.SENT.value and message.attempts == 3
    assert 10 <= waits[0] < waits[1]  # exponential
    assert channel.recipients() == ["1001"]


@pytest.mark.asyncio
async def test_retries_give_up_after_max_attempts(store: Store) -> None:  # noqa: F811
    channel = FakeChannel()
    channel.cue("1001", *[SendResult(SendOutcome.RETRY, error="HTTP 500")] * 3)
    put(store, NewMessage("telegram", "1001", "通知"))
    when = NOON
    for _ in range(3):
        await dispatcher(store, channel, at=when, max_attempts=3).run(until_idle=True)
        when = row(store, "1001").not_before
    message = row(store, "1001")
    assert message.status == MessageStatus.FAILED.value
    assert "gave up after 3 attempts" in message.error


@pytest.mark.asyncio
async def test_a_429_pauses_the_whole_channel(store: Store) -> None:  # noqa: F811
    clock = VirtualClock()
    channel = FakeChannel(max_per_second=30, monotonic=clock.monotonic)
    channel.cue("1", SendResult(SendOutcome.THROTTLED, retry_after=5))
    put(store, *[NewMessage("telegram", str(i), "通知") for i in range(1, 4)])
    await dispatcher(store, channel, monotonic=clock.monotonic, sleep=clock.sleep, wall_clock=clock.monotonic,
                     concurrency=1).run(until_idle=True)
    later = [t for t, recipient in channel.attempts if recipient != "1"]
    assert later and min(later) >= 5.0


@pytest.mark.asyncio
async def test_replies_go_before_bulk(store: Store) -> None:  # noqa: F811
    channel = FakeChannel()
    put(store, *[NewMessage("telegram", f"b{i}", "闭厅通知", Priority.BULK, "broadcast") for i in range(50)])
    put(store, NewMessage("telegram", "case", "办件通知", Priority.NOTICE, "case"))
    put(store, NewMessage("telegram", "reply", "答复", Priority.REPLY, "reply"))
    await dispatcher(store, channel, concurrency=1).run(until_idle=True)
    assert channel.recipients()[:2] == ["reply", "case"]
    assert len(channel.delivered) == 52


@pytest.mark.asyncio
async def test_quiet_hours_hold_everything_but_replies(store: Store) -> None:  # noqa: F811
    night = dt.datetime(2025, 12, 1, 22, 30)
    put(store, NewMessage("telegram", "bulk", "闭厅通知", Priority.BULK, "broadcast"),
        NewMessage("telegram", "reply", "答复", Priority.REPLY, "reply"), at=night)
    channel = FakeChannel()
    await dispatcher(store, channel, at=night, quiet_hours=QuietHours()).run(until_idle=True)
    assert channel.recipients() == ["reply"]
    assert row(store, "bulk").status == MessageStatus.QUEUED.value
    early = dt.datetime(2025, 12, 2, 7, 59)
    await dispatcher(store, channel, at=early, quiet_hours=QuietHours()).run(until_idle=True)
    assert channel.recipients() == ["reply"]
    morning = dt.datetime(2025, 12, 2, 8, 0)
    await dispatcher(store, channel, at=morning, quiet_hours=QuietHours()).run(until_idle=True)
    assert channel.recipients() == ["reply", "bulk"]


def test_quiet_hours_window() -> None:
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet.contains(dt.datetime(2025, 12, 1, 21, 0)) and quiet.contains(dt.datetime(2025, 12, 1, 3, 0))
    assert not quiet.contains(dt.datetime(2025, 12, 1, 8, 0)) and not quiet.contains(dt.datetime(2025, 12, 1, 20, 59))
    assert quiet.end_after(dt.datetime(2025, 12, 1, 23, 0)) == dt.datetime(2025, 12, 2, 8, 0)
    assert not QuietHours.parse("off").contains(dt.datetime(2025, 12, 1, 23, 0))


@pytest.mark.asyncio
async def test_overall_rate_and_per_recipient_interval_are_held(store: Store) -> None:  # noqa: F811
    clock = VirtualClock()
    channel = FakeChannel(max_per_second=30, per_recipient_interval=1.0, monotonic=clock.monotonic)
    put(store, *[NewMessage("telegram", f"c{i % 40}", f"m{i}") for i in range(400)])
    await dispatcher(store, channel, monotonic=clock.monotonic, sleep=clock.sleep,
                     wall_clock=clock.monotonic).run(until_idle=True)
    times = sorted(t for t, _ in channel.attempts)
    assert len(times) == 400
    j = 0
    for i, t in enumerate(times):  # every one-second window [t, t+1) holds at most 30 starts
        while times[j] <= t - 1.0:
            j += 1
        assert i - j + 1 <= 30, f"{i - j + 1} sends in the second before {t}"
    by_chat: dict[str, list[float]] = {}
    for t, recipient in channel.attempts:
        by_chat.setdefault(recipient, []).append(t)
    assert all(b - a >= 1.0 - 1e-9 for ts in by_chat.values() for a, b in itertools.pairwise(ts))
    assert times[-1] == pytest.approx(400 / 30, abs=1.5)  # held, not far below


def test_rate_limiter_below_one_per_second() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(0.5, 0, clock.monotonic)
    limiter.take("a")
    assert limiter.global_delay() == pytest.approx(2.0, abs=0.01)


@pytest.mark.asyncio
async def test_delivery_reports_update_the_row(store: Store) -> None:  # noqa: F811
    channel = FakeChannel(channel="sms")
    put(store, NewMessage("sms", "+8613800000001", "通知"), NewMessage("sms", "+8613800000002", "通知"))
    await dispatcher(store, channel).run(until_idle=True)
    assert record_delivery_report(store, "sms", "p1", delivered=True)
    assert record_delivery_report(store, "sms", "p2", delivered=False, error="expired")
    assert not record_delivery_report(store, "sms", "nope", delivered=True)
    assert not record_delivery_report(store, "telegram", "p1", delivered=True)
    assert row(store, "+8613800000001").status == MessageStatus.DELIVERED.value
    failed = row(store, "+8613800000002")
    assert failed.status == MessageStatus.FAILED.value and failed.error == "expired"


class ReferenceSender(FakeChannel):
    """Like KannelSender: takes the row id as ``reference`` and returns it as the provider id."""

    async def send(self, recipient: str, text: str, *, reference: str = "") -> SendResult:  # type: ignore[override]
        self.delivered.append((recipient, reference))
        return SendResult(SendOutcome.SENT, provider_id=reference)


@pytest.mark.asyncio
async def test_a_sender_taking_a_reference_gets_the_row_id(store: Store) -> None:  # noqa: F811
    channel = ReferenceSender(channel="sms")
    put(store, NewMessage("sms", "+8613800000001", "通知"))
    await dispatcher(store, channel).run(until_idle=True)
    message = row(store, "+8613800000001")
    assert channel.delivered == [("+8613800000001", str(message.id))]
    assert record_delivery_report(store, "sms", str(message.id), delivered=True)


def test_a_claim_takes_at_most_its_limit(store: Store) -> None:  # noqa: F811
    put(store, *[NewMessage("telegram", str(i), "通知") for i in range(300)])
    first = queue.claim(store, "telegram", "w1", 20, at=NOON)
    second = queue.claim(store, "telegram", "w2", 20, at=NOON)
    assert len(first) == len(second) == 20
    assert {m.id for m in first}.isdisjoint(m.id for m in second)
    assert [m.recipient for m in first] == [str(i) for i in range(20)]  # oldest first


@pytest.mark.asyncio
async def test_a_report_for_a_row_still_being_sent_is_offered_again(store: Store) -> None:  # noqa: F811
    put(store, NewMessage("sms", "+8613800000001", "通知"))
    [claimed] = queue.claim(store, "sms", "w1", 10, at=NOON)
    assert not record_delivery_report(store, "sms", str(claimed.id), delivered=True)


@pytest.mark.asyncio
async def test_graceful_stop_gives_unsent_rows_back(store: Store) -> None:  # noqa: F811
    clock = VirtualClock()
    channel = FakeChannel(max_per_second=1, monotonic=clock.monotonic)
    put(store, *[NewMessage("telegram", str(i), "通知") for i in range(5)])
    worker = dispatcher(store, channel, monotonic=clock.monotonic, sleep=clock.sleep, wall_clock=clock.monotonic)

    async def stop_soon() -> None:
        while len(channel.delivered) < 2:
            await asyncio.sleep(0)
        worker.stop()

    await asyncio.gather(worker.run(), stop_soon())
    with store.session() as session:
        statuses = sorted(session.scalars(select(OutboxMessage.status)).all())
    assert statuses.count(MessageStatus.SENT.value) == len(channel.delivered)
    assert MessageStatus.SENDING.value not in statuses


def test_subscription_rows_are_plain(store: Store) -> None:  # noqa: F811
    add_notice_subscribers(store, ["a", "b"])
    with store.session() as session:
        assert session.scalar(select(Subscription.scope).limit(1)) == "all"
