"""A broadcast survives a crash without duplicates; two dispatchers share one PostgreSQL queue."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from guidebot.outbox import queue
from guidebot.outbox.broadcast import create_broadcast
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import MessageStatus, OutboxMessage
from guidebot.store.db import Store, now, open_store
from tests.outbox.fakes_outbox import FakeChannel, add_notice_subscribers
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401

SUBSCRIBERS = 10_000


def statuses(store: Store) -> Counter[str]:  # noqa: F811
    with store.session() as session:
        return Counter(dict(session.execute(select(OutboxMessage.status, func.count())
                                            .group_by(OutboxMessage.status)).all()))


@pytest.mark.asyncio
async def test_broadcast_killed_at_40_percent_resumes_with_each_recipient_once(
    store: Store, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    recipients = [str(100000 + i) for i in range(SUBSCRIBERS)]
    add_notice_subscribers(store, recipients)
    plan = create_broadcast(store, "本周五下午 3 点闭厅，请合理安排办事时间。")
    assert plan.recipients == {"telegram": SUBSCRIBERS}

    channel = FakeChannel()
    channel.hang_after = int(SUBSCRIBERS * 0.4)  # then every send hangs: the process froze mid-send
    first = Dispatcher(store, {"telegram": channel}, quiet_hours=None, lease_seconds=60)
    monkeypatch.setattr(queue, "release", lambda *args, **kwargs: 0)  # a kill runs no clean-up
    task = asyncio.create_task(first.run())
    while not channel.reached.is_set():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()  # killed: claimed rows stay leased, in-flight sends never finished
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()
    killed = statuses(store)
    assert killed[MessageStatus.SENT.value] == channel.hang_after
    assert killed[MessageStatus.SENDING.value] > 0  # leased to the dead dispatcher

    # Restarted (a new process): once the dead one's lease has run out, its rows come back.
    later = now() + dt.timedelta(seconds=61)
    second = Dispatcher(store, {"telegram": channel}, quiet_hours=None, clock=lambda: later)
    channel.hang_after = None
    await second.run(until_idle=True)

    sent_to = Counter(channel.recipients())
    assert len(sent_to) == SUBSCRIBERS and set(sent_to) == set(recipients)
    assert max(sent_to.values()) == 1  # nobody twice
    assert statuses(store) == Counter({MessageStatus.SENT.value: SUBSCRIBERS})


def test_two_dispatchers_share_one_broadcast_on_postgresql(postgres_schema_url: str) -> None:  # noqa: F811
    from guidebot.store.db import upgrade

    upgrade(postgres_schema_url)
    setup = open_store(postgres_schema_url)
    recipients = [str(200000 + i) for i in range(4000)]
    add_notice_subscribers(setup, recipients)
    create_broadcast(setup, "闭厅通知")
    channel = FakeChannel()  # shared by both: it sees every send of either
    counts: dict[str, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name: str) -> None:
        own = open_store(postgres_schema_url)  # its own engine and connections, like another process
        try:
            dispatcher = Dispatcher(own, {"telegram": channel}, quiet_hours=None, batch_size=50, worker_id=name)
            start.wait()
            stats = asyncio.run(dispatcher.run(until_idle=True))
            counts[name] = stats.attempted
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("d1", "d2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors, errors
        sent_to = Counter(channel.recipients())
        assert set(sent_to) == set(recipients) and max(sent_to.values()) == 1
        assert counts["d1"] > 0 and counts["d2"] > 0, counts  # both took part
        assert counts["d1"] + counts["d2"] == len(recipients)
        assert statuses(setup) == Counter({MessageStatus.SENT.value: len(recipients)})
    finally:
        setup.close()
