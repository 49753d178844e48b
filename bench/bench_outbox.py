"""Benchmark: outbox dispatch overhead, the shared rate limiter's cost, and that a limit is held.

    python bench/bench_outbox.py                       # SQLite and PostgreSQL, 10,000 messages
    python bench/bench_outbox.py --db sqlite --messages 50000
    python bench/bench_outbox.py --real-time           # the 30/s run on the wall clock (~5.5 min)

1. **overhead**: ``--messages`` subscribers, one broadcast (INSERT … SELECT), then a dispatcher
   drains it through a fake channel with no limit: rows dispatched per second — claim, send,
   record, everything but the network.
2. **shared limiter cost**: the same through a fake channel limited to ``--high-rate`` (default
   2,000/s, high enough that the dispatcher, not the limit, is what is measured), once with the
   limit kept in the process (``shared_limits=False``, the old way) and once shared through the
   database (send times reserved from ``outbox_rate``): rows/s of each and their ratio, measured
   a moment apart in this one process.  The shared limiter also spaces sends at
   ``1/(1 + GRACE)`` of the nominal rate, which this run includes (printed as "nominal").
3. **30/s held**: the same number of messages through a fake channel limited to 30/s overall and
   1/s per recipient, local and shared; every send's start time is recorded and the busiest
   one-second window (closed interval) must hold ≤ 30.  By default on a virtual clock (the
   limiter's sleeps move time forward instantly, so 10,000 messages = 333 virtual seconds in a
   few real ones — the real seconds are the dispatcher's own cost, printed as a ratio too);
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
from guidebot.outbox.ratelimit import GRACE
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
        session.execute(text("DELETE FROM outbox_rate"))
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


def run_limited(store: Store, messages: int, rate: float, shared: bool) -> tuple[float, int]:
    """Rows/s through a channel limited to ``rate`` on the wall clock; and the reservations made."""
    fill(store, messages)
    channel = BenchChannel(rate, 0.0, time.monotonic)
    dispatcher = Dispatcher(store, {"telegram": channel}, quiet_hours=None, shared_limits=shared)
    started = time.perf_counter()
    stats = asyncio.run(dispatcher.run(until_idle=True))
    elapsed = time.perf_counter() - started
    assert stats.by_status == {"sent": messages}, stats.by_status
    reservations = sum(limiter.reservations for limiter in dispatcher.shared.values())
    return messages / elapsed, reservations


def run_rate(store: Store, messages: int, real_time: bool, shared: bool) -> tuple[int, float, float]:
    fill(store, messages)
    clock = VirtualClock()
    monotonic = time.monotonic if real_time else clock.monotonic
    wall = time.time if real_time else clock.monotonic
    channel = BenchChannel(30, 1.0, monotonic)
    sleep = asyncio.sleep if real_time else clock.sleep
    dispatcher = Dispatcher(store, {"telegram": channel}, quiet_hours=None, monotonic=monotonic, sleep=sleep,
                            wall_clock=wall, lease_seconds=3600, shared_limits=shared)
    started = time.perf_counter()
    stats = asyncio.run(dispatcher.run(until_idle=True))
    wall_seconds = time.perf_counter() - started
    assert stats.by_status == {"sent": messages}, stats.by_status
    span = max(channel.starts) - min(channel.starts)
    return busiest_second(channel.starts), messages / span if span else math.inf, wall_seconds


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
    parser.add_argument("--high-rate", type=float, default=2000.0,
                        help="the limit of the shared-limiter cost run (sends per second)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    ok = True
    for kind in kinds:
        store, cleanup = open_database(kind, args.pg_url)
        try:
            rate = run_overhead(store, args.messages)
            print(f"{kind:8} overhead: {args.messages} rows dispatched at {rate:,.0f} rows/s (fake channel, no limit)")
            local, _ = run_limited(store, args.messages, args.high_rate, shared=False)
            shared, reservations = run_limited(store, args.messages, args.high_rate, shared=True)
            spaced = args.high_rate / (1 + GRACE + 0.001)
            print(f"{kind:8} {args.high_rate:,.0f}/s limit: in-process {local:,.0f} rows/s (a second's worth at once); "
                  f"shared {shared:,.0f} rows/s in {reservations} reservations = {shared / spaced:.2f} of its even "
                  f"spacing ({spaced:,.0f}/s)")
            clock = "wall clock" if args.real_time else "virtual clock"
            cost = {}
            for mode in ("in-process", "shared"):
                busiest, average, wall_seconds = run_rate(store, args.messages, args.real_time, mode == "shared")
                cost[mode] = wall_seconds / args.messages * 1000
                held = busiest <= 30
                ok &= held
                verdict = "held" if held else "EXCEEDED"
                print(f"{kind:8} 30/s limit, {mode:10}: busiest second {busiest} sends, average {average:.2f}/s over "
                      f"{args.messages} messages ({clock}) — {verdict}; {cost[mode]:.2f} ms real per message")
            if not args.real_time:
                print(f"{kind:8} 30/s limit: dispatcher time per message, shared / in-process = "
                      f"{cost['shared'] / cost['in-process']:.2f}")
        finally:
            store.close()
            cleanup.cleanup()  # type: ignore[attr-defined]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
