"""好差评: five-level ratings of an answer or of a finished case, and the conversation that takes them.

The national scale (政务服务“好差评”): 非常满意 5 · 满意 4 · 基本满意 3 · 不满意 2 · 非常不满意 1.
The prompt lists them in that order, numbered 1–5 (so "1" means 非常满意, as the menu shows);
the words themselves work too.  A 差评 (不满意, 非常不满意) asks for a short reason and is flagged
for staff.

A rating is accepted only as the message right after its prompt: the prompt arms
``state.flow["rating"]``, and any other message disarms it — a "1" an hour later, meant as a menu
choice, is never taken as a rating.  The answer prompt is added by :meth:`RatingFlow.on_answer`
(the engine's ``on_answer`` hook); the case prompt is armed by ``notify`` when it queues the final
notice (:func:`arm_case_rating`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import re
import unicodedata
from typing import Any

from sqlalchemy import update

from guidebot.dialog.engine import ConversationState
from guidebot.dialog.replies import Choice, Choices, Inbound, Reply
from guidebot.knowledge.catalog import Item
from guidebot.outbox.models import Rating
from guidebot.privacy import mask_text
from guidebot.store.db import Store, now

__all__ = [
    "ANSWER_PROMPT",
    "FLOW_KEY",
    "LEVELS",
    "RatingFlow",
    "arm_case_rating",
    "case_rating_prompt",
    "parse_level",
    "record_rating",
]

FLOW_KEY = "rating"
ANSWER_PROMPT = "这个回答有帮助吗？请评价："
# (level, word) in the order shown; menu number n ↔ LEVELS[n - 1].
LEVELS: tuple[tuple[int, str], ...] = ((5, "非常满意"), (4, "满意"), (3, "基本满意"), (2, "不满意"), (1, "非常不满意"))
BAD_LEVELS = frozenset({1, 2})
_WORDS = {word: level for level, word in LEVELS}
_SKIP = frozenset({"跳过", "不用了", "算了", "没有", "无", "不说了", "skip"})
_REASON_LIMIT = 500

# The state of the message being handled, so the on_answer hook (which gets no state) can arm
# the prompt.  A ContextVar is per thread and per asyncio task, so concurrent messages never mix.
_current: contextvars.ContextVar[tuple[Inbound, ConversationState] | None] = contextvars.ContextVar(
    "guidebot_rating_current", default=None
)


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text or "").lower())


def parse_level(text: str) -> int | None:
    """The level (5 best … 1 worst) of a rating reply: the menu number 1–5 or the word."""
    key = _key(text)
    if len(key) == 1 and key in "12345":
        return LEVELS[int(key) - 1][0]
    return _WORDS.get(key)


def rating_choices(prompt: str = ANSWER_PROMPT) -> Choices:
    return Choices(prompt, tuple(Choice(word, str(number)) for number, (_, word) in enumerate(LEVELS, 1)))


def case_rating_prompt() -> str:
    """The invitation appended to a case's final notice (plain text: it may go by SMS)."""
    menu = " ".join(f"{number} {word}" for number, (_, word) in enumerate(LEVELS, 1))
    return f"请为本次服务评价，回复数字：{menu}"


def record_rating(store: Store, channel: str, sender: str, level: int, *, subject: str,
                  item_code: str | None = None, case_no: str | None = None, at: dt.datetime | None = None) -> int:
    """Store a rating (sender hashed); a 差评 is flagged for staff. Returns its id."""
    if level not in _WORDS.values():
        raise ValueError(f"rating level must be 1–5, got {level}")
    with store.session() as session:
        rating = Rating(channel=channel, sender_hash=store.sender_hash(channel, sender), subject=subject,
                        item_code=item_code, case_no=case_no, level=level, reason=None,
                        flagged=level in BAD_LEVELS, rated_at=at or now())
        session.add(rating)
        session.flush()
        return rating.id


def _record_reason(store: Store, rating_id: int, reason: str) -> None:
    with store.session() as session:
        session.execute(update(Rating).where(Rating.id == rating_id)
                        .values(reason=mask_text(reason.strip())[:_REASON_LIMIT]))


def arm_case_rating(store: Any, channel: str, recipient: str, case_no: str, item_code: str | None) -> None:
    """Let the recipient's next message be read as the rating of this finished case."""
    state = store.load_state(channel, recipient)
    flow = dict(state.get("flow") or {})
    flow[FLOW_KEY] = {"subject": "case", "case_no": case_no, "item": item_code}
    state["flow"] = flow
    store.save_state(channel, recipient, state)


class RatingFlow:
    """A SubDialog taking the rating right after its prompt, and the reason after a 差评."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, inbound: Inbound, text: str, state: ConversationState) -> list[Reply] | None:
        _current.set((inbound, state))
        pending = state.flow.pop(FLOW_KEY, None)  # armed for this one message only
        if not pending:
            return None
        if pending.get("awaiting") == "reason":
            if _key(inbound.text) in _SKIP:
                return [Reply.text("好的，感谢您的评价。")]
            _record_reason(self.store, int(pending["id"]), inbound.text)
            return [Reply.text("已记录您的意见，工作人员会尽快核实改进。感谢您的反馈！")]
        level = parse_level(inbound.text)
        if level is None:
            return None  # the citizen moved on; the message is answered as usual
        rating_id = record_rating(self.store, inbound.channel, inbound.sender, level,
                                  subject=str(pending.get("subject") or "answer"), item_code=pending.get("item"),
                                  case_no=pending.get("case_no"))
        if level in BAD_LEVELS:
            state.flow[FLOW_KEY] = {"awaiting": "reason", "id": rating_id}
            return [Reply.text("很抱歉没能让您满意。请用一句话告诉我们哪里需要改进（回复“跳过”可略过）。")]
        return [Reply.text("感谢您的评价！还有其他要办的事，随时问我。")]

    def on_answer(self, inbound: Inbound, item: Item) -> list[Reply]:
        """The engine's on_answer hook: ask "这个回答有帮助吗？" and arm the rating."""
        current = _current.get()
        if current is None or current[0] is not inbound:
            return []  # the flow did not see this message: a rating reply could not be taken
        current[1].flow[FLOW_KEY] = {"subject": "answer", "item": item.code}
        return [Reply((rating_choices(),))]
