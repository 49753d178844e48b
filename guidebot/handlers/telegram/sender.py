"""The outbox's Telegram sender: one message to one chat, within Telegram's limits.

Limits it keeps on its own, whatever pace the caller asks for (Telegram's Bot FAQ, "My bot is
hitting limits"; channels.md §1.4):

- **≤ 30 messages in any second overall** — a sliding window (not a leaky bucket, which lets a
  burst plus the steady rate exceed 30 within one second) that counts a send from the start of
  its request until a second after its answer, so network jitter or a busy event loop cannot push
  31 requests into one second at Telegram's end;
- **≤ 1 message per second to one chat** — a chat's next message starts a second after the
  previous one was answered;
- **429 RetryAfter** — every send waits until `retry_after` has passed, and the throttled message
  is returned as THROTTLED (with `retry_after`) for the dispatcher to send again.

Outcomes (the dispatcher maps them to outbox statuses in one place):

| Telegram says | outcome |
|---|---|
| ok | SENT, with the message id |
| 429 RetryAfter | THROTTLED, retry_after |
| 403 Forbidden (bot blocked by the user, user deactivated) | STOPPED |
| 400 "chat not found" | STOPPED (the chat cannot be reached any more) |
| other 400 BadRequest, ChatMigrated | FAILED |
| TimedOut, NetworkError (5xx, connection errors), 401/404 InvalidToken | RETRY |

The text is sent as plain text (no parse mode: nothing in it can break the message); a text
longer than 4,096 characters goes as several messages split on line boundaries, 1 s apart.
Errors carry no token and no personal data.

A case's final notice invites a 好差评 rating "回复数字：1 非常满意 …" (plain text, for SMS). Here it
gets the five levels as inline buttons instead (see `ratings.py`). Whether a message is such an
invitation is the outbox row's to say (its kind, and the case in its dedupe key): with the store,
the sender reads the row the dispatcher names by `reference`; without it, the text alone decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from guidebot.handlers.telegram.config import DEFAULT_BASE_URL, TelegramConfig, normalize_base_url
from guidebot.handlers.telegram.ratings import case_rating_keyboard, might_invite, rating_invitation
from guidebot.handlers.telegram.render import MAX_MESSAGE_LENGTH, split_lines
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.privacy import mask_text

__all__ = ["SAFETY_MARGIN", "TelegramSender", "classify"]

log = logging.getLogger(__name__)

SAFETY_MARGIN = 0.01  # seconds added to each interval, for clock granularity


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _retry_after(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns about int vs timedelta; either is fine here
        warnings.simplefilter("ignore")
        return _seconds(error.retry_after)


def classify(error: Exception) -> SendResult:
    """The outcome for an error Telegram (or the connection) gave for one message."""
    message = mask_text(str(error))[:200]
    if isinstance(error, RetryAfter):
        return SendResult(SendOutcome.THROTTLED, retry_after=_retry_after(error), error=message)
    if isinstance(error, Forbidden):
        return SendResult(SendOutcome.STOPPED, error=message)
    if isinstance(error, ChatMigrated):
        return SendResult(SendOutcome.FAILED, error="group chat migrated to a supergroup")
    if isinstance(error, BadRequest):
        if "chat not found" in str(error).lower():
            return SendResult(SendOutcome.STOPPED, error=message)
        return SendResult(SendOutcome.FAILED, error=message)
    if isinstance(error, InvalidToken):
        # Our configuration, not the message: keep it queued until the token is fixed.
        return SendResult(SendOutcome.RETRY, error="the Bot API rejected the token")
    if isinstance(error, TimedOut | NetworkError):
        return SendResult(SendOutcome.RETRY, error=message)
    if isinstance(error, TelegramError):
        return SendResult(SendOutcome.FAILED, error=message)
    return SendResult(SendOutcome.RETRY, error=type(error).__name__)


class TelegramSender:
    """`guidebot.outbox.sender.Sender` for Telegram: `recipient` is the chat id as text.

    A send occupies its rate slot from the moment its request starts until `window` seconds after
    its answer came back. Telegram receives a request somewhere between those two moments, so no
    interval of one second at Telegram's end can ever see more than `max_per_second` of them —
    whatever the network or a busy event loop does to the timing. Likewise a chat's next message
    starts only `per_recipient_interval` after its previous one was answered.
    """

    channel = "telegram"

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        max_per_second: float = 30.0,
        per_recipient_interval: float = 1.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        store: Any = None,
    ) -> None:
        """`store` (the outbox's database) lets the sender read an outbox row's kind and dedupe key,
        so a rating invitation is recognised by the row rather than by its wording."""
        self.max_per_second = max_per_second
        self.per_recipient_interval = per_recipient_interval
        self._capacity = max(1, int(max_per_second))
        self._window = (self._capacity / max_per_second if max_per_second >= 1 else 1 / max_per_second) + SAFETY_MARGIN
        self._clock = clock
        request = HTTPXRequest(connection_pool_size=self._capacity + 2, read_timeout=timeout, write_timeout=timeout,
                               connect_timeout=timeout, pool_timeout=timeout)
        self._bot = Bot(token, base_url=normalize_base_url(base_url), request=request)
        self._store = store
        self._started = False
        self._start_lock = asyncio.Lock()
        self._slot_lock = asyncio.Lock()
        self._slot_freed = asyncio.Event()
        self._in_flight = 0
        self._answered_at: deque[float] = deque()
        self._chat_answered_at: dict[str, float] = {}
        self._chat_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._paused_until = 0.0

    @classmethod
    def from_config(cls, config: TelegramConfig, **kwargs: Any) -> TelegramSender:
        """From the channel's settings; pass `store=` to recognise rating invitations by their row."""
        return cls(config.token, config.base_url, **kwargs)

    async def __aenter__(self) -> TelegramSender:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._started:
            await self._bot.shutdown()
            self._started = False

    @property
    def paused_until(self) -> float:
        """The clock time before which nothing is sent (after a 429), or 0."""
        return self._paused_until

    async def send(self, recipient: str, text: str, *, reference: str = "") -> SendResult:
        """Send `text` to the chat `recipient`; `reference` is the outbox row's id (the dispatcher
        passes it to senders that take it)."""
        try:
            chat_id = int(recipient)
        except ValueError:
            return SendResult(SendOutcome.FAILED, error="not a Telegram chat id")
        keyboard: InlineKeyboardMarkup | None = None
        if might_invite(text):
            kind, key = await self._row(reference)
            invitation = rating_invitation(text, kind, key)
            if invitation is not None:
                text, keyboard = invitation.text, case_rating_keyboard(invitation.case_no)
        parts = split_lines(text.split("\n"), MAX_MESSAGE_LENGTH, markup=False) or [text or " "]
        first_id = ""
        for number, part in enumerate(parts, 1):
            result = await self._send_one(chat_id, str(chat_id), part, keyboard if number == len(parts) else None)
            if result.outcome is not SendOutcome.SENT:
                return result
            first_id = first_id or result.provider_id
        return SendResult(SendOutcome.SENT, provider_id=first_id)

    async def _row(self, reference: str) -> tuple[str | None, str | None]:
        """(kind, dedupe_key) of the outbox row `reference`, or (None, None) when unknown."""
        if self._store is None or not reference.isdigit():
            return None, None
        try:
            return await asyncio.to_thread(self._read_row, int(reference))
        except Exception as error:  # the text still decides; a lookup must never stop a notice
            log.warning("telegram sender: outbox row %s could not be read (%s)", reference, type(error).__name__)
            return None, None

    def _read_row(self, row_id: int) -> tuple[str | None, str | None]:
        from sqlalchemy import select

        from guidebot.outbox.models import OutboxMessage

        with self._store.session() as session:
            row = session.execute(select(OutboxMessage.kind, OutboxMessage.dedupe_key)
                                  .where(OutboxMessage.id == row_id)).first()
        return (row.kind, row.dedupe_key) if row is not None else (None, None)

    async def _send_one(self, chat_id: int, key: str, text: str,
                        keyboard: InlineKeyboardMarkup | None = None) -> SendResult:
        await self._start()
        lock, users = self._chat_locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:  # one message per chat in flight; the next waits for its interval
                return await self._send_in_turn(chat_id, key, text, keyboard)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._chat_locks[key]

    async def _send_in_turn(self, chat_id: int, key: str, text: str,
                            keyboard: InlineKeyboardMarkup | None) -> SendResult:
        answered = self._chat_answered_at.get(key)
        if answered is not None:
            wait = answered + self.per_recipient_interval + SAFETY_MARGIN - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._take_slot()
        try:
            message = await self._bot.send_message(
                chat_id, text, reply_markup=keyboard, link_preview_options=LinkPreviewOptions(is_disabled=True)
            )
        except RetryAfter as error:
            result = classify(error)
            self._paused_until = max(self._paused_until, self._clock() + (result.retry_after or 0.0))
            return result
        except Exception as error:
            return classify(error)
        finally:
            self._chat_answered_at[key] = self._release_slot()
            self._forget_idle_chats()
        return SendResult(SendOutcome.SENT, provider_id=str(message.message_id))

    def _forget_idle_chats(self) -> None:
        if len(self._chat_answered_at) > 10_000:
            horizon = self._clock() - self.per_recipient_interval - SAFETY_MARGIN
            self._chat_answered_at = {k: t for k, t in self._chat_answered_at.items() if t > horizon}

    async def _start(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                # The HTTP client only; no getMe, so a send to an unreachable API is a RETRY, not a crash.
                await self._bot.request.initialize()
                self._started = True

    async def _take_slot(self) -> None:
        """Wait (first come, first served) until fewer than `capacity` sends are in flight or were
        answered within the window, and no 429 pause is on; then count this send as in flight."""
        async with self._slot_lock:
            while True:
                now = self._clock()
                while self._answered_at and now - self._answered_at[0] > self._window:
                    self._answered_at.popleft()
                wait: float | None = self._paused_until - now
                if self._in_flight + len(self._answered_at) >= self._capacity:
                    # the oldest answer leaves the window then; or an in-flight send is answered
                    wait = max(wait or 0.0, self._answered_at[0] + self._window - now) if self._answered_at else None
                if wait is not None and wait <= 0:
                    break
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), wait)
            self._in_flight += 1

    def _release_slot(self) -> float:
        answered = self._clock()
        self._in_flight -= 1
        self._answered_at.append(answered)
        self._slot_freed.set()
        return answered
