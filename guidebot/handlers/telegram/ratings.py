"""好差评 at case completion as Telegram buttons.

The outbox queues a case's final notice (kind ``case``) as plain text ending with the invitation
"请为本次服务评价，回复数字：1 非常满意 …" — it may go by SMS. On Telegram the sender recognises that
invitation and sends the five levels as inline buttons instead of asking for a digit.

Each button's data names the case: ``rate:<case_no>:<n>`` (n is the menu number 1–5, as the rating
buttons after answers number them). The outbox arms the case's rating when it *queues* the notice,
and that arm lasts one message only; a notice held back by quiet hours, or any message the citizen
sends before pressing, would otherwise turn "2. 满意" into the second item of some other menu. So the
press re-arms the rating of the named case and hands the digit to the dialog engine, which records it
exactly as it records a typed rating (subject "case", a 差评 asks for a reason). When the case number
does not fit Telegram's 64-byte callback data the buttons fall back to the bare digits, which work
while the outbox's arm is still in place.

Where the case number comes from, best first: the outbox row's dedupe key (``case:<no>:<status>:…``,
what ``guidebot.outbox.notify`` writes; needs the sender to have the store), else the notice text
("您订阅的办件 <no>（…").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from guidebot.outbox.ratings import LEVELS, arm_case_rating, case_rating_prompt

__all__ = [
    "CASE_RATING_PATTERN",
    "TELEGRAM_PROMPT",
    "RatingInvitation",
    "arm_button_rating",
    "case_from_key",
    "case_rating_keyboard",
    "parse_case_rating",
    "rating_invitation",
]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
PREFIX = "rate:"
CASE_RATING_PATTERN = r"^rate:"
MAX_CALLBACK_DATA_BYTES = 64
TELEGRAM_PROMPT = "请为本次服务评价："  # the levels are the buttons below it
INVITATION_KINDS = frozenset({"case", "rating"})
_DATA_RE = re.compile(r"^rate:(?P<case>[^:]{1,64}):(?P<number>[1-5])$")
_CASE_IN_TEXT_RE = re.compile(r"办件\s*([0-9A-Za-z][0-9A-Za-z_-]{0,63})\s*（")


@dataclass(frozen=True)
class RatingInvitation:
    """How to send an outbox message that invites a case rating: its text for Telegram and the case."""

    text: str
    case_no: str | None


def might_invite(text: str) -> bool:
    """A cheap test before any lookup: every invitation asks for an evaluation in words (it must
    work as plain text on SMS too)."""
    return "评价" in text


def case_from_key(dedupe_key: str | None) -> str | None:
    """The case number an outbox row's dedupe key carries, or None.

    notify.py writes ``case:<case_no>:<status>:<stamp>:<channel>:<recipient>``; status, stamp,
    channel and a Telegram chat id hold no colon, so the case number is what is left of them.
    """
    if not dedupe_key:
        return None
    kind, _, rest = dedupe_key.partition(":")
    if kind not in INVITATION_KINDS or not rest:
        return None
    fields = rest.rsplit(":", 4)
    case_no = fields[0] if len(fields) == 5 else rest.split(":", 1)[0]
    return case_no or None


def rating_invitation(text: str, kind: str | None = None, dedupe_key: str | None = None) -> RatingInvitation | None:
    """The invitation in an outbox message, or None when it invites nothing.

    With the row (``kind`` given) the row decides: a ``rating`` row always invites, a ``case`` row
    when its text ends with the invitation (the final notice), nothing else does — a broadcast that
    quotes the invitation gets no buttons. Without the row, the text's last line decides.
    """
    lines = text.rstrip("\n").split("\n")
    ends_with_prompt = lines[-1].strip() == case_rating_prompt()
    if kind is not None:
        if kind not in INVITATION_KINDS or (kind == "case" and not ends_with_prompt):
            return None
    elif not ends_with_prompt:
        return None
    if ends_with_prompt:
        lines[-1] = TELEGRAM_PROMPT
    found = _CASE_IN_TEXT_RE.search(text)
    case_no = case_from_key(dedupe_key) or (found.group(1) if found else None)
    return RatingInvitation("\n".join(lines), case_no)


def case_rating_keyboard(case_no: str | None) -> InlineKeyboardMarkup:
    """The five levels, one per row, labelled and numbered like the rating buttons after answers."""
    rows = []
    for number, (_, word) in enumerate(LEVELS, 1):
        data = f"{PREFIX}{case_no}:{number}" if case_no else str(number)
        if ":" in (case_no or "") or len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
            data = str(number)  # cannot name the case: the digit, read while the outbox's arm holds
        rows.append([InlineKeyboardButton(f"{number}. {word}", callback_data=data)])
    return InlineKeyboardMarkup(rows)


def parse_case_rating(data: str | None) -> tuple[str, str] | None:
    """(case_no, menu number) of a case-rating button's data, or None."""
    found = _DATA_RE.match(data or "")
    return (found.group("case"), found.group("number")) if found else None


def arm_button_rating(store: Any, chat_id: str, case_no: str) -> bool:
    """Make the chat's next message the rating of this case; False if the chat rated it already
    (a double tap, or a digit typed before the press) or ratings need a database it does not have."""
    from sqlalchemy import select

    from guidebot.outbox.models import Rating
    from guidebot.store.db import Store
    from guidebot.store.models import Case

    if not isinstance(store, Store):
        return False
    with store.session() as session:
        rated = session.scalar(
            select(Rating.id).where(Rating.channel == CHANNEL, Rating.subject == "case", Rating.case_no == case_no,
                                    Rating.sender_hash == store.sender_hash(CHANNEL, chat_id)).limit(1)
        )
        item_code = session.scalar(select(Case.item_code).where(Case.case_no == case_no))
    if rated is not None:
        return False
    arm_case_rating(store, CHANNEL, chat_id, case_no, item_code)
    return True
