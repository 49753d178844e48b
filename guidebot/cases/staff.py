"""Staff operations on cases: read one with its history, change its status.

Every change is a :class:`CaseEvent` whose source names who made it (``staff:<user>``), written
in the same transaction as the case's new status — the hook a notification outbox will use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from guidebot.cases.importer import StatusChange
from guidebot.cases.numbers import normalize_case_number
from guidebot.cases.statuses import CaseStatus, parse_status
from guidebot.store.db import Store, now
from guidebot.store.models import Case, CaseEvent

__all__ = ["CaseNotFound", "CaseRecord", "UnknownStatus", "get_case", "set_status"]


class CaseNotFound(LookupError):
    def __init__(self, case_no: str) -> None:
        super().__init__(f"没有办件编号为 {case_no} 的办件")
        self.case_no = case_no


class UnknownStatus(ValueError):
    def __init__(self, word: str) -> None:
        choices = "、".join(status.value for status in CaseStatus)
        super().__init__(f"无法识别的办件状态「{word}」，可用：{choices}")
        self.word = word


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A stored case and its full history (with sources), as staff see it."""

    case: Case
    events: tuple[CaseEvent, ...]


def get_case(store: Store, case_no: str) -> CaseRecord | None:
    """The case with this exact number and its history, oldest first; None if unknown."""
    case_no = normalize_case_number(case_no)
    with store.session() as session:
        case = session.get(Case, case_no)
        if case is None:
            return None
        history = select(CaseEvent).where(CaseEvent.case_no == case_no).order_by(CaseEvent.occurred_at, CaseEvent.id)
        events = session.scalars(history).all()
        return CaseRecord(case, tuple(events))


def set_status(
    store: Store,
    case_no: str,
    status: CaseStatus | str,
    note: str | None,
    by: str,
    at: dt.datetime | None = None,
) -> StatusChange:
    """Record a staff status change (kept in the history with ``staff:<by>``).

    The case's current status follows unless a newer status is already stored (e.g. an import
    of a later export ran meanwhile); the history gets the entry either way.
    """
    if not isinstance(status, CaseStatus):
        parsed = parse_status(status)
        if parsed is None:
            raise UnknownStatus(status)
        status = parsed
    if not by.strip():
        raise ValueError("必须写明操作人（--by）")
    case_no = normalize_case_number(case_no)
    at = at or now()
    with store.session() as session:
        case = session.get(Case, case_no, with_for_update=True)
        if case is None:
            raise CaseNotFound(case_no)
        old_status = CaseStatus(case.status)
        session.add(
            CaseEvent(
                case_no=case_no,
                occurred_at=at,
                status=status.value,
                note=note,
                source=f"staff:{by.strip()}",
                recorded_at=now(),
            )
        )
        if at >= case.status_at:
            case.status, case.status_at, case.status_note = status.value, at, note
            case.updated_at = now()
            return StatusChange(case_no, old_status, status, at, note)
        return StatusChange(case_no, old_status, old_status, case.status_at, case.status_note)
