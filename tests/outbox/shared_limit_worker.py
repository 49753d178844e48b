"""One dispatcher process for test_shared_limit: drains the outbox through a recording channel.

    python -m tests.outbox.shared_limit_worker DB_URL LIMIT OUT_FILE READY_FILE GO_FILE [--local]

Opens the store, touches READY_FILE, waits for GO_FILE (so every worker starts on a full queue),
dispatches until no row is queued or being sent, and writes one line per send start: ``<unix time> <recipient>``.
``--local`` uses the old per-process limiter (to see the test fail without the shared one).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import MessageStatus, OutboxMessage
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store, open_store


class RecordingChannel:
    channel = "telegram"
    per_recipient_interval = 1.0

    def __init__(self, max_per_second: float) -> None:
        self.max_per_second = max_per_second
        self.starts: list[tuple[float, str]] = []

    async def send(self, recipient: str, text: str) -> SendResult:
        self.starts.append((time.time(), recipient))  # the moment the send starts, on the shared clock
        await asyncio.sleep(0.002)  # a little network time
        return SendResult(SendOutcome.SENT, provider_id=recipient)


def unfinished(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]))) or 0


def main(argv: list[str]) -> int:
    url, limit, out, ready, go = argv[:5]
    store = open_store(url)
    channel = RecordingChannel(float(limit))
    dispatcher = Dispatcher(store, {"telegram": channel}, quiet_hours=None, shared_limits="--local" not in argv)
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.01)
    try:
        # Until the whole broadcast is out, not just until one claim comes back empty: on
        # PostgreSQL a claim racing another one can return no rows while others remain queued.
        while unfinished(store):
            asyncio.run(dispatcher.run(until_idle=True))
            time.sleep(0.05)
    finally:
        store.close()
    Path(out).write_text("".join(f"{t:.6f} {r}\n" for t, r in channel.starts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
