"""Case import (CSV/XLSX) and the staff commands — on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from guidebot.cases import cli as cases_cli
from guidebot.cases.importer import RowError, StatusChange, import_cases
from guidebot.cases.statuses import STATUS_WORDS, CaseStatus, parse_status
from guidebot.store.db import Store
from guidebot.store.models import Case, CaseEvent
from tests.store_fixtures import (  # noqa: F401 — fixtures
    CASE_HEADER,
    new_case_row,
    postgres_schema_url,
    store,
    store_url,
    update_row,
    write_case_csv,
)

T = dt.datetime
RAW_PERSONAL = ("张三", "13812345678", "11010119900101123X", "110101199001011234")


def snapshot(db: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every stored case and event, for comparing "nothing changed"."""
    with db.session() as session:
        cases = [tuple(row) for row in session.execute(select(Case.__table__).order_by(Case.case_no))]
        events = [tuple(row) for row in session.execute(select(CaseEvent.__table__).order_by(CaseEvent.id))]
    return cases, events


def test_import_creates_cases_with_only_masked_personal_data(store: Store, tmp_path: Path) -> None:  # noqa: F811
    path = write_case_csv(
        tmp_path / "cases.csv",
        [
            new_case_row("SC2025092600001", status="收件"),
            update_row("SC2025092600001", "补正", "2025-09-28 09:00", "户口簿复印件；医院诊断证明"),
            new_case_row("SC2025092600002", name="欧阳娜娜", phone="139-0000-1111", id_number=""),
        ],
    )
    result = import_cases(store, path, recorded_at=T(2025, 9, 29, 8, 0))

    assert result.ok, result.errors
    assert (result.rows, result.cases_created, result.cases_updated, result.events_added) == (3, 2, 0, 3)
    assert result.changes == [
        StatusChange(
            "SC2025092600001",
            None,
            CaseStatus.AWAITING_CORRECTION,
            T(2025, 9, 28, 9),
            "户口簿复印件；医院诊断证明",
        ),
        StatusChange("SC2025092600002", None, CaseStatus.ACCEPTED, T(2025, 9, 26, 10), None),
    ]
    with store.session() as session:
        first = session.get(Case, "SC2025092600001")
        second = session.get(Case, "SC2025092600002")
        assert first is not None and second is not None
        assert (first.applicant_masked, first.phone_last4, first.id_last4) == ("张*", "5678", "123X")
        assert (second.applicant_masked, second.phone_last4, second.id_last4) == ("欧***", "1111", None)
        assert (first.status, first.status_at, first.status_note) == (
            "待补正",
            T(2025, 9, 28, 9),
            "户口簿复印件；医院诊断证明",
        )
        assert first.accepted_at == T(2025, 9, 26, 10)
        history = session.scalars(
            select(CaseEvent).where(CaseEvent.case_no == "SC2025092600001").order_by(CaseEvent.occurred_at)
        ).all()
        assert [(event.status, event.source) for event in history] == [
            ("已受理", "import:cases.csv"),
            ("待补正", "import:cases.csv"),
        ]
    stored_text = repr(snapshot(store))
    for raw in RAW_PERSONAL:
        assert raw not in stored_text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"], ids=["utf8", "utf8-bom", "gb18030"])
def test_csv_encodings(store: Store, tmp_path: Path, encoding: str) -> None:  # noqa: F811
    path = write_case_csv(tmp_path / "cases.csv", [new_case_row("SC2025092600001", status="审核中")], encoding)
    result = import_cases(store, path)
    assert result.ok, result.errors
    with store.session() as session:
        case = session.get(Case, "SC2025092600001")
        assert case is not None
        assert (case.applicant_masked, case.status, case.service_window) == ("张*", "审查中", "综合窗口3号")


def test_xlsx_with_typed_cells(store: Store, tmp_path: Path) -> None:  # noqa: F811
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(CASE_HEADER)
    # Spreadsheets hold real datetimes and numbers: a phone number typed as a number is fine.
    sheet.append(
        ["SC2025092600001", "511A0138000000", "", "张三", 13812345678, "11010119900101123X", "3号窗口",
         T(2025, 9, 26, 10, 0), "准予许可", T(2025, 10, 10, 15, 30), ""]
    )  # fmt: skip
    path = tmp_path / "cases.xlsx"
    workbook.save(path)
    result = import_cases(store, path)
    assert result.ok, result.errors
    with store.session() as session:
        case = session.get(Case, "SC2025092600001")
        assert case is not None
        assert (case.phone_last4, case.status, case.status_at) == (
            "5678",
            "准予许可",
            T(2025, 10, 10, 15, 30),
        )


def test_xlsx_id_number_stored_as_number_is_an_error(store: Store, tmp_path: Path) -> None:  # noqa: F811
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(CASE_HEADER)
    row: list[Any] = new_case_row("SC2025092600001")
    row[5] = 110101199001011234  # Excel keeps 15 significant digits: the last ones are already wrong
    sheet.append(row)
    path = tmp_path / "cases.xlsx"
    workbook.save(path)
    result = import_cases(store, path)
    assert [(error.row, error.column) for error in result.errors] == [(2, "证件号码")]
    assert "1234" not in str(result.errors[0])
    assert snapshot(store) == ([], [])


def test_same_file_twice_changes_nothing(store: Store, tmp_path: Path) -> None:  # noqa: F811
    path = write_case_csv(
        tmp_path / "cases.csv",
        [
            new_case_row("SC2025092600001"),
            update_row("SC2025092600001", "审查中", "2025-09-28 09:00"),
            update_row("SC2025092600001", "准予许可", "2025-10-10 16:00", "请到3号窗口领证"),
            new_case_row("SC2025092600002"),
        ],
    )
    first = import_cases(store, path, recorded_at=T(2025, 10, 11, 8, 0))
    assert first.ok and first.events_added == 4
    before = snapshot(store)

    second = import_cases(store, path, recorded_at=T(2025, 10, 12, 8, 0))
    assert second.ok
    assert (second.cases_created, second.cases_updated, second.events_added, second.changes) == (0, 0, 0, [])
    assert snapshot(store) == before  # not even a timestamp moved


def test_older_update_goes_to_history_but_does_not_overwrite(store: Store, tmp_path: Path) -> None:  # noqa: F811
    import_cases(
        store,
        write_case_csv(
            tmp_path / "day2.csv",
            [new_case_row("SC2025092600001"), update_row("SC2025092600001", "已办结", "2025-10-10 16:00")],
        ),
    )
    late = import_cases(
        store,
        write_case_csv(tmp_path / "day1.csv", [update_row("SC2025092600001", "补正", "2025-09-28 09:00", "缺户口簿")]),
    )
    assert late.ok
    assert (late.cases_updated, late.events_added, late.changes) == (0, 1, [])
    with store.session() as session:
        case = session.get(Case, "SC2025092600001")
        assert case is not None
        assert (case.status, case.status_at) == ("已办结", T(2025, 10, 10, 16))
        statuses = session.scalars(
            select(CaseEvent.status).where(CaseEvent.case_no == "SC2025092600001").order_by(CaseEvent.occurred_at)
        ).all()
        assert statuses == ["已受理", "待补正", "已办结"]

    newer = import_cases(
        store,
        write_case_csv(
            tmp_path / "day3.csv", [update_row("SC2025092600001", "撤件", "2025-10-11 09:00", "申请人撤回")]
        ),
    )
    assert newer.changes == [
        StatusChange("SC2025092600001", CaseStatus.COMPLETED, CaseStatus.WITHDRAWN, T(2025, 10, 11, 9), "申请人撤回")
    ]


def test_rows_of_one_file_apply_in_time_order_not_file_order(store: Store, tmp_path: Path) -> None:  # noqa: F811
    path = write_case_csv(
        tmp_path / "shuffled.csv",
        [
            update_row("SC2025092600001", "不予许可", "2025-10-10 16:00", "不符合条件"),
            new_case_row("SC2025092600001"),
            update_row("SC2025092600001", "审查中", "2025-09-28 09:00"),
        ],
    )
    result = import_cases(store, path)
    assert result.ok, result.errors
    with store.session() as session:
        case = session.get(Case, "SC2025092600001")
        assert case is not None
        assert (case.status, case.status_note, case.applicant_masked) == ("不予许可", "不符合条件", "张*")


def test_one_bad_row_imports_nothing_and_reports_every_error(store: Store, tmp_path: Path) -> None:  # noqa: F811
    rows = [
        new_case_row("SC2025092600001"),
        new_case_row("SC2025092600002", status="据说快好了"),
        new_case_row("SC2025092600003", accepted="去年秋天"),
        new_case_row("SC-1", phone="13812345678"),
        update_row("SC2025092600009", "审查中", "2025-09-28 09:00"),  # unknown case, no details
        new_case_row("SC2025092600004", phone="", id_number=""),
        new_case_row("SC2025092600005", phone="138123456ab"),
    ]
    result = import_cases(store, write_case_csv(tmp_path / "bad.csv", rows))
    assert not result.ok
    assert [(error.row, error.column) for error in result.errors] == [
        (3, "办件状态"),
        (4, "受理时间"),
        (5, "办件编号"),
        (6, "事项编码"),
        (6, "申请人"),
        (6, "受理时间"),
        (6, "联系电话"),
        (7, "联系电话"),
        (8, "联系电话"),
    ]
    assert result.changes == []
    assert snapshot(store) == ([], [])
    # Error messages never echo personal data.
    for raw in RAW_PERSONAL:
        assert all(raw not in str(error) for error in result.errors)


def test_missing_required_header_is_reported(store: Store, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "no-status.csv"
    path.write_text("办件编号,申请人,受理时间\nSC2025092600001,张三,2025-09-26\n", encoding="utf-8")
    result = import_cases(store, path)
    assert result.errors == [RowError(1, "办件状态", "缺少这一列")]


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("受理", CaseStatus.ACCEPTED),
        ("收件", CaseStatus.ACCEPTED),
        ("审查", CaseStatus.IN_REVIEW),
        ("审核中", CaseStatus.IN_REVIEW),
        ("办理中", CaseStatus.IN_REVIEW),
        ("补正", CaseStatus.AWAITING_CORRECTION),
        ("补齐补正", CaseStatus.AWAITING_CORRECTION),
        ("待补正", CaseStatus.AWAITING_CORRECTION),
        ("办结", CaseStatus.COMPLETED),
        ("已办结", CaseStatus.COMPLETED),
        ("准予许可", CaseStatus.APPROVED),
        ("已办结（准予许可）", CaseStatus.APPROVED),
        ("不予许可", CaseStatus.DENIED),
        ("不予受理", CaseStatus.NOT_ACCEPTED),
        ("撤回", CaseStatus.WITHDRAWN),
        ("撤件", CaseStatus.WITHDRAWN),
        (" 已撤回 ", CaseStatus.WITHDRAWN),
    ],
)
def test_status_words(word: str, status: CaseStatus) -> None:
    assert parse_status(word) is status


def test_status_vocabulary_is_complete_and_final_states_are_right() -> None:
    assert {parse_status(status.value) for status in CaseStatus} == set(CaseStatus)
    assert set(STATUS_WORDS.values()) == set(CaseStatus)
    assert parse_status("快好了") is None
    assert [status for status in CaseStatus if status.is_final] == [
        CaseStatus.COMPLETED,
        CaseStatus.APPROVED,
        CaseStatus.DENIED,
        CaseStatus.NOT_ACCEPTED,
        CaseStatus.WITHDRAWN,
    ]
    assert CaseStatus.APPROVED.label == "已办结（准予许可）"


def test_hundred_thousand_rows_well_under_a_minute(tmp_path: Path) -> None:
    """The issue's throughput bar, on SQLite (PostgreSQL figures are in bench/ and docs/cases.md)."""
    from guidebot.store.db import open_store

    rows = []
    for number in range(50_000):
        case_no = f"SC2025{number:010d}"
        rows.append(new_case_row(case_no))
        rows.append(update_row(case_no, "审查中", "2025-09-28 09:00"))
    path = write_case_csv(tmp_path / "big.csv", rows)
    big_store = open_store(f"sqlite:///{tmp_path / 'big.sqlite3'}")
    try:
        started = time.perf_counter()
        result = import_cases(big_store, path)
        elapsed = time.perf_counter() - started
    finally:
        big_store.close()
    assert result.ok and result.events_added == 100_000
    assert elapsed < 30, f"100,000 rows took {elapsed:.1f} s"


# -- staff commands ------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="guidebot")
    cases_cli.register(
        parser.add_subparsers(dest="command", required=True),
        item_name=lambda code: "适龄儿童、少年延缓入学审批" if code == "511A0138000000" else None,
        promised_days=lambda code: 5,
    )
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_import_show_and_set_status(
    store_url: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_case_csv(
        tmp_path / "cases.csv",
        [
            new_case_row("SC2025092600001"),
            update_row("SC2025092600001", "补正", "2025-09-28 09:00", "户口簿"),
        ],
    )
    db = ["--database-url", store_url]
    assert run_cli(["db", "upgrade", *db]) == 0
    assert run_cli(["cases", "import", str(path), *db]) == 0
    assert "新办件 1 件" in capsys.readouterr().out

    assert (
        run_cli(["cases", "set-status", "sc2025092600001", "审查中", "--note", "材料已补齐", "--by", "王五", *db]) == 0
    )
    assert "待补正 → 审查中" in capsys.readouterr().out

    assert run_cli(["cases", "show", "SC2025092600001", *db]) == 0
    shown = capsys.readouterr().out
    assert "事项：适龄儿童、少年延缓入学审批（511A0138000000）" in shown
    assert "申请人：张*" in shown
    assert "当前状态：审查中" in shown
    assert "[import:cases.csv]" in shown
    assert "[staff:王五]  材料已补齐" in shown
    # 2025-09-26 + 5 working days across 国庆 is 2025-10-10; long past by now.
    assert "2025-10-10（受理后5个工作日），已超期" in shown
    for raw in (*RAW_PERSONAL, "5678", "123X"):  # not even the verification digits
        assert raw not in shown

    assert run_cli(["cases", "set-status", "SC2025092600001", "快好了", *db]) == 1
    assert run_cli(["cases", "show", "SC2025099999999", *db]) == 1


def test_cli_import_reports_errors_and_fails(
    store_url: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_case_csv(tmp_path / "bad.csv", [new_case_row("SC2025092600001", status="不知道")])
    assert run_cli(["cases", "import", str(path), "--database-url", store_url]) == 1
    output = capsys.readouterr().out
    assert "未写入任何数据" in output
    assert "第2行 办件状态" in output
