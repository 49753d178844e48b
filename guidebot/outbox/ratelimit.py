"""A channel's rate limit shared by every dispatcher process on one database.

Each dispatcher used to count its own sends, so N dispatchers sent N times the rate.  Now the
send times themselves are handed out by the database: the row ``outbox_rate(channel, next_at)``
is the earliest time the channel's next send may start, and a dispatcher reserves ``n`` sends at
once with one atomic upsert::

    INSERT INTO outbox_rate VALUES (:channel, :now + n·T)
    ON CONFLICT (channel) DO UPDATE SET next_at = max(outbox_rate.next_at, :now) + n·T
    RETURNING next_at

which gives it the start times ``next_at − n·T, …, next_at − T``.  Every reserved time, of any
dispatcher, is at least ``T`` after the one before (PostgreSQL locks the row for the update;
SQLite serialises writers), and a reservation is one round trip for about half a second of
sends, so the overhead stays small.  There are no windows to clean up: one row per channel.

Why the spacing ``T = (W + GRACE + 1 ms) / C`` for ``C`` sends per ``W`` seconds (``C`` = the
rate, ``W`` = 1 s; below 1/s, one send per ``1/rate`` s): a send may start at its reserved time
``s`` or up to ``GRACE`` later, never earlier and never later (a reserved time the dispatcher
could not use in time is dropped, and the message waits for a new one).  Sends starting in a
closed interval of ``W`` seconds then have reserved times within ``W + GRACE`` seconds, and fewer
than ``(W + GRACE) / T + 1`` of them, i.e. at most ``C``.  The price is a little throughput:
``W / (W + GRACE)`` of the nominal rate (95 % with the 50 ms grace).

The times are Unix time (``time.time()``) on each dispatcher's host: processes on one machine
share it exactly; dispatchers on several hosts need NTP, and the limit holds up to their clock
difference (milliseconds).  A 429 from the channel moves ``next_at`` past the pause for all.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Connection, func

from guidebot.outbox.models import ChannelRate
from guidebot.outbox.queue import recording_connection
from guidebot.store.db import Store

__all__ = ["GRACE", "SharedRate", "capacity"]

log = logging.getLogger(__name__)

GRACE = 0.05  # how late after its reserved time a send may still start (event-loop lag)
_MARGIN = 0.001  # rounding
RESERVE_SECONDS = 0.5  # one reservation covers about this much of the channel's time


def capacity(max_per_second: float) -> tuple[int, float] | None:
    """``(sends, seconds)`` of a channel's limit, or None when it has none."""
    if not max_per_second or max_per_second <= 0 or math.isinf(max_per_second):
        return None
    if max_per_second >= 1:
        return int(max_per_second), 1.0
    return 1, 1.0 / max_per_second


class SharedRate:
    """The send times one dispatcher reserved for one channel, from the shared ``outbox_rate`` row.

    Not thread-safe: one per dispatcher and channel, used from the dispatcher's event loop.
    """

    def __init__(self, store: Store, channel: str, max_per_second: float, *,
                 wall_clock: Callable[[], float] = time.time, grace: float = GRACE) -> None:
        limit = capacity(max_per_second)
        if limit is None:
            raise ValueError(f"channel {channel} has no rate limit to share")
        sends, window = limit
        self.store = store
        self.channel = channel
        self.grace = grace
        self.spacing = (window + grace + _MARGIN) / sends
        self.batch = max(1, math.ceil(RESERVE_SECONDS / self.spacing))
        self.wall_clock = wall_clock
        self.times: deque[float] = deque()
        self.reservations = 0  # round trips, for the benchmark
        self.dropped = 0  # reserved times not used in time
        self._connection: Connection | None = None

    def now(self) -> float:
        return self.wall_clock()

    def next_start(self) -> float | None:
        """The earliest reserved time still usable, or None (reserve more)."""
        limit = self.now() - self.grace
        while self.times and self.times[0] < limit:
            self.times.popleft()
            self.dropped += 1
        return self.times[0] if self.times else None

    def take(self) -> float:
        """Use the earliest reserved time; returns the deadline by which the send must start."""
        return self.times.popleft() + self.grace

    def reserve(self, wanted: int) -> None:
        """Reserve ``wanted`` (at most :attr:`batch`) more send times for this dispatcher."""
        n = max(1, min(wanted, self.batch))
        span = n * self.spacing
        now = self.now()
        end = self._upsert(now + span, self._greatest(ChannelRate.next_at, now) + span)
        self.reservations += 1
        first = end - span
        self.times.extend(first + i * self.spacing for i in range(n))

    def pause(self, seconds: float) -> None:
        """The channel said slow down: no dispatcher's next reservation starts before then."""
        until = self.now() + max(0.0, seconds)
        self._upsert(until, self._greatest(ChannelRate.next_at, until))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _greatest(self, column: object, value: float) -> object:
        # SQLite's two-argument max() is PostgreSQL's greatest().
        return (func.greatest if self.store.dialect == "postgresql" else func.max)(column, value)

    def _upsert(self, fresh: float, moved: object) -> float:
        if self._connection is None:
            # Its own connection; on PostgreSQL its commits do not wait for the WAL flush (only a
            # crash of the server itself could forget a reservation made in its last instant).
            self._connection = recording_connection(self.store)
        statement = (
            self.store.insert_for(ChannelRate)
            .values(channel=self.channel, next_at=fresh)
            .on_conflict_do_update(index_elements=["channel"], set_={"next_at": moved})
            .returning(ChannelRate.next_at)
        )
        with self._connection.begin():
            return float(self._connection.execute(statement).scalar_one())
