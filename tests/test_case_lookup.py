"""Case lookup: number recognition, verification, identical failures, rate limits, the view."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from guidebot.cases.importer import import_cases
from guidebot.cases.lookup import (
    NOT_VERIFIED_TEXT,
    CaseLookup,
    CaseView,
    Found,
    NotVerified,
    RateLimited,
    extract_factor,
    find_case_number,
    render_case_view,
    render_outcome,
)
from guidebot.cases.staff import set_status
from guidebot.cases.statuses import CaseStatus
from guidebot.privacy import MaskingFilter
from guidebot.store.db import Store, open_store
from tests.store_fixtures import (  # noqa: F401 — fixtures
    new_case_row,
    postgres_schema_url,
    store,
    store_url,
    update_row,
    write_case_csv,
)

T = dt.datetime
CASE = "SC2025092600001"
OTHER_CASE = "SC2025092600002"
UNKNOWN_CASE = "SC2025092699999"


class Clock:
    """A settable clock for the rate-limit windows and the overdue check."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def cases(store: Store, tmp_path: Path) -> Store:  # noqa: F811
    """Two cases: one awaiting correction, one approved; accepted before 国庆 2025."""
    path = write_case_csv(
        tmp_path / "cases.csv",
        [
            new_case_row(CASE),
            update_row(CASE, "补正", "2025-09-28 09:00", "户口簿复印件；医院诊断证明"),
            new_case_row(OTHER_CASE, name="欧阳娜娜", phone="13900001111", id_number="51160219850505432x"),
            update_row(OTHER_CASE, "准予许可", "2025-10-09 15:00"),
        ],
    )
    assert import_cases(store, path).ok
    return store


def make_lookup(store: Store, clock: Clock) -> CaseLookup:  # noqa: F811
    return CaseLookup(
        store,
        item_name=lambda code: "适龄儿童、少年因身体状况需要延缓入学或者休学审批" if code == "511A0138000000" else None,
        promised_days=lambda code: 5,
        clock=clock,
    )


# -- recognising a case number -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SC2025092600001", "SC2025092600001"),
        ("帮我查下办件SC2025092600001的进度", "SC2025092600001"),
        ("帮我查下办件ＳＣ２０２５０９２６００００１", "SC2025092600001"),
        ("办件号 sc2025092600001 谢谢", "SC2025092600001"),
        ("编号：511602-2025-0926-000123，啥时候好", "511602-2025-0926-000123"),
        ("20250926000123456789", "20250926000123456789"),
        ("我的手机13812345678", None),
        ("手机 138-1234-5678", None),
        ("身份证110101199001011234", None),
        ("2025-09-26 受理的", None),
        ("20250926受理的", None),
        ("电话0826-2345678", None),
        ("SC2025-092", None),  # 7 digits: fewer than 8
        ("SC20250926000011234567890123456789", None),  # 34 characters: too long, never truncated
        ("营业执照怎么办", None),
    ],
    ids=[
        "bare",
        "in-sentence",
        "full-width",
        "lower-case",
        "hyphenated",
        "digits-only",
        "mobile",
        "mobile-hyphens",
        "id-number",
        "date",
        "compact-date",
        "landline",
        "short",
        "too-long",
        "no-number",
    ],
)
def test_find_case_number(text: str, expected: str | None) -> None:
    assert find_case_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5678", "5678"), ("尾号5678", "5678"), ("123x", "123X"), ("１２３４", "1234"), ("56789", None),
     ("12", None), ("5678 或 1234", None), ("好的", None)],
    ids=["plain", "in-text", "x", "full-width", "five-digits", "two-digits", "two-candidates", "none"],
)  # fmt: skip
def test_extract_factor(text: str, expected: str | None) -> None:
    assert extract_factor(text) == expected


# -- verifying -------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", ["5678", "123X", "123x"], ids=["phone", "id", "id-lower-x"])
def test_right_factor_shows_the_case(cases: Store, factor: str) -> None:
    clock = Clock(T(2025, 10, 9, 12, 0))
    outcome = make_lookup(cases, clock).verify("sms", "13700001111", CASE.lower(), factor)
    assert isinstance(outcome, Found)
    view = outcome.view
    assert (view.case_no, view.applicant, view.status) == (CASE, "张*", CaseStatus.AWAITING_CORRECTION)
    assert view.item_name == "适龄儿童、少年因身体状况需要延缓入学或者休学审批"
    assert view.status_at == T(2025, 9, 28, 9)
    assert "户口簿复印件；医院诊断证明" in view.next_step and "综合窗口3号" in view.next_step
    # Accepted Friday 2025-09-26; 5 working days: 09-28 (调休 Sunday), 09-29, 09-30, 10-09, 10-10.
    assert view.promised_date == dt.date(2025, 10, 10)
    assert view.overdue is False
    assert [(entry.status, entry.note) for entry in view.history] == [
        (CaseStatus.ACCEPTED, None),
        (CaseStatus.AWAITING_CORRECTION, "户口簿复印件；医院诊断证明"),
    ]


def test_overdue_after_the_promised_date(cases: Store) -> None:
    clock = Clock(T(2025, 10, 11, 9, 0))  # the 调休 Saturday after the promised Friday
    outcome = make_lookup(cases, clock).verify("sms", "1", CASE, "5678")
    assert isinstance(outcome, Found)
    assert outcome.view.overdue is True
    assert "2025-10-10（受理后5个工作日），已超期" in render_case_view(outcome.view)[-1]


def test_finished_case_shows_where_to_collect_and_on_time(cases: Store) -> None:
    clock = Clock(T(2026, 3, 1, 9, 0))
    outcome = make_lookup(cases, clock).verify("telegram", "42", OTHER_CASE, "432X")
    assert isinstance(outcome, Found)
    view = outcome.view
    assert (view.applicant, view.status, view.overdue, view.finished_on_time) == (
        "欧***",
        CaseStatus.APPROVED,
        False,
        True,
    )
    lines = render_case_view(view)
    assert lines == [
        f"办件编号：{OTHER_CASE}",
        "事项：适龄儿童、少年因身体状况需要延缓入学或者休学审批",
        "申请人：欧***",
        "当前状态：已办结（准予许可）（2025-10-09）",
        "下一步：已办结，请携带本人身份证件到综合窗口3号领取办理结果（证照或批复文书）。",
        "承诺办结日期：2025-10-10（受理后5个工作日），已按时办结",
    ]


def test_staff_change_shows_up_in_lookup(cases: Store) -> None:
    set_status(cases, CASE, "不予受理", "申请人不符合条件", by="王五", at=T(2025, 10, 9, 10, 0))
    outcome = make_lookup(cases, Clock(T(2025, 10, 9, 11, 0))).verify("sms", "1", CASE, "5678")
    assert isinstance(outcome, Found)
    assert outcome.view.status is CaseStatus.NOT_ACCEPTED
    assert "理由：申请人不符合条件" in outcome.view.next_step
    assert outcome.view.overdue is False  # final: the time limit no longer runs


@pytest.fixture
def statements(cases: Store) -> Iterator[list[str]]:
    """The SQL statements the store executes, in order."""
    executed: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(statement)

    event.listen(cases.engine, "before_cursor_execute", record)
    yield executed
    event.remove(cases.engine, "before_cursor_execute", record)


def test_unknown_number_and_wrong_factor_are_indistinguishable(cases: Store, statements: list[str]) -> None:
    lookup = make_lookup(cases, Clock(T(2025, 10, 9, 12, 0)))

    statements.clear()
    wrong_factor = lookup.verify("sms", "alice", CASE, "0000")
    wrong_factor_sql = list(statements)

    statements.clear()
    unknown_number = lookup.verify("sms", "bob", UNKNOWN_CASE, "5678")
    unknown_number_sql = list(statements)

    assert wrong_factor == unknown_number == NotVerified(attempts_left=4)
    assert render_outcome(wrong_factor) == render_outcome(unknown_number)
    assert render_outcome(wrong_factor)[0] == NOT_VERIFIED_TEXT
    # Same statements in the same order: no early return on either path.
    assert wrong_factor_sql == unknown_number_sql
    assert any("FROM cases" in sql for sql in wrong_factor_sql)


def test_factor_of_another_case_does_not_open_this_one(cases: Store) -> None:
    lookup = make_lookup(cases, Clock(T(2025, 10, 9, 12, 0)))
    assert isinstance(lookup.verify("sms", "1", CASE, "1111"), NotVerified)  # OTHER_CASE's phone
    assert isinstance(lookup.verify("sms", "1", CASE, "5679"), NotVerified)
    assert isinstance(lookup.verify("sms", "1", CASE + "0", "5678"), NotVerified)  # never fuzzy
    assert isinstance(lookup.verify("sms", "1", CASE, "not a factor"), NotVerified)


# -- rate limits -----------------------------------------------------------------------------


def test_five_failures_an_hour_then_limited_until_the_first_expires(cases: Store) -> None:
    clock = Clock(T(2025, 10, 9, 12, 0))
    lookup = make_lookup(cases, clock)
    first_failure = clock.now
    for attempt in range(5):
        outcome = lookup.verify("sms", "mallory", CASE, f"000{attempt}")
        assert outcome == NotVerified(attempts_left=4 - attempt)
        clock.advance(minutes=1)

    # Even the right factor is refused now: the limit is checked before the case.
    limited = lookup.verify("sms", "mallory", CASE, "5678")
    assert limited == RateLimited(resets_at=first_failure + dt.timedelta(hours=1))
    assert lookup.status("sms", "mallory") == limited
    text = "".join(render_outcome(limited))
    assert "失败次数过多" in text and "10月09日 13:00" in text

    # Other senders and other channels are not affected.
    assert isinstance(lookup.verify("sms", "alice", CASE, "5678"), Found)
    assert isinstance(lookup.verify("telegram", "mallory", CASE, "5678"), Found)

    clock.now = first_failure + dt.timedelta(hours=1, seconds=1)
    assert lookup.status("sms", "mallory") is None
    assert isinstance(lookup.verify("sms", "mallory", CASE, "5678"), Found)


def test_limit_survives_a_restart(store_url: str, tmp_path: Path) -> None:  # noqa: F811
    first_store = open_store(store_url)
    try:
        assert import_cases(first_store, write_case_csv(tmp_path / "c.csv", [new_case_row(CASE)])).ok
        clock = Clock(T(2025, 10, 9, 12, 0))
        for _ in range(5):
            make_lookup(first_store, clock).verify("sms", "mallory", CASE, "0000")
    finally:
        first_store.close()

    restarted = open_store(store_url)
    try:
        outcome = make_lookup(restarted, clock).verify("sms", "mallory", CASE, "5678")
        assert isinstance(outcome, RateLimited)
    finally:
        restarted.close()


def test_twenty_failures_a_day_and_success_does_not_reset(cases: Store) -> None:
    clock = Clock(T(2025, 10, 9, 0, 0))
    lookup = make_lookup(cases, clock)
    first_failure = clock.now
    for attempt in range(20):
        # 4 an hour stays under the hourly limit; a success in between changes nothing.
        assert isinstance(lookup.verify("sms", "mallory", CASE, "0000"), NotVerified), attempt
        if attempt < 19:
            assert isinstance(lookup.verify("sms", "mallory", OTHER_CASE, "1111"), Found)
        clock.advance(minutes=15)

    limited = lookup.verify("sms", "mallory", OTHER_CASE, "1111")
    assert limited == RateLimited(resets_at=first_failure + dt.timedelta(days=1))

    clock.now = first_failure + dt.timedelta(days=1, seconds=1)
    assert isinstance(lookup.verify("sms", "mallory", CASE, "5678"), Found)


def test_last_attempt_message(cases: Store) -> None:
    lookup = make_lookup(cases, Clock(T(2025, 10, 9, 12, 0)))
    outcomes = [lookup.verify("sms", "x", CASE, "0000") for _ in range(5)]
    assert outcomes[-1] == NotVerified(attempts_left=0)
    assert "尝试次数已用完" in render_outcome(outcomes[-1])[1]


# -- privacy ---------------------------------------------------------------------------------


def test_nothing_shown_or_logged_carries_personal_data(cases: Store, caplog: pytest.LogCaptureFixture) -> None:
    lookup = make_lookup(cases, Clock(T(2025, 10, 9, 12, 0)))
    shown: list[str] = []
    for case_no, factor in ((CASE, "5678"), (CASE, "0000"), (OTHER_CASE, "432x")):
        outcome = lookup.verify("sms", "13700001111", case_no, factor)
        shown += render_outcome(outcome)
        if isinstance(outcome, Found):
            shown += render_case_view(outcome.view, history=True)
    caplog.handler.addFilter(MaskingFilter())
    logging.getLogger("guidebot.cases").warning("lookup by %s for id %s", "13700001111", "51160219850505432X")
    output = "\n".join(shown) + caplog.text
    for raw in ("张三", "欧阳娜娜", "13812345678", "13900001111", "13700001111", "11010119900101123X",
                "51160219850505432X"):
        assert raw not in output
    assert "张*" in output and "欧***" in output


def test_case_view_is_frozen_and_has_no_raw_fields() -> None:
    field_names = set(CaseView.__dataclass_fields__)
    assert not field_names & {"phone", "phone_last4", "id_last4", "id_number", "applicant_name"}
