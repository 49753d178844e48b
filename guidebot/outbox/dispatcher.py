"""The dispatcher: drains the outbox through the channel senders, within each channel's limits.

One loop per channel in ``senders``.  Each loop claims a small batch (about two seconds' worth at
the channel's rate, so a reply that arrives behind a broadcast waits at most that long), sends it
replies first, and records every outcome as soon as it is known (:func:`queue.record_outcome`).

Limits, per channel: at most ``max_per_second`` sends started in any one-second window, held
across every dispatcher on the database (:class:`~guidebot.outbox.ratelimit.SharedRate`: send
times reserved from one row per channel), and at least ``per_recipient_interval`` seconds
between two sends to one recipient (per process: :class:`RateLimiter`).  A 429 (THROTTLED with
retry-after) pauses the whole channel for that long, in every dispatcher.
``shared_limits=False`` keeps the rate in the process alone (the benchmark's baseline).

Quiet hours (default 21:00–08:00): only replies are claimed; notices and broadcasts wait.

Crash safety: rows stay leased to a dispatcher until ``lease_seconds``; if it dies, another (or
the restarted one) takes them back after the lease.  Only a send that was in flight at the very
moment of a crash can be repeated — the channel accepted it but its outcome was not committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import math
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection

from guidebot.outbox import queue
from guidebot.outbox.models import MessageStatus, Priority
from guidebot.outbox.ratelimit import SharedRate, capacity
from guidebot.outbox.sender import Sender, SendOutcome, SendResult
from guidebot.store.db import Store, now

__all__ = ["DispatchStats", "Dispatcher", "QuietHours", "RateLimiter"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_MARGIN = 0.001
SHORT_WAIT = 0.1  # seconds: a wait this short between two sends need not record outcomes first


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time) in which no bulk message goes out; ``start == end``: none."""

    start: dt.time = dt.time(21, 0)
    end: dt.time = dt.time(8, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"``; ``""``/``"off"`` for no quiet hours."""
        if text.strip().lower() in ("", "off", "none", "0"):
            return cls(dt.time(0), dt.time(0))
        start, _, end = text.partition("-")
        return cls(dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip()))

    def contains(self, at: dt.datetime) -> bool:
        t = at.time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, at: dt.datetime) -> dt.datetime:
        """When the quiet window containing ``at`` ends (``at`` itself if outside)."""
        if not self.contains(at):
            return at
        end = dt.datetime.combine(at.date(), self.end)
        return end if end > at else end + dt.timedelta(days=1)


class RateLimiter:
    """Overall rate (sliding one-second window) plus a minimum interval per recipient."""

    def __init__(self, max_per_second: float, per_recipient_interval: float, monotonic: Monotonic) -> None:
        self.unlimited = not max_per_second or max_per_second <= 0 or math.isinf(max_per_second)
        if self.unlimited:
            self.capacity, self.window = 0, 0.0
        elif max_per_second >= 1:
            self.capacity, self.window = int(max_per_second), 1.0
        else:
            self.capacity, self.window = 1, 1.0 / max_per_second
        self.interval = max(0.0, per_recipient_interval or 0.0)
        self._monotonic = monotonic
        self._starts: deque[float] = deque()
        self._last: dict[str, float] = {}
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """The channel asked us to slow down: nothing starts for ``seconds``."""
        self._paused_until = max(self._paused_until, self._monotonic() + max(0.0, seconds))

    def global_delay(self) -> float:
        t = self._monotonic()
        delay = self._paused_until - t
        if not self.unlimited and len(self._starts) >= self.capacity:
            # Strictly more than a window after the oldest of the last `capacity` starts: no closed
            # one-second interval ever holds more than `capacity` sends (1 ms margin for rounding).
            delay = max(delay, self._starts[0] + self.window + _MARGIN - t)
        return max(0.0, delay)

    def recipient_delay(self, recipient: str) -> float:
        last = self._last.get(recipient)
        return 0.0 if last is None else max(0.0, last + self.interval - self._monotonic())

    def take(self, recipient: str) -> None:
        t = self._monotonic()
        if not self.unlimited:
            self._starts.append(t)
            while len(self._starts) > self.capacity:
                self._starts.popleft()
        if self.interval:
            self._last[recipient] = t
            if len(self._last) > 50_000:  # forget recipients whose interval has long passed
                self._last = {r: s for r, s in self._last.items() if s + self.interval > t}


@dataclass
class DispatchStats:
    """What one dispatcher did, by resulting row status."""

    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, status: MessageStatus) -> None:
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1

    @property
    def attempted(self) -> int:
        return sum(self.by_status.values())


class Dispatcher:
    """Send queued outbox rows through ``senders`` (``{channel: Sender}``) until stopped.

    ``clock`` gives the database time (naive CST); ``monotonic``/``sleep`` drive the rate limits,
    ``wall_clock`` is the time every dispatcher shares for the shared limit (Unix time; tests and
    the benchmark substitute one virtual clock for all three).
    """

    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        *,
        quiet_hours: QuietHours | None = QuietHours(),
        batch_size: int = 200,
        lease_seconds: float = 120.0,
        poll_interval: float = 1.0,
        send_timeout: float = 30.0,
        concurrency: int = 32,
        record_batch: int = 50,
        max_attempts: int = queue.MAX_ATTEMPTS,
        worker_id: str | None = None,
        clock: Clock = now,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Monotonic = time.time,
        shared_limits: bool = True,
    ) -> None:
        self.store = store
        self.senders = dict(senders)
        self.quiet_hours = quiet_hours
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.send_timeout = send_timeout
        self.concurrency = max(1, concurrency)
        self.record_batch = max(1, record_batch)
        self.max_attempts = max_attempts
        self.worker_id = worker_id or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.wall_clock = wall_clock
        # The overall rate comes from the database when shared; the local limiter then keeps only
        # the per-recipient interval and the 429 pause of this process.
        self.shared: dict[str, SharedRate] = {
            channel: SharedRate(store, channel, sender.max_per_second, wall_clock=wall_clock)
            for channel, sender in self.senders.items()
            if shared_limits and capacity(sender.max_per_second) is not None
        }
        self.limiters = {
            channel: RateLimiter(math.inf if channel in self.shared else sender.max_per_second,
                                 sender.per_recipient_interval, monotonic)
            for channel, sender in self.senders.items()
        }
        self.stats = DispatchStats()
        # Called before every poll (e.g. catching up case notifications): plain callables.
        self.housekeeping: list[Callable[[], object]] = []
        self._recorder: Connection | None = None
        self._outcomes: list[tuple[queue.Claimed, MessageStatus, dict[str, object]]] = []
        self._unrecorded_since = 0.0  # monotonic time of the oldest outcome not yet recorded

        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        # Optional keywords a sender may take: the row id, and which attempt at the row this is.
        self._keywords = {
            channel: {"reference", "attempt"} & set(inspect.signature(sender.send).parameters)
            for channel, sender in self.senders.items()
        }

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the messages already started, give the rest of the batch back, and return."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Something was enqueued in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, *, until_idle: bool = False) -> DispatchStats:
        """Dispatch until :meth:`stop` (or, with ``until_idle``, until nothing is ready to send)."""
        from guidebot.outbox.broadcast import release_due_broadcasts

        try:
            while not self._stopping.is_set():
                release_due_broadcasts(self.store, at=self.clock())
                for hook in self.housekeeping:
                    hook()
                sent = await asyncio.gather(*(self.drain_once(channel) for channel in self.senders))
                if sum(sent):
                    continue
                if until_idle:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        finally:
            self.flush()
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None
            for shared in self.shared.values():
                shared.close()
        return self.stats

    # -- one batch ---------------------------------------------------------------------------

    def _claim_size(self, channel: str) -> int:
        limit = capacity(self.senders[channel].max_per_second)
        if limit is None:
            return self.batch_size
        per_second = limit[0] / limit[1]
        # About two seconds' worth, and well inside the lease.
        return max(1, min(self.batch_size, math.ceil(per_second * 2), int(per_second * self.lease_seconds / 3)))

    async def drain_once(self, channel: str) -> int:
        """Claim one batch of ``channel`` and send it; returns how many rows were claimed."""
        if self._stopping.is_set():
            return 0
        at = self.clock()
        quiet = self.quiet_hours is not None and self.quiet_hours.contains(at)
        batch = queue.claim(self.store, channel, self.worker_id, self._claim_size(channel), at=at,
                            lease_seconds=self.lease_seconds, max_priority=Priority.REPLY if quiet else None)
        if not batch:
            return 0
        sender, limiter = self.senders[channel], self.limiters[channel]
        shared = self.shared.get(channel)
        pending = list(batch)
        late: list[queue.Claimed] = []  # started after their reserved time ran out: not sent, retried
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                if late:
                    pending.extend(late)
                    late.clear()
                    pending.sort(key=lambda m: (m.priority, m.id))
                if not pending:
                    if not inflight:
                        break
                    self.flush()
                    done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                    continue
                index, wait = self._next_ready(pending, limiter)
                if index is None:
                    self.flush()
                    await self.sleep(wait)
                    continue
                delay = limiter.global_delay()
                if delay > 0:
                    self.flush()
                    await self.sleep(delay)
                    continue
                deadline: float | None = None
                if shared is not None:
                    start = shared.next_start()
                    if start is None:
                        shared.reserve(self._ready_count(pending, limiter, shared.batch))
                        continue
                    wait = start - shared.now()
                    if wait > 0:
                        # Shared send times are evenly spaced, so this wait comes between every two
                        # sends: recording each time would be a commit per send.  Short waits
                        # record only what is older than SHORT_WAIT, so a crash repeats at most
                        # that much more than the sends in flight.
                        if wait >= SHORT_WAIT or self._unrecorded_since + SHORT_WAIT <= self.monotonic():
                            self.flush()
                        await self.sleep(wait)
                        continue  # the ready message may have changed meanwhile
                    deadline = shared.take()
                message = pending.pop(index)
                limiter.take(message.recipient)
                inflight.add(asyncio.create_task(self._send_one(sender, limiter, message, deadline, late)))
                await asyncio.sleep(0)  # let the send start now, at the time the limiter counted it
                if len(self._outcomes) >= self.record_batch:
                    self.flush()
                if len(inflight) >= self.concurrency:
                    self.flush()
                    done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
            if inflight:
                self.flush()
                for task in await asyncio.gather(*inflight, return_exceptions=True):
                    if isinstance(task, BaseException):
                        raise task
                inflight = set()
            self.flush()
        finally:
            # Rows never started go straight back (a graceful stop, an error, a cancellation);
            # after a hard kill they come back when their lease runs out.
            unsent = pending + late
            if unsent:
                queue.release(self.store, [m.id for m in unsent], self.worker_id)
        return len(batch)

    @staticmethod
    def _ready_count(pending: list[queue.Claimed], limiter: RateLimiter, at_most: int) -> int:
        """How many rows could start now (their recipient's interval has passed), up to ``at_most``:
        the shared send times to reserve, so few go unused."""
        ready = 0
        for message in pending:
            if limiter.recipient_delay(message.recipient) <= 0:
                ready += 1
                if ready >= at_most:
                    break
        return ready

    @staticmethod
    def _next_ready(pending: list[queue.Claimed], limiter: RateLimiter) -> tuple[int | None, float]:
        earliest = math.inf
        for index, message in enumerate(pending):
            delay = limiter.recipient_delay(message.recipient)
            if delay <= 0:
                return index, 0.0
            earliest = min(earliest, delay)
        return None, earliest

    async def _send_one(self, sender: Sender, limiter: RateLimiter, message: queue.Claimed,
                        deadline: float | None = None, late: list[queue.Claimed] | None = None) -> None:
        if deadline is not None and late is not None and self.wall_clock() > deadline:
            # Checked in the same step as the send starts (nothing awaits in between): a send
            # started later than its reserved time could crowd the next dispatcher's sends.
            late.append(message)
            return
        try:
            keywords = self._keywords.get(message.channel, set())
            extra: dict[str, object] = {}
            if "reference" in keywords:
                extra["reference"] = str(message.id)
            if "attempt" in keywords:
                extra["attempt"] = message.attempts
            call = sender.send(message.recipient, message.text, **extra)  # type: ignore[call-arg]
            async with asyncio.timeout(self.send_timeout):  # no extra task: the send starts right away
                result = await call
        except TimeoutError:
            result = SendResult(SendOutcome.RETRY, error="timeout")
        except Exception as error:  # a sender bug or a network error it did not map
            log.warning("outbox: %s sender raised %s for row %s", message.channel, type(error).__name__, message.id)
            result = SendResult(SendOutcome.RETRY, error=f"{type(error).__name__}")
        if result.outcome is SendOutcome.THROTTLED:
            pause = result.retry_after if result.retry_after is not None else 1.0
            limiter.pause(pause)
            shared = self.shared.get(message.channel)
            if shared is not None:
                shared.pause(pause)
        if not self._outcomes:
            self._unrecorded_since = self.monotonic()
        self._outcomes.append(queue.outcome_record(message, self.worker_id, result, at=self.clock(),
                                                   max_attempts=self.max_attempts))

    def flush(self) -> None:
        """Record the outcomes not yet written (before every wait, and every ``record_batch``)."""
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        if self._recorder is None:
            self._recorder = queue.recording_connection(self.store)
        for status in queue.record_outcomes(self.store, batch, connection=self._recorder):
            self.stats.add(status)
