"""``guidebot stats``: what citizens asked, what we could not answer, ratings, and case timeliness.

- questions per day (query log), the unanswered questions asked most, the items asked most;
- 好差评: count per level, 差评 flagged for staff (with their reasons, masked);
- 承诺件按时办结率: finished cases (已办结/准予许可/不予许可) done by their promised date, out
  of those with a known promised date; open cases past it are counted as overdue;
- the average number of working days from acceptance to finishing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from guidebot.cases.statuses import CaseStatus
from guidebot.cases.workdays import CalendarNotCovered, add_working_days, working_days_between
from guidebot.outbox.models import Rating
from guidebot.outbox.ratings import LEVELS
from guidebot.store.db import Store, UnansweredQuestion, now
from guidebot.store.models import Case, QueryLog

__all__ = ["Stats", "collect_stats", "render_stats"]

_FINISHED = (CaseStatus.COMPLETED, CaseStatus.APPROVED, CaseStatus.DENIED)
PromisedDays = Callable[[str], int | None]


@dataclass
class Stats:
    since: dt.datetime | None
    questions_per_day: list[tuple[dt.date, int]] = field(default_factory=list)
    unanswered: list[UnansweredQuestion] = field(default_factory=list)
    top_items: list[tuple[str, int]] = field(default_factory=list)
    ratings: dict[int, int] = field(default_factory=dict)  # level → count
    flagged: list[tuple[dt.datetime, int, str]] = field(default_factory=list)  # 差评: when, level, reason
    finished_on_time: int = 0
    finished_late: int = 0
    finished_unknown: int = 0  # no promised limit, or a year the calendar does not cover
    open_overdue: int = 0
    working_days_to_finish: list[int] = field(default_factory=list)

    @property
    def on_time_rate(self) -> float | None:
        known = self.finished_on_time + self.finished_late
        return self.finished_on_time / known if known else None

    @property
    def average_working_days(self) -> float | None:
        days = self.working_days_to_finish
        return sum(days) / len(days) if days else None


def collect_stats(store: Store, since: dt.datetime | None = None, promised_days: PromisedDays | None = None,
                  today: dt.date | None = None, top: int = 10) -> Stats:
    today = today or now().date()
    stats = Stats(since)
    with store.session() as session:
        day = func.date(QueryLog.at)
        query = select(day, func.count()).group_by(day).order_by(day)
        items = (select(QueryLog.item_code, func.count().label("n")).where(QueryLog.item_code.is_not(None))
                 .group_by(QueryLog.item_code).order_by(func.count().desc(), QueryLog.item_code).limit(top))
        ratings = select(Rating.level, func.count()).group_by(Rating.level)
        flagged = select(Rating.rated_at, Rating.level, Rating.reason).where(Rating.flagged.is_(True))
        cases = select(Case.item_code, Case.promised_days, Case.accepted_at, Case.status, Case.status_at)
        if since is not None:
            query = query.where(QueryLog.at >= since)
            items = items.where(QueryLog.at >= since)
            ratings = ratings.where(Rating.rated_at >= since)
            flagged = flagged.where(Rating.rated_at >= since)
            cases = cases.where(Case.accepted_at >= since)
        stats.questions_per_day = [(_as_date(d), int(n)) for d, n in session.execute(query)]
        stats.top_items = [(code, int(n)) for code, n in session.execute(items)]
        stats.ratings = {int(level): int(n) for level, n in session.execute(ratings)}
        stats.flagged = [(at, int(level), reason or "") for at, level, reason in
                         session.execute(flagged.order_by(Rating.rated_at.desc()).limit(top))]
        case_rows = session.execute(cases).all()
    stats.unanswered = store.top_unanswered(limit=top, since=since)
    for item_code, own_days, accepted_at, status_word, status_at in case_rows:
        status = CaseStatus(status_word)
        days = own_days if own_days is not None else (promised_days(item_code) if promised_days else None)
        try:
            promised = add_working_days(accepted_at.date(), days) if days is not None else None
            if status in _FINISHED:
                stats.working_days_to_finish.append(working_days_between(accepted_at.date(), status_at.date()))
        except CalendarNotCovered:
            promised = None
        if status in _FINISHED:
            if promised is None:
                stats.finished_unknown += 1
            elif status_at.date() <= promised:
                stats.finished_on_time += 1
            else:
                stats.finished_late += 1
        elif not status.is_final and promised is not None and today > promised:
            stats.open_overdue += 1
    return stats


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def render_stats(stats: Stats, item_name: Callable[[str], str | None] | None = None) -> list[str]:
    lines = [f"统计{'自 ' + stats.since.strftime('%Y-%m-%d') + ' 起' if stats.since else '（全部）'}"]
    total = sum(n for _, n in stats.questions_per_day)
    lines.append(f"提问：共 {total} 条")
    lines += [f"  {day:%Y-%m-%d}  {n}" for day, n in stats.questions_per_day[-31:]]
    lines.append("答不上来的问题（最常问）：")
    lines += [f"  {q.count:>4} × {q.text}" for q in stats.unanswered] or ["  无"]
    lines.append("最常问的事项：")
    names = [(item_name(code) if item_name else None) or code for code, _ in stats.top_items]
    lines += [f"  {n:>4} × {name}" for name, (_, n) in zip(names, stats.top_items, strict=True)] or ["  无"]
    rated = sum(stats.ratings.values())
    lines.append(f"好差评：共 {rated} 条")
    for level, word in LEVELS:
        lines.append(f"  {word}：{stats.ratings.get(level, 0)}")
    if rated:
        good = sum(n for level, n in stats.ratings.items() if level >= 3)
        lines.append(f"  满意率（基本满意及以上）：{good / rated:.1%}")
    if stats.flagged:
        lines.append("差评（待跟进）：")
        lines += [f"  {at:%Y-%m-%d %H:%M} {dict(LEVELS)[level]} {reason or '（未填写原因）'}"
                  for at, level, reason in stats.flagged]
    rate = stats.on_time_rate
    lines.append(
        f"承诺件按时办结率：{rate:.1%}（按时 {stats.finished_on_time}，超期 {stats.finished_late}）" if rate is not None
        else "承诺件按时办结率：暂无已办结且有承诺时限的办件"
    )
    if stats.finished_unknown:
        lines.append(f"  另有 {stats.finished_unknown} 件无承诺时限或日历未覆盖，未计入")
    lines.append(f"在办超期：{stats.open_overdue} 件")
    average = stats.average_working_days
    lines.append(f"平均办结用时：{average:.1f} 个工作日" if average is not None else "平均办结用时：暂无")
    return lines
