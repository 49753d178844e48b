"""A citizen looks up a case by its number and a second factor — safely.

The flow the dialog drives:

1. :func:`find_case_number` spots a case number in a message (format in ``numbers.py``);
2. the bot asks for the last 4 digits of the phone or ID number registered with the case;
3. :func:`extract_factor` takes those 4 characters from the reply, and
   :meth:`CaseLookup.verify` answers with one of

   - :class:`Found` — a :class:`CaseView` with the applicant's name masked;
   - :class:`NotVerified` — the *same* outcome for an unknown number and a wrong factor, reached
     through the same statements and comparisons, so neither the reply nor its timing tells
     whether a case number exists;
   - :class:`RateLimited` — too many failures from this sender (5 an hour, 20 a day, counted in
     the database so a restart does not reset them), with the time it lifts.

A success does not reset the failure count: otherwise someone who knows one case could keep
guessing another's factor indefinitely by interleaving.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from guidebot.cases.numbers import find_case_number, is_case_number, normalize_case_number
from guidebot.cases.statuses import CaseStatus
from guidebot.cases.workdays import CalendarNotCovered, add_working_days
from guidebot.store.db import Store, now
from guidebot.store.models import Case, CaseEvent, LookupFailure

__all__ = [
    "FAILURES_PER_DAY",
    "FAILURES_PER_HOUR",
    "NOT_VERIFIED_TEXT",
    "CaseLookup",
    "CaseView",
    "Found",
    "HistoryEntry",
    "LookupOutcome",
    "NotVerified",
    "RateLimited",
    "build_case_view",
    "extract_factor",
    "find_case_number",
    "is_case_number",
    "render_case_view",
    "render_outcome",
]

FAILURES_PER_HOUR = 5
FAILURES_PER_DAY = 20
_HOUR = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)
_FACTOR_RE = re.compile(r"\d{3}[\dX]")
_FACTOR_IN_TEXT_RE = re.compile(r"(?<![0-9A-Z])\d{3}[\dX](?![0-9A-Z])")
_CASES = Case.__table__
_EVENTS = CaseEvent.__table__
_FAILURES = LookupFailure.__table__
_RECENT_FAILURES = (
    select(_FAILURES.c.attempted_at)
    .where(
        _FAILURES.c.channel == bindparam("channel"),
        _FAILURES.c.sender_hash == bindparam("key"),
        _FAILURES.c.attempted_at > bindparam("since"),
    )
    .order_by(_FAILURES.c.attempted_at)
)
_CASE_BY_NUMBER = select(_CASES).where(_CASES.c.case_no == bindparam("case_no"))
_HISTORY = (
    select(_EVENTS.c.occurred_at, _EVENTS.c.status, _EVENTS.c.note)
    .where(_EVENTS.c.case_no == bindparam("case_no"))
    .order_by(_EVENTS.c.occurred_at, _EVENTS.c.id)
)
_RECORD_FAILURE = _FAILURES.insert().values(
    channel=bindparam("channel"), sender_hash=bindparam("key"), attempted_at=bindparam("at")
)
_FORGET_OLD_FAILURES = _FAILURES.delete().where(
    _FAILURES.c.channel == bindparam("channel"),
    _FAILURES.c.sender_hash == bindparam("key"),
    _FAILURES.c.attempted_at <= bindparam("before"),
)
# Compared against when the case does not exist (or has no phone/ID on record): same length as a
# real factor, never equal to a valid one, so both paths do the same work.
_NO_FACTOR = "\x00\x00\x00\x00"

NOT_VERIFIED_TEXT = (
    "没有查到与该办件编号和验证信息相符的办件。请核对办件编号，并输入申请时登记的手机号码或身份证号码的后4位。"
)


# -- the case as shown ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: dt.datetime
    status: CaseStatus
    note: str | None


@dataclass(frozen=True, slots=True)
class CaseView:
    """What a verified citizen (or staff) sees of a case; nothing personal beyond the masked name."""

    case_no: str
    item_code: str
    item_name: str
    applicant: str  # masked: 张*
    status: CaseStatus
    status_at: dt.datetime
    note: str | None
    next_step: str
    window: str | None
    accepted_at: dt.datetime
    promised_days: int | None
    promised_date: dt.date | None  # None when the limit or the calendar is unknown
    overdue: bool  # past the promised date and not finished
    finished_on_time: bool | None  # for 办结 cases: finished by the promised date
    history: tuple[HistoryEntry, ...]


def _next_step(status: CaseStatus, note: str | None, window: str | None) -> str:
    place = window or "政务服务中心受理窗口"
    match status:
        case CaseStatus.ACCEPTED:
            return "申请已受理，正在等待审查，目前不需要您做什么。"
        case CaseStatus.IN_REVIEW:
            return "正在审查，目前不需要您做什么；如需补充材料会通知您。"
        case CaseStatus.AWAITING_CORRECTION:
            if note:
                return f"需要补正材料：{note}。请补齐后带到{place}提交。"
            return f"需要补正材料，请联系{place}了解需补充的内容。"
        case CaseStatus.APPROVED | CaseStatus.COMPLETED:
            return f"已办结，请携带本人身份证件到{place}领取办理结果（证照或批复文书）。"
        case CaseStatus.DENIED:
            reason = f"理由：{note}。" if note else ""
            return f"不予许可。{reason}如对决定不服，可依法申请行政复议或提起行政诉讼。"
        case CaseStatus.NOT_ACCEPTED:
            reason = f"理由：{note}。" if note else ""
            return f"申请不予受理。{reason}符合条件后可重新申请，详情可咨询{place}。"
        case CaseStatus.WITHDRAWN:
            return "申请已撤回。如需继续办理，请重新提交申请。"


def build_case_view(
    case: Case | Row[Any],
    events: Sequence[CaseEvent | Row[Any]],
    item_name: Callable[[str], str | None],
    promised_days: Callable[[str], int | None],
    today: dt.date,
) -> CaseView:
    """The :class:`CaseView` of a stored case: item name from the catalog (else the import file),
    the promised date in working days from the case's own limit (else the catalog's).

    ``case`` and ``events`` may be ORM objects or Core rows with the same column names (the
    lookup reads rows: a third of the time of loading ORM objects)."""
    status = CaseStatus(case.status)
    days = case.promised_days if case.promised_days is not None else promised_days(case.item_code)
    promised_date: dt.date | None = None
    if days is not None:
        try:
            promised_date = add_working_days(case.accepted_at.date(), days)
        except CalendarNotCovered:
            promised_date = None  # shown as "暂无法计算", never guessed
    overdue = promised_date is not None and not status.is_final and today > promised_date
    finished_on_time: bool | None = None
    if promised_date is not None and status in (CaseStatus.COMPLETED, CaseStatus.APPROVED, CaseStatus.DENIED):
        finished_on_time = case.status_at.date() <= promised_date
    return CaseView(
        case_no=case.case_no,
        item_code=case.item_code,
        item_name=item_name(case.item_code) or case.item_name or case.item_code,
        applicant=case.applicant_masked,
        status=status,
        status_at=case.status_at,
        note=case.status_note,
        next_step=_next_step(status, case.status_note, case.service_window),
        window=case.service_window,
        accepted_at=case.accepted_at,
        promised_days=days,
        promised_date=promised_date,
        overdue=overdue,
        finished_on_time=finished_on_time,
        history=tuple(HistoryEntry(event.occurred_at, CaseStatus(event.status), event.note) for event in events),
    )


def _timeliness(view: CaseView) -> str:
    if view.promised_days is None:
        return "承诺办结日期：该事项的承诺时限未登记，请咨询受理窗口"
    if view.promised_date is None:  # the official calendar for that year is not published yet
        return "承诺办结日期：暂无法计算，请咨询受理窗口"
    limit = f"{view.promised_date:%Y-%m-%d}（受理后{view.promised_days}个工作日）"
    if view.finished_on_time is True:
        return f"承诺办结日期：{limit}，已按时办结"
    if view.finished_on_time is False:
        return f"承诺办结日期：{limit}，超期办结"
    if view.overdue:
        return f"承诺办结日期：{limit}，已超期"
    if view.status.is_final:
        return f"承诺办结日期：{limit}"
    return f"承诺办结日期：{limit}，未超期"


def render_case_view(view: CaseView, history: bool = False) -> list[str]:
    """Plain Chinese text lines for a case, as the dialog sends them on any channel."""
    lines = [
        f"办件编号：{view.case_no}",
        f"事项：{view.item_name}",
        f"申请人：{view.applicant}",
        f"当前状态：{view.status.label}（{view.status_at:%Y-%m-%d}）",
        f"下一步：{view.next_step}",
        _timeliness(view),
    ]
    if history and view.history:
        lines.append("办理记录：")
        lines.extend(
            f"  {entry.at:%Y-%m-%d %H:%M} {entry.status.label}" + (f"：{entry.note}" if entry.note else "")
            for entry in view.history
        )
    return lines


# -- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    view: CaseView


@dataclass(frozen=True, slots=True)
class NotVerified:
    """Unknown case number or wrong factor — deliberately indistinguishable."""

    attempts_left: int


@dataclass(frozen=True, slots=True)
class RateLimited:
    resets_at: dt.datetime


LookupOutcome = Found | NotVerified | RateLimited


def render_outcome(outcome: LookupOutcome) -> list[str]:
    """Text lines for any lookup outcome."""
    match outcome:
        case Found(view):
            return render_case_view(view)
        case NotVerified(attempts_left) if attempts_left > 0:
            return [NOT_VERIFIED_TEXT, f"（为保护申请人信息，查询次数有限，还可尝试{attempts_left}次）"]
        case NotVerified():
            return [NOT_VERIFIED_TEXT, "（尝试次数已用完，请稍后再试）"]
        case RateLimited(resets_at):
            return [
                "查询失败次数过多，为保护申请人信息，已暂停您的办件查询。",
                f"请在 {resets_at:%m月%d日 %H:%M} 后再试，或携带身份证件到政务服务中心窗口咨询。",
            ]


def extract_factor(text: str) -> str | None:
    """The 4-character verification factor in a reply (``"5678"``, ``"尾号123x"``), or None.

    Exactly one standalone group of 4 digits (the last may be X) is accepted; a reply with a
    longer number or several candidates is not guessed at.
    """
    candidates = _FACTOR_IN_TEXT_RE.findall(unicodedata.normalize("NFKC", text).upper())
    return candidates[0] if len(candidates) == 1 else None


def _same(factor: str, stored: str | None) -> bool:
    return hmac.compare_digest(factor.encode(), (stored or _NO_FACTOR).encode())


class CaseLookup:
    """Verifies a citizen's lookup and applies the per-sender failure limits."""

    def __init__(
        self,
        store: Store,
        item_name: Callable[[str], str | None],
        promised_days: Callable[[str], int | None],
        clock: Callable[[], dt.datetime] = now,
        failures_per_hour: int = FAILURES_PER_HOUR,
        failures_per_day: int = FAILURES_PER_DAY,
    ) -> None:
        self._store = store
        self._item_name = item_name
        self._promised_days = promised_days
        self._clock = clock
        self._per_hour = failures_per_hour
        self._per_day = failures_per_day

    def _recent_failures(self, connection: Connection, channel: str, key: str, at: dt.datetime) -> list[dt.datetime]:
        rows = connection.execute(_RECENT_FAILURES, {"channel": channel, "key": key, "since": at - _DAY})
        return [moment for (moment,) in rows]

    def _blocked_until(self, failures: list[dt.datetime], at: dt.datetime) -> dt.datetime | None:
        """When the sender may try again, or None if they may now.

        With n failures in the window and a limit of k, the (n-k+1)-th oldest must leave the
        window for the count to drop below k.
        """
        last_hour = [moment for moment in failures if moment > at - _HOUR]
        resets: list[dt.datetime] = []
        if len(last_hour) >= self._per_hour:
            resets.append(last_hour[len(last_hour) - self._per_hour] + _HOUR)
        if len(failures) >= self._per_day:
            resets.append(failures[len(failures) - self._per_day] + _DAY)
        return max(resets) if resets else None

    def status(self, channel: str, sender: str) -> RateLimited | None:
        """RateLimited if this sender may not look up now — lets the dialog say so before
        asking for a case number at all."""
        at = self._clock()
        key = self._store.sender_hash(channel, sender)
        with self._store.engine.connect() as connection:
            blocked = self._blocked_until(self._recent_failures(connection, channel, key, at), at)
        return RateLimited(blocked) if blocked else None

    def verify(self, channel: str, sender: str, case_no: str, factor: str) -> LookupOutcome:
        """Check ``factor`` (last 4 of the phone or ID number) for ``case_no``; see module doc.

        ``factor`` should come from :func:`extract_factor`; anything that is not 4 characters
        of the right shape simply fails (and counts as a failure).
        """
        at = self._clock()
        key = self._store.sender_hash(channel, sender)
        case_no = normalize_case_number(case_no)
        factor = unicodedata.normalize("NFKC", factor).strip().upper()
        if not _FACTOR_RE.fullmatch(factor):
            factor = "\x01" * 4  # compares like a real factor, matches nothing
        # Core statements prepared once, on a plain connection: the ORM session's bookkeeping
        # would be most of a lookup's time.
        with self._store.engine.begin() as connection:
            failures = self._recent_failures(connection, channel, key, at)
            blocked = self._blocked_until(failures, at)
            if blocked:
                return RateLimited(blocked)

            # One statement whether or not the case exists (the whole row: no second fetch on
            # success); then both comparisons, always.
            row = connection.execute(_CASE_BY_NUMBER, {"case_no": case_no}).first()
            phone_last4, id_last4 = (row.phone_last4, row.id_last4) if row else (None, None)
            phone_matches = _same(factor, phone_last4)
            id_matches = _same(factor, id_last4)
            if row is not None and (phone_matches | id_matches):
                events = connection.execute(_HISTORY, {"case_no": case_no}).all()
                view = build_case_view(row, events, self._item_name, self._promised_days, at.date())
                return Found(view)

            failure = {"channel": channel, "key": key, "at": at}
            connection.execute(_RECORD_FAILURE, failure)
            # Keep the table small: this sender's failures older than the day window are moot.
            connection.execute(_FORGET_OLD_FAILURES, {**failure, "before": at - _DAY})
            failures.append(at)
            in_last_hour = sum(1 for moment in failures if moment > at - _HOUR)
            attempts_left = max(0, min(self._per_hour - in_last_hour, self._per_day - len(failures)))
            return NotVerified(attempts_left)
