"""A channel's rate limit holds across dispatcher processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from guidebot.outbox.broadcast import create_broadcast
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import ChannelRate, OutboxMessage
from guidebot.outbox.ratelimit import SharedRate
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store, open_store, upgrade
from tests.outbox.fakes_outbox import FakeChannel, VirtualClock, add_notice_subscribers
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
LIMIT = 20
ROWS = 240
WORKERS = 3


def busiest_second(times: list[float]) -> int:
    """The most sends started in any closed one-second interval."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_busiest_second_counts_a_closed_interval() -> None:
    assert busiest_second([0.0, 0.5, 1.0, 1.5]) == 3
    assert busiest_second([0.0, 1.0001, 2.1]) == 1


def run_workers(url: str, tmp_path: Path, *extra: str) -> list[list[tuple[float, str]]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = []
    for n in range(WORKERS):
        args = [url, str(LIMIT), str(tmp_path / f"out{n}"), str(tmp_path / f"ready{n}"), str(tmp_path / "go"), *extra]
        processes.append(subprocess.Popen([sys.executable, "-m", "tests.outbox.shared_limit_worker", *args],
                                          cwd=REPO, env=env))
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{n}").exists() for n in range(WORKERS)):
            assert time.monotonic() < deadline, "dispatcher processes did not start"
            assert all(p.poll() is None for p in processes), "a dispatcher process died at start"
            time.sleep(0.05)
        (tmp_path / "go").touch()
        for process in processes:
            assert process.wait(timeout=300) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = []
    for n in range(WORKERS):
        lines = (tmp_path / f"out{n}").read_text().split()
        results.append([(float(t), r) for t, r in zip(lines[::2], lines[1::2], strict=True)])
    return results


def test_three_dispatcher_processes_share_one_limit(postgres_schema_url: str, tmp_path: Path) -> None:  # noqa: F811
    upgrade(postgres_schema_url)
    store = open_store(postgres_schema_url)  # noqa: F811
    try:
        recipients = [str(500000 + i) for i in range(ROWS)]
        add_notice_subscribers(store, recipients)
        assert create_broadcast(store, "本周五下午3点闭厅").recipients == {"telegram": ROWS}
        per_worker = run_workers(postgres_schema_url, tmp_path)
        with store.session() as session:
            statuses = dict(session.execute(select(OutboxMessage.status, func.count())
                                            .group_by(OutboxMessage.status)).all())
    finally:
        store.close()
    sends = [send for worker in per_worker for send in worker]
    assert Counter(r for _, r in sends) == Counter(recipients)  # every row, once
    assert statuses == {"sent": ROWS}
    assert all(worker for worker in per_worker), "every process took part"
    # The upper bound only: a busy machine may make it slower, never faster than the limit.
    assert busiest_second([t for t, _ in sends]) <= LIMIT


@pytest.mark.asyncio
async def test_two_dispatchers_in_one_loop_share_the_limit(store: Store) -> None:  # noqa: F811
    # Each has its own in-process limiter at 30/s: without the shared one they would send 60/s.
    clock = VirtualClock()
    channels = [FakeChannel(max_per_second=30, monotonic=clock.monotonic) for _ in range(2)]
    add_notice_subscribers(store, [str(i) for i in range(300)])
    create_broadcast(store, "通知")
    workers = [Dispatcher(store, {"telegram": channel}, quiet_hours=None, monotonic=clock.monotonic,
                          sleep=clock.sleep, wall_clock=clock.monotonic, batch_size=20) for channel in channels]
    await asyncio.gather(*(worker.run(until_idle=True) for worker in workers))
    times = [t for channel in channels for t, _ in channel.attempts]
    assert len(times) == 300 and all(channel.attempts for channel in channels)
    assert busiest_second(times) <= 30
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ChannelRate)) == 1  # one row per channel


@pytest.mark.asyncio
async def test_a_429_in_one_dispatcher_pauses_the_other(store: Store) -> None:  # noqa: F811
    clock = VirtualClock()
    first, second = (FakeChannel(max_per_second=30, monotonic=clock.monotonic) for _ in range(2))
    first.cue("a", SendResult(SendOutcome.THROTTLED, retry_after=5))
    add_notice_subscribers(store, ["a", "b"])
    create_broadcast(store, "通知")

    def worker(channel: FakeChannel) -> Dispatcher:
        return Dispatcher(store, {"telegram": channel}, quiet_hours=None, monotonic=clock.monotonic,
                          sleep=clock.sleep, wall_clock=clock.monotonic, batch_size=1, concurrency=1)

    await worker(first).run(until_idle=True)  # sends to "a" (429), or "a" then "b"
    await worker(second).run(until_idle=True)
    later = [t for channel in (first, second) for t, _ in channel.attempts[1:]]
    later += [t for t, r in second.attempts[:1]]
    assert later and min(later) >= 5.0


def test_a_send_time_not_used_in_time_is_dropped(store: Store) -> None:  # noqa: F811
    clock = VirtualClock()
    shared = SharedRate(store, "telegram", 10, wall_clock=clock.monotonic)
    try:
        shared.reserve(3)
        assert shared.next_start() == pytest.approx(0.0)
        clock.t = 0.5  # the loop was busy: the first times are gone, not crowded into the next second
        start = shared.next_start()
        assert start is None or start >= 0.5 - shared.grace
        assert shared.dropped >= 2
        other = SharedRate(store, "telegram", 10, wall_clock=clock.monotonic)
        other.reserve(1)
        assert other.times[0] >= 3 * shared.spacing - 1e-9  # after everything already reserved
        other.close()
    finally:
        shared.close()
