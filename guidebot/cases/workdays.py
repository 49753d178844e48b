"""Working-day arithmetic on the official Chinese calendar.

Uses the ``chinesecalendar`` package, which knows weekends, public holidays and the 调休
weekends that are working days.  It covers a fixed range of years (the State Council publishes
each year's holidays late in the year before); outside it we raise :class:`CalendarNotCovered`
rather than silently counting weekends only.

Counting rule (行政许可法 第六十九条 / 期间计算): the time limit runs from the day after
acceptance, so the acceptance day itself is not counted.
"""

from __future__ import annotations

import datetime as dt
import functools

import chinese_calendar

__all__ = ["CalendarNotCovered", "add_working_days", "is_working_day", "working_days_between"]


class CalendarNotCovered(ValueError):
    """The official calendar for this year is not known to the installed chinesecalendar."""

    def __init__(self, day: dt.date) -> None:
        super().__init__(
            f"{day.year} 年的法定节假日安排尚未收录（chinesecalendar {chinese_calendar.__version__}），"
            "无法按工作日计算；请升级 chinesecalendar 包"
        )
        self.day = day


@functools.lru_cache(maxsize=16384)
def is_working_day(day: dt.date) -> bool:
    """True on an official working day (weekdays that are not holidays, and 调休 weekends).

    Cached: the package scans its whole holiday table to validate every date it is asked about,
    which would dominate a lookup's time.
    """
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # the package's way of saying "year not covered"
        raise CalendarNotCovered(day) from None


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The date ``days`` working days after ``start`` (``start`` itself not counted).

    ``add_working_days(d, 0)`` is ``d``.  Negative counts go backwards the same way.
    """
    if isinstance(start, dt.datetime):
        start = start.date()
    step = dt.timedelta(days=1 if days >= 0 else -1)
    remaining = abs(days)
    current = start
    while remaining:
        current += step
        if is_working_day(current):
            remaining -= 1
    return current


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days in ``(start, end]``: how many working days after ``start`` ``end`` is.

    The inverse of :func:`add_working_days` for a working-day ``end``; negative when
    ``end`` is before ``start``.
    """
    if isinstance(start, dt.datetime):
        start = start.date()
    if isinstance(end, dt.datetime):
        end = end.date()
    if end < start:
        return -working_days_between(end, start)
    count = 0
    current = start
    one_day = dt.timedelta(days=1)
    while current < end:
        current += one_day
        if is_working_day(current):
            count += 1
    return count
