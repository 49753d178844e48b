"""Import cases and status updates from the approval system's CSV/XLSX exports.

The format is documented in docs/cases.md.  The guarantees:

- **all or nothing**: every row is checked first; any error (reported as row, column, message)
  means nothing is written;
- **idempotent**: a history entry is identified by (办件编号, 状态时间, 状态), so importing the
  same file again adds nothing and changes nothing;
- **out-of-order safe**: an update older than the stored status is kept in the history but
  does not overwrite the current status;
- **fast**: rows are compared in memory against what is stored, fetched in chunks, then written
  with a few executemany statements — no ORM object per row.

Personal data is reduced while reading: the applicant's name is masked at once, and only the
last 4 characters of the phone and ID numbers are kept.  Error messages never echo a value
from those columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select, update

from guidebot.cases.numbers import is_case_number, normalize_case_number
from guidebot.cases.statuses import CaseStatus, parse_status
from guidebot.privacy import mask_name
from guidebot.store.db import Store, now
from guidebot.store.models import Case, CaseEvent

__all__ = [
    "COLUMN_HEADERS",
    "ImportResult",
    "RowError",
    "StatusChange",
    "import_cases",
    "import_rows",
    "read_table",
]

# Canonical field → accepted header spellings (the first is the documented one).
COLUMN_HEADERS: dict[str, tuple[str, ...]] = {
    "case_no": ("办件编号", "办件号", "受理编号", "申办编号"),
    "item_code": ("事项编码", "事项代码"),
    "item_name": ("事项名称",),
    "applicant": ("申请人", "申请人姓名", "申请人名称"),
    "phone": ("联系电话", "手机号码", "手机号", "联系方式"),
    "id_number": ("证件号码", "身份证号码", "身份证号", "证件号"),
    "window": ("受理窗口", "窗口", "办理窗口"),
    "accepted_at": ("受理时间", "受理日期"),
    "status": ("办件状态", "状态", "当前状态"),
    "status_at": ("状态时间", "更新时间", "办理时间"),
    "note": ("备注", "补正材料", "处理意见", "说明"),
    "promised_days": ("承诺时限", "承诺时限(工作日)", "承诺期限"),
}
_HEADER_TO_FIELD = {
    re.sub(r"\s", "", unicodedata.normalize("NFKC", spelling)): name
    for name, spellings in COLUMN_HEADERS.items()
    for spelling in spellings
}
# The columns of a new case besides number and status; an update row may leave them empty.
_NEW_CASE_FIELDS = ("item_code", "applicant", "accepted_at")
# Case attributes a (newer) row may change.
_ATTRIBUTES = (
    "item_code",
    "item_name",
    "applicant_masked",
    "phone_last4",
    "id_last4",
    "service_window",
    "accepted_at",
    "promised_days",
)
_DATETIME_RE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}(?:\.\d+)?))?\s*秒?)?"
)
_MAX_PROMISED_DAYS = 3650


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in the import file. ``row`` counts like a spreadsheet: the header is row 1."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"第{self.row}行 {self.column}" if self.column else f"第{self.row}行"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A case whose current status the import (or a staff action) changed.

    ``old_status`` is None for a case the import created.  A later notification outbox hooks in
    here: one change per case, the net effect of the file.
    """

    case_no: str
    old_status: CaseStatus | None
    new_status: CaseStatus
    at: dt.datetime
    note: str | None


@dataclass(slots=True)
class ImportResult:
    """What an import did — or, when ``errors`` is not empty, why it did nothing."""

    source: str
    rows: int = 0
    cases_created: int = 0
    cases_updated: int = 0
    events_added: int = 0
    changes: list[StatusChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True)
class _Row:
    row: int
    case_no: str
    status: CaseStatus
    status_at: dt.datetime
    note: str | None
    attributes: dict[str, Any]  # only the attribute columns that are filled in this row


# -- reading files -------------------------------------------------------------------------


def _decode_csv(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Excel on Chinese Windows saves "CSV" in the ANSI code page; GB18030 is its superset.
        return data.decode("gb18030")


def read_table(path: Path) -> tuple[list[str], Iterator[list[Any]]]:
    """The header row and an iterator over the data rows of a CSV (UTF-8, UTF-8 with BOM or
    GB18030) or XLSX (first sheet) file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

        workbook = load_workbook(path, read_only=True, data_only=True)
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = [str(cell or "") for cell in next(rows, ())]

        def xlsx_rows() -> Iterator[list[Any]]:
            try:
                for values in rows:
                    yield list(values)
            finally:
                workbook.close()

        return header, xlsx_rows()
    reader = csv.reader(io.StringIO(_decode_csv(path.read_bytes()), newline=""))
    header = next(reader, [])
    return header, (list(values) for values in reader)


# -- cell conversion -----------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    text = _text(value)
    if len(text) in (16, 19) and text[4] == "-":  # the usual "2024-05-11 09:30[:00]": fast path
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    match = _DATETIME_RE.fullmatch(unicodedata.normalize("NFKC", text))
    if not match:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(float(second or 0)))
    except ValueError:
        return None


def _last4_digits(value: Any) -> str | None:
    # Masked exports ("138****5678") still end in the 4 digits we keep.
    text = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", _text(value)))
    return text[-4:] if re.search(r"\d{4}$", text) else None


def _id_last4(value: Any) -> tuple[str | None, str | None]:
    """(last 4, error message).  A spreadsheet that stored an 18-digit ID as a number has already
    lost its last digits to floating point, so that is an error, not a wrong value."""
    if isinstance(value, float) or (isinstance(value, int) and len(str(value)) > 15):
        return None, "证件号码在表格中被存成了数字，末几位已失真；请把该列设为文本后重新导出"
    text = re.sub(r"\s", "", unicodedata.normalize("NFKC", _text(value))).upper()
    if re.search(r"\d{3}[\dX]$", text):
        return text[-4:], None
    return None, "证件号码应以3位数字加1位数字或X结尾"


# -- parsing rows --------------------------------------------------------------------------


def _map_header(header: Sequence[str]) -> tuple[dict[str, int], list[str], list[RowError]]:
    columns: dict[str, int] = {}
    ignored: list[str] = []
    errors: list[RowError] = []
    for index, title in enumerate(header):
        # Templates often mark required columns with * and add notes in brackets.
        normalised = re.sub(r"[\s*]", "", unicodedata.normalize("NFKC", str(title)))
        name = _HEADER_TO_FIELD.get(normalised) or _HEADER_TO_FIELD.get(re.sub(r"\(.*\)$", "", normalised))
        if name is None:
            if normalised:
                ignored.append(str(title))
        elif name in columns:
            errors.append(RowError(1, str(title), f"与第{columns[name] + 1}列重复"))
        else:
            columns[name] = index
    for required in ("case_no", "status"):
        if required not in columns:
            errors.append(RowError(1, COLUMN_HEADERS[required][0], "缺少这一列"))
    if "status_at" not in columns and "accepted_at" not in columns:
        errors.append(RowError(1, "状态时间", "缺少这一列（或至少要有受理时间）"))
    return columns, ignored, errors


@functools.lru_cache(maxsize=65536)
def _valid_case_number(case_no: str) -> bool:
    return is_case_number(case_no)


@functools.lru_cache(maxsize=1024)
def _status_for(word: str) -> CaseStatus | None:
    return parse_status(word)


def _parse_row(row_no: int, values: list[Any], columns: dict[str, int], errors: list[RowError]) -> _Row | None:
    def cell(name: str) -> Any:
        index = columns.get(name)
        return values[index] if index is not None and index < len(values) else None

    def fail(name: str, message: str) -> None:
        errors.append(RowError(row_no, COLUMN_HEADERS[name][0], message))

    error_count = len(errors)
    case_no = normalize_case_number(_text(cell("case_no")))
    if not case_no:
        fail("case_no", "不能为空")
    elif not _valid_case_number(case_no):
        fail("case_no", "格式不符：应为8–32位数字、大写字母或连字符，且至少含8位数字")

    status_word = _text(cell("status"))
    status = _status_for(status_word) if status_word else None
    if not status_word:
        fail("status", "不能为空")
    elif status is None:
        fail("status", f"无法识别的办件状态「{status_word[:20]}」（可用的写法见 docs/cases.md）")

    attributes: dict[str, Any] = {}
    for name, target in (("item_code", "item_code"), ("item_name", "item_name"), ("window", "service_window")):
        text = _text(cell(name))
        if text:
            attributes[target] = text
    applicant = _text(cell("applicant"))
    if applicant:
        attributes["applicant_masked"] = mask_name(applicant)
    if _text(cell("phone")):
        last4 = _last4_digits(cell("phone"))
        if last4 is None:
            fail("phone", "联系电话应以4位数字结尾")
        else:
            attributes["phone_last4"] = last4
    if _text(cell("id_number")):
        id_last4, message = _id_last4(cell("id_number"))
        if message:
            fail("id_number", message)
        else:
            attributes["id_last4"] = id_last4
    if _text(cell("accepted_at")):
        accepted_at = _parse_datetime(cell("accepted_at"))
        if accepted_at is None:
            fail("accepted_at", "无法识别的时间，请写成 2024-05-11 09:30")
        else:
            attributes["accepted_at"] = accepted_at
    if _text(cell("promised_days")):
        text = _text(cell("promised_days"))
        if not text.isdigit() or int(text) > _MAX_PROMISED_DAYS:
            fail("promised_days", "应为工作日天数（整数）")
        else:
            attributes["promised_days"] = int(text)

    status_at: dt.datetime | None
    if _text(cell("status_at")):
        status_at = _parse_datetime(cell("status_at"))
        if status_at is None:
            fail("status_at", "无法识别的时间，请写成 2024-05-11 09:30")
    else:
        # The acceptance row of a new case often carries only 受理时间.
        status_at = attributes.get("accepted_at")
        accepted_column = COLUMN_HEADERS["accepted_at"][0]
        if status_at is None and accepted_column not in {error.column for error in errors[error_count:]}:
            fail("status_at", "状态时间和受理时间不能都为空")

    if len(errors) > error_count or status is None or status_at is None:
        return None
    note = _text(cell("note")) or None
    return _Row(row_no, case_no, status, status_at, note, attributes)


# -- writing -------------------------------------------------------------------------------


def _chunk_size() -> int:
    # SQLite before 3.32 allows 999 bound parameters per statement.
    return 5000 if sqlite3.sqlite_version_info >= (3, 32) else 900


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    size = _chunk_size()
    for start in range(0, len(values), size):
        yield values[start : start + size]


def import_rows(
    store: Store,
    header: Sequence[str],
    rows: Iterable[list[Any]],
    source: str,
    recorded_at: dt.datetime | None = None,
) -> ImportResult:
    """Import already-read rows (``header`` is row 1). See the module docstring for the rules."""
    result = ImportResult(source=source)
    columns, result.ignored_columns, result.errors = _map_header(header)
    if result.errors:
        return result

    parsed: list[_Row] = []
    # Cases with a row that failed to parse: their other rows are still checked against the
    # database, but "a new case lacks a column" would only repeat the same problem.
    cases_with_bad_rows: set[str] = set()
    case_no_index = columns["case_no"]
    for row_no, values in enumerate(rows, start=2):
        if not any(_text(value) for value in values):
            continue  # blank lines at the end of hand-edited files
        result.rows += 1
        row = _parse_row(row_no, values, columns, result.errors)
        if row is not None:
            parsed.append(row)
        elif case_no_index < len(values):
            cases_with_bad_rows.add(normalize_case_number(_text(values[case_no_index])))

    by_case: dict[str, list[_Row]] = {}
    for row in parsed:
        by_case.setdefault(row.case_no, []).append(row)
    for case_rows in by_case.values():
        case_rows.sort(key=lambda row: (row.status_at, row.row))

    recorded_at = recorded_at or now()
    with store.session() as session:
        case_numbers = list(by_case)
        stored: dict[str, dict[str, Any]] = {}
        known_events: set[tuple[str, dt.datetime, str]] = set()
        case_columns = [Case.case_no, Case.status, Case.status_at, Case.status_note] + [
            getattr(Case, name) for name in _ATTRIBUTES
        ]
        for chunk in _chunks(case_numbers):
            for record in session.execute(select(*case_columns).where(Case.case_no.in_(chunk))).mappings():
                stored[record["case_no"]] = dict(record)
            known_events.update(
                (case_no, occurred_at, status)
                for case_no, occurred_at, status in session.execute(
                    select(CaseEvent.case_no, CaseEvent.occurred_at, CaseEvent.status).where(
                        CaseEvent.case_no.in_(chunk)
                    )
                )
            )

        new_cases: list[dict[str, Any]] = []
        updated_cases: list[dict[str, Any]] = []
        new_events: list[dict[str, Any]] = []
        for case_no, case_rows in by_case.items():
            before = stored.get(case_no)
            after = dict(before) if before else {"case_no": case_no, "status": None, "status_at": None}
            status_from_file = False
            for row in case_rows:
                # Out-of-order safety: only a newer status replaces the current one.  Within one
                # file a later row at the same time wins; against the database it does not, so
                # a re-import changes nothing.
                current_at = after["status_at"]
                if (
                    current_at is None
                    or row.status_at > current_at
                    or (row.status_at == current_at and status_from_file)
                ):
                    after.update(status=row.status.value, status_at=row.status_at, status_note=row.note)
                    after.update(row.attributes)
                    status_from_file = True
                elif before is None:
                    # A new case takes attributes from every row, oldest first.
                    after.update(row.attributes)
                key = (case_no, row.status_at, row.status.value)
                if key not in known_events:
                    known_events.add(key)
                    new_events.append(
                        {
                            "case_no": case_no,
                            "occurred_at": row.status_at,
                            "status": row.status.value,
                            "note": row.note,
                            "source": source,
                            "recorded_at": recorded_at,
                        }
                    )
            if before is None and case_no not in cases_with_bad_rows:
                missing = [name for name in _NEW_CASE_FIELDS if not after.get(_field_key(name))]
                if not after.get("phone_last4") and not after.get("id_last4"):
                    missing.append("phone")
                for name in missing:
                    result.errors.append(RowError(case_rows[0].row, COLUMN_HEADERS[name][0], "新办件必须填写这一列"))
            if before is None:
                after.setdefault("status_note", None)
                for name in _ATTRIBUTES:
                    after.setdefault(name, None)
                after["updated_at"] = recorded_at
                new_cases.append(after)
                result.changes.append(
                    StatusChange(case_no, None, CaseStatus(after["status"]), after["status_at"], after["status_note"])
                )
            elif after != before:
                after["updated_at"] = recorded_at
                updated_cases.append({f"b_{key}": value for key, value in after.items()})
                if after["status"] != before["status"]:
                    result.changes.append(
                        StatusChange(
                            case_no,
                            CaseStatus(before["status"]),
                            CaseStatus(after["status"]),
                            after["status_at"],
                            after["status_note"],
                        )
                    )
        if result.errors:
            result.errors.sort(key=lambda error: error.row)
            result.changes.clear()
            session.rollback()
            return result

        if new_cases:
            session.execute(Case.__table__.insert(), new_cases)
        if updated_cases:
            mutable = ["status", "status_at", "status_note", "updated_at", *_ATTRIBUTES]
            statement = (
                update(Case.__table__)
                .where(Case.__table__.c.case_no == bindparam("b_case_no"))
                .values({name: bindparam(f"b_{name}") for name in mutable})
            )
            session.execute(statement, updated_cases)
        if new_events:
            session.execute(CaseEvent.__table__.insert(), new_events)
        result.cases_created = len(new_cases)
        result.cases_updated = len(updated_cases)
        result.events_added = len(new_events)
    return result


def _field_key(name: str) -> str:
    return "applicant_masked" if name == "applicant" else name


def import_cases(store: Store, path: Path | str, recorded_at: dt.datetime | None = None) -> ImportResult:
    """Import a CSV/XLSX export file; the history records ``import:<file name>`` as the source."""
    path = Path(path)
    header, rows = read_table(path)
    return import_rows(store, header, rows, source=f"import:{path.name}", recorded_at=recorded_at)
