"""Benchmark: outbox dispatch overhead, and that a channel's rate limit is held.

    python bench/bench_outbox.py                       # SQLite and PostgreSQL, 10,000 messages
    python bench/bench_outbox.py --db sqlite --messages 50000
    python bench/bench_outbox.py --real-time           # the 30/s run on the wall clock (~5.5 min)

1. **overhead**: ``--messages`` subscribers, one broadcast (INSERT … SELECT), then a dispatcher
   drains it through a fake channel with no limit: rows dispatched per second — claim, send,
   record, everything but the network.
2. **30/s held**: the same number of messages through a fake channel limited to 30/s overall and
   1/s per recipient; every send's start time is recorded and the busiest one-second window
   (closed interval) must hold ≤ 30.  By default on a virtual clock (the limiter's sleeps move
   time forward instantly, so 10,000 messages = 333 virtual seconds in a few real ones);
   ``--real-time`` uses the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guidebot.outbox.broadcast import create_broadcast
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import Subscription
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store, now, open_store, upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class BenchChannel:
    channel = "telegram"

    def __init__(self, max_per_second: float, per_recipient_interval: float, clock) -> None:
        self.max_per_second = max_per_second
        self.per_recipient_interval = per_recipient_interval
        self.clock = clock
        self.starts: list[float] = []

    async def send(self, recipient: str, text: str) -> SendResult:
        self.starts.append(self.clock())
        return SendResult(SendOutcome.SENT, provider_id=recipient)


class VirtualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def busiest_second(starts: list[float]) -> int:
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] < t - 1.0:  # closed window [t - 1, t]
            j += 1
        best = max(best, i - j + 1)
    return best


def fill(store: Store, messages: int) -> None:
    at = now()
    rows = [{"channel": "telegram", "recipient": str(10_000_000 + i), "kind": "notices", "scope": "all",
             "case_no": None, "department": None, "item_code": None, "consented_at": at, "active": True}
            for i in range(messages)]
    with store.session() as session:
        session.execute(text("DELETE FROM outbox"))
        session.execute(text("DELETE FROM broadcasts"))
        session.execute(text("DELETE FROM subscriptions"))
        session.execute(Subscription.__table__.insert(), rows)
    create_broadcast(store, "本周五下午 3 点闭厅，请合理安排办事时间。")


def run_overhead(store: Store, messages: int) -> float:
    fill(store, messages)
    channel = BenchChannel(math.inf, 0.0, time.monotonic)
    dispatcher = Dispatcher(store, {"telegram": channel}, quiet_hours=None)
    started = time.perf_counter()
    stats = asyncio.run(dispatcher.run(until_idle=True))
    elapsed = time.perf_counter() - started
    assert stats.by_status == {"sent": messages}, stats.by_status
    return messages / elapsed


def run_rate(store: Store, messages: int, real_time: bool) -> tuple[int, float, float]:
    fill(store, messages)
    clock = VirtualClock()
    monotonic = time.monotonic if real_time else clock.monotonic
    channel = BenchChannel(30, 1.0, monotonic)
    sleep = asyncio.sleep if real_time else clock.sleep
    dispatcher = Dispatcher(store, {"telegram": channel}, quiet_hours=None, monotonic=monotonic, sleep=sleep,
                            lease_seconds=3600)
    started = time.perf_counter()
    stats = asyncio.run(dispatcher.run(until_idle=True))
    wall = time.perf_counter() - started
    assert stats.by_status == {"sent": messages}, stats.by_status
    span = max(channel.starts) - min(channel.starts)
    return busiest_second(channel.starts), messages / span if span else math.inf, wall


def open_database(kind: str, pg_url: str) -> tuple[Store, object]:
    if kind == "sqlite":
        folder = tempfile.TemporaryDirectory()
        return open_store(f"sqlite:///{folder.name}/bench.sqlite3"), folder
    schema = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}options={quote(f'-csearch_path={schema}')}"
    upgrade(url)

    class Dropper:
        def cleanup(self) -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    return open_store(url), Dropper()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--real-time", action="store_true", help="run the 30/s test on the wall clock")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    ok = True
    for kind in kinds:
        store, cleanup = open_database(kind, args.pg_url)
        try:
            rate = run_overhead(store, args.messages)
            print(f"{kind:8} overhead: {args.messages} rows dispatched at {rate:,.0f} rows/s (fake channel, no limit)")
            busiest, average, wall = run_rate(store, args.messages, args.real_time)
            held = busiest <= 30
            ok &= held
            clock = "wall clock" if args.real_time else "virtual clock"
            print(f"{kind:8} 30/s limit: busiest second {busiest} sends, average {average:.2f}/s over "
                  f"{args.messages} messages ({clock}, {wall:.1f} s real) — {'held' if held else 'EXCEEDED'}")
        finally:
            store.close()
            cleanup.cleanup()  # type: ignore[attr-defined]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
