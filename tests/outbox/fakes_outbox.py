"""A recording fake channel that fails on cue, a virtual clock, and helpers to fill the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from guidebot.outbox.models import Subscription
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store, now

HANG = "hang"  # the cue for a send that never returns (a timeout, or a process frozen mid-send)


class FakeChannel:
    """Implements outbox.sender.Sender; records every attempt and delivery.

    ``cue(recipient, *outcomes)`` makes the next sends to that recipient return (or raise) those, in
    order: a SendResult, an exception instance, or HANG. Everything else is delivered (SENT).
    """

    def __init__(self, channel: str = "telegram", max_per_second: float = math.inf,
                 per_recipient_interval: float = 0.0, monotonic=None) -> None:
        self.channel = channel
        self.max_per_second = max_per_second
        self.per_recipient_interval = per_recipient_interval
        self._monotonic = monotonic
        self.cues: dict[str, list[object]] = {}
        self.attempts: list[tuple[float, str]] = []
        self.delivered: list[tuple[str, str]] = []
        self.hang_after: int | None = None  # every send after this many deliveries hangs
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def cue(self, recipient: str, *outcomes: object) -> None:
        self.cues.setdefault(recipient, []).extend(outcomes)

    async def send(self, recipient: str, text: str) -> SendResult:
        t = self._monotonic() if self._monotonic else 0.0
        with self._lock:
            self.attempts.append((t, recipient))
            cue = self.cues[recipient].pop(0) if self.cues.get(recipient) else None
            hang = self.hang_after is not None and len(self.delivered) >= self.hang_after
        if cue == HANG or hang:
            await asyncio.Event().wait()
        if isinstance(cue, BaseException):
            raise cue
        if isinstance(cue, SendResult):
            return cue
        with self._lock:
            self.delivered.append((recipient, text))
            number = len(self.delivered)
            if self.hang_after is not None and number >= self.hang_after:
                self.reached.set()
        return SendResult(SendOutcome.SENT, provider_id=f"p{number}")

    def recipients(self) -> list[str]:
        return [recipient for recipient, _ in self.delivered]


@dataclass
class VirtualClock:
    """Monotonic time that only moves when someone sleeps: rate limits tested without waiting."""

    t: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def add_notice_subscribers(store: Store, recipients: Iterable[str], channel: str = "telegram",
                           scope: str = "all", department: str | None = None) -> int:
    """Many notice subscribers at once (bulk insert)."""
    at = now()
    rows = [{"channel": channel, "recipient": r, "kind": "notices", "scope": scope, "case_no": None,
             "department": department, "item_code": None, "consented_at": at, "active": True}
            for r in recipients]
    with store.session() as session:
        session.execute(Subscription.__table__.insert(), rows)
    return len(rows)


def at_noon(day: int = 1) -> dt.datetime:
    return dt.datetime(2025, 12, day, 12, 0)
