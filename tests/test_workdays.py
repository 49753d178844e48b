"""Working days on the official Chinese calendar, across 春节 and 国庆 with their 调休 days."""

from __future__ import annotations

import datetime as dt

import pytest

from guidebot.cases.workdays import (
    CalendarNotCovered,
    add_working_days,
    is_working_day,
    working_days_between,
)

D = dt.date


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2025, 1, 26), True),  # Sunday, 调休 working day before 春节
        (D(2025, 1, 28), False),  # 除夕, holiday
        (D(2025, 2, 4), False),  # last 春节 holiday
        (D(2025, 2, 8), True),  # Saturday, 调休 working day after 春节
        (D(2025, 9, 28), True),  # Sunday, 调休 before 国庆
        (D(2025, 10, 8), False),  # 国庆/中秋 holiday
        (D(2025, 10, 11), True),  # Saturday, 调休 after 国庆
        (D(2025, 10, 12), False),  # ordinary Sunday
        (D(2025, 10, 13), True),  # ordinary Monday
    ],
    ids=lambda value: value.isoformat() if isinstance(value, dt.date) else str(value),
)
def test_official_calendar(day: dt.date, working: bool) -> None:
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Accepted Friday 2025-01-24: Sat off, Sun 01-26 works (1), Mon 01-27 (2),
        # 01-28..02-04 春节 off, 02-05 (3), 02-06 (4), 02-07 (5), Sat 02-08 调休 works (6).
        (D(2025, 1, 24), 5, D(2025, 2, 7)),
        (D(2025, 1, 24), 6, D(2025, 2, 8)),
        (D(2025, 1, 24), 7, D(2025, 2, 10)),
        # Accepted Friday 2025-09-26: Sun 09-28 works (1), 09-29 (2), 09-30 (3),
        # 10-01..10-08 国庆 off, 10-09 (4), 10-10 (5), Sat 10-11 调休 works (6).
        (D(2025, 9, 26), 5, D(2025, 10, 10)),
        (D(2025, 9, 26), 6, D(2025, 10, 11)),
        # 2024 春节: 02-10..02-17 off, Sunday 02-18 works.
        (D(2024, 2, 8), 2, D(2024, 2, 18)),
        # Acceptance day not counted; 0 days is the same day.
        (D(2025, 3, 3), 1, D(2025, 3, 4)),
        (D(2025, 3, 3), 0, D(2025, 3, 3)),
        # An ordinary 20-working-day limit over four plain weeks.
        (D(2025, 3, 3), 20, D(2025, 3, 31)),
    ],
    ids=[
        "chunjie-5",
        "chunjie-6-tiaoxiu-sat",
        "chunjie-7",
        "guoqing-5",
        "guoqing-6-tiaoxiu-sat",
        "chunjie-2024-tiaoxiu-sun",
        "one",
        "zero",
        "plain-20",
    ],
)
def test_add_working_days(start: dt.date, days: int, expected: dt.date) -> None:
    assert add_working_days(start, days) == expected
    assert working_days_between(start, expected) == days


def test_add_working_days_accepts_datetime() -> None:
    assert add_working_days(dt.datetime(2025, 9, 26, 16, 30), 5) == D(2025, 10, 10)


def test_working_days_between_counts_holidays_out_and_is_antisymmetric() -> None:
    # 2025-09-30 → 2025-10-10: only 10-09 and 10-10 are working days.
    assert working_days_between(D(2025, 9, 30), D(2025, 10, 10)) == 2
    assert working_days_between(D(2025, 10, 10), D(2025, 9, 30)) == -2
    assert working_days_between(D(2025, 10, 1), D(2025, 10, 8)) == 0


def test_negative_days_go_backwards() -> None:
    assert add_working_days(D(2025, 2, 5), -1) == D(2025, 1, 27)


def test_year_not_covered_is_a_clear_error() -> None:
    with pytest.raises(CalendarNotCovered, match="2099 年"):
        add_working_days(D(2099, 6, 1), 3)
