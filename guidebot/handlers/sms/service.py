"""The SMS conversation, the same for every gateway: a citizen's text in, the SMS text to answer out.

What SMS needs beyond the dialog engine, all kept in the store per number (E.164) so any process
can answer the next message:

- **duplicates**: a gateway that did not get our answer in time delivers the message again; a
  message seen before (by the gateway's message id, or sender + text + time) is answered once;
- **pages**: an answer longer than the segment cap is sent a page at a time, "更多" gives the next
  (slot ``sms-session``; the engine's own state under channel ``sms`` is never touched here);
- **stops**: "TD"/"退订" (what operators require every SMS service to honour) and a number the
  operator rejected as invalid put the number on the stop list (slot ``sms-stop``); the SMS
  senders refuse to send to a stopped number. "恢复订阅" takes an opt-out back.

Delivery reports from any gateway arrive here as :class:`DeliveryReport` and are handed to the
outbox through a ``ReportSink``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from guidebot.dialog.engine import StateStore
from guidebot.dialog.replies import Inbound, Reply
from guidebot.handlers.sms.phones import masked
from guidebot.handlers.sms.render import paginate, render_replies, sanitize
from guidebot.outbox.sender import SendOutcome
from guidebot.privacy import mask_text

log = logging.getLogger(__name__)

__all__ = [
    "CHANNEL",
    "SESSION_SLOT",
    "STOP_SLOT",
    "DeliveryReport",
    "Engine",
    "SmsAnswer",
    "SmsConversations",
    "StopList",
    "deliver_report",
]

CHANNEL = "sms"  # the channel the dialog engine sees
SESSION_SLOT = "sms-session"  # {"seen": [message keys], "more": [pages]}
STOP_SLOT = "sms-stop"  # {"reason": "optout" | "invalid number: …", "at": iso time} (without the outbox)
SEEN_KEEP = 50

# Whole-message keywords, compared after removing spaces and punctuation, case-insensitive.
MORE_WORDS = frozenset({"更多", "更多内容", "继续", "more", "gd"})
OPT_OUT_WORDS = frozenset({"td", "t", "退订", "退定", "取消订阅", "拒收", "r", "unsubscribe", "stop"})
RESUME_WORDS = frozenset({"恢复订阅", "重新订阅", "恢复通知", "订阅"})
# "回复1" / "回复 更多" typed literally, as the menu says.
_REPLY_PREFIX = re.compile(r"^回复\s*[:：]?\s*(?=\S)")
_KEYWORD_JUNK = re.compile(r"[\s\"'“”‘’。，,.!！?？:：;；、()（）【】\[\]<>《》-]+")

OPTED_OUT_TEXT = "您已退订本中心的短信通知，今后不再向您发送。仍可随时发短信咨询办事；如需恢复通知，请回复“恢复订阅”。"
RESUMED_TEXT = "已为您恢复本中心的短信通知。如需退订，请回复 TD。"
NO_MORE_TEXT = "没有更多内容了。请直接发送您要办的事，例如“办身份证要带什么”。"
UNREADABLE_TEXT = "抱歉，未能识别您发来的短信内容，请用文字重新发送您要办的事，例如“办身份证要带什么”。"


class Engine(Protocol):
    """What the SMS channel needs of the dialog engine."""

    def handle(self, inbound: Inbound) -> list[Reply]: ...


def keyword(text: str) -> str:
    """A message reduced to compare with keywords: no spaces or punctuation, lower case."""
    return _KEYWORD_JUNK.sub("", text or "").lower()


def strip_reply_prefix(text: str) -> str:
    """"回复1" → "1", "回复 更多" → "更多": what the menu told the citizen to type, typed literally."""
    stripped = text.strip()
    rest = _REPLY_PREFIX.sub("", stripped, count=1)
    return rest if rest != stripped and len(rest) <= 12 else stripped


@dataclass(frozen=True)
class SmsAnswer:
    """What to send back: ``text`` (None for a duplicate, which gets no second answer)."""

    text: str | None
    duplicate: bool = False
    pages_left: int = 0


@dataclass(frozen=True)
class DeliveryReport:
    """A gateway's word on a message sent earlier, matched by ``provider_id``."""

    provider_id: str
    outcome: SendOutcome  # SENT (accepted by the SMSC), DELIVERED, FAILED or STOPPED
    recipient: str = ""  # E.164 when the gateway says, else ""
    error: str = ""  # short, masked
    gateway: str = "kannel"


ReportSink = Callable[[DeliveryReport], "Awaitable[bool] | bool"]


def _outbox_tables(store: object) -> bool:
    """Whether ``store`` is the database with the outbox's stop list (outbox_stops) in it."""
    engine = getattr(store, "engine", None)
    if engine is None or not hasattr(store, "session"):
        return False
    try:
        from sqlalchemy import inspect as inspect_db

        import guidebot.outbox.queue  # noqa: F401 - the functions used below
    except ImportError:
        return False
    return bool(inspect_db(engine).has_table("outbox_stops"))


class StopList:
    """Numbers no proactive SMS may go to: opted out (TD/退订, reason ``optout``) or rejected by the
    operator (any other reason).

    Kept in the outbox's stop list when the store is the database — so the outbox enqueues
    nothing for them, cancels what was queued and ends their subscriptions — and in the
    conversation store (slot ``sms-stop``) otherwise.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.in_outbox = _outbox_tables(store)

    def reason(self, number: str) -> str | None:
        if self.in_outbox:
            from sqlalchemy import select

            from guidebot.outbox.models import RecipientStop

            with self.store.session() as session:  # type: ignore[attr-defined]
                return session.scalar(select(RecipientStop.reason).where(RecipientStop.channel == CHANNEL,
                                                                         RecipientStop.recipient == number))
        return self.store.load_state(STOP_SLOT, number).get("reason")

    def stop(self, number: str, reason: str) -> None:
        if self.in_outbox:
            from guidebot.outbox.queue import stop_recipient

            stop_recipient(self.store, CHANNEL, number, reason)  # type: ignore[arg-type]
        else:
            at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.store.save_state(STOP_SLOT, number, {"reason": reason, "at": at})
        log.info("sms: %s stopped (%s)", masked(number), mask_text(reason))

    def resume(self, number: str, *, keep_opt_out: bool = False) -> bool:
        """Lift the stop (but not an opt-out, with ``keep_opt_out``); True when there was one to lift."""
        current = self.reason(number)
        if current is None or (keep_opt_out and is_opt_out(current)):
            return False
        if self.in_outbox:
            from guidebot.outbox.queue import resume_recipient

            resume_recipient(self.store, CHANNEL, number)  # type: ignore[arg-type]
        else:
            self.store.save_state(STOP_SLOT, number, {})
        log.info("sms: %s resumed (was %s)", masked(number), mask_text(current))
        return True


def is_opt_out(reason: str | None) -> bool:
    """Whether a stop is the citizen's own opt-out (kept until they subscribe again), not a
    delivery problem (lifted as soon as the number writes to us)."""
    return reason is not None and "optout" in reason


def _subscription_flow(engine: object) -> bool:
    """Whether the engine has the outbox's subscription sub-dialog (it answers 退订 and 订阅 itself)."""
    try:
        from guidebot.outbox.subscriptions import SubscriptionFlow
    except ImportError:
        return False
    return any(isinstance(dialog, SubscriptionFlow) for dialog in getattr(engine, "sub_dialogs", ()))


def _opt_out_words() -> frozenset[str]:
    try:
        from guidebot.outbox.subscriptions import OPT_OUT_WORDS as OUTBOX_WORDS
    except ImportError:
        return OPT_OUT_WORDS
    return OPT_OUT_WORDS | frozenset(keyword(word) for word in OUTBOX_WORDS)


class _StripedLocks:
    """A fixed set of locks, one chosen per number: one number's messages run one at a time."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def __call__(self, key: str) -> threading.Lock:
        digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
        return self._locks[int.from_bytes(digest, "big") % len(self._locks)]


def message_key(message_id: str, sender: str, text: str, timestamp: str) -> str:
    """The identity of a delivery: the gateway's id, else sender + text + time; "" when unknown."""
    if message_id:
        raw = f"id\x00{message_id}"
    elif timestamp:
        raw = f"k\x00{sender}\x00{timestamp}\x00{text}"
    else:
        return ""
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:24]


class SmsConversations:
    """Answers one number's messages through the dialog engine, with SMS's pages, duplicates and stops."""

    def __init__(self, engine: Engine, store: StateStore, *, max_segments: int = 3,
                 on_opt_out: Callable[[str], None] | None = None,
                 on_resume: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.store = store
        self.max_segments = max_segments
        self.stops = StopList(store)
        self.on_opt_out = on_opt_out
        self.on_resume = on_resume
        self.opt_out_words = _opt_out_words()
        self.engine_subscriptions = _subscription_flow(engine)
        self._locks = _StripedLocks()

    def answer(self, sender: str, text: str, *, key: str = "", received_at: dt.datetime | None = None,
               message_id: str = "") -> SmsAnswer:
        """The SMS to send back to ``sender`` (E.164) for ``text``. Blocking: call it in a thread."""
        with self._locks(sender):
            session = self.store.load_state(SESSION_SLOT, sender)
            seen: list[str] = list(session.get("seen", []))
            if key and key in seen:
                log.info("sms: duplicate delivery from %s ignored", masked(sender))
                return SmsAnswer(None, duplicate=True)
            pages, more = self._respond(sender, text, session, received_at, message_id)
            if key:
                seen = [*seen, key][-SEEN_KEEP:]
            self.store.save_state(SESSION_SLOT, sender, {"seen": seen, "more": more})
            return SmsAnswer(pages, pages_left=len(more))

    def _respond(self, sender: str, text: str, session: dict[str, Any], received_at: dt.datetime | None,
                 message_id: str) -> tuple[str, list[str]]:
        text = strip_reply_prefix(text or "")
        word = keyword(text)
        if word in MORE_WORDS:
            more = list(session.get("more", []))
            if not more:
                return NO_MORE_TEXT, []
            return more[0], more[1:]
        inbound = Inbound(channel=CHANNEL, sender=sender, text=text, received_at=received_at, message_id=message_id)
        if word in self.opt_out_words:
            # The subscription dialog (when the engine has it) ends the subscriptions and says how
            # many; the stop list then guarantees nothing proactive goes to this number.
            replies = self.engine.handle(inbound) if self.engine_subscriptions else []
            self.stops.stop(sender, "optout")
            if self.on_opt_out is not None:
                self.on_opt_out(sender)
            return (render_replies(replies) or OPTED_OUT_TEXT), []
        if word in RESUME_WORDS and not self.engine_subscriptions and is_opt_out(self.stops.reason(sender)):
            self.stops.resume(sender)
            if self.on_resume is not None:
                self.on_resume(sender)
            return RESUMED_TEXT, []
        # The number just wrote to us, so the operator's "invalid number" no longer holds.
        self.stops.resume(sender, keep_opt_out=True)
        replies = self.engine.handle(inbound)
        body = render_replies(replies) or sanitize("您好，请说说您要办的事，例如“办身份证要带什么”。")
        pages = paginate(body, self.max_segments)
        return pages[0], pages[1:]


async def deliver_report(report: DeliveryReport, sink: ReportSink | None, stops: StopList | None,
                         *, wait: float = 2.0) -> bool:
    """Hand a delivery report to the outbox; a number rejected as invalid goes on the stop list.

    The sink returns False when it does not know ``provider_id`` yet: a report can overtake the
    dispatcher recording the id it got back, so it is offered again for up to ``wait`` seconds.
    """
    if report.outcome is SendOutcome.STOPPED and stops is not None and report.recipient:
        await asyncio.to_thread(stops.stop, report.recipient, f"invalid number: {report.error}"[:200])
    level = logging.DEBUG if report.outcome in (SendOutcome.DELIVERED, SendOutcome.SENT) else logging.INFO
    log.log(level, "sms: report %s for %s: %s %s", report.provider_id[:40], masked(report.recipient),
            report.outcome.value, report.error)
    if sink is None:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        result = sink(report)
        if inspect.isawaitable(result):
            result = await result
        if result or loop.time() >= deadline:
            return bool(result)
        await asyncio.sleep(0.1)
