"""Case status changes → outbox rows for the case's subscribers, idempotently.

Each case subscription remembers the status (and its time) its subscriber last saw or was told
(``last_status``/``last_status_at``).  :func:`notify_cases` compares it with the case's current
status and, when they differ, queues one notice and moves the mark — in one transaction, with a
dedupe key on the outbox row as a second guard.  So:

- importing the same file twice notifies nobody twice (nothing differs the second time);
- several changes between two runs give one notice, of the current status;
- a crash between an import and its notification is caught up by the next run
  (:func:`notify_all_cases`, which ``guidebot outbox run`` calls on every poll).

At a final status (已办结 …) the notice says what to do next, invites a 好差评 rating, and the
subscription ends by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import and_, or_, select

from guidebot.cases.importer import StatusChange
from guidebot.cases.lookup import _next_step
from guidebot.cases.statuses import CaseStatus
from guidebot.outbox.broadcast import template_only_gateway
from guidebot.outbox.models import Priority, Subscription
from guidebot.outbox.queue import NewMessage, enqueue
from guidebot.outbox.ratings import arm_case_rating, case_rating_prompt
from guidebot.store.db import Store, now
from guidebot.store.models import Case

__all__ = ["notice_text", "notify_all_cases", "notify_cases", "notify_status_changes"]

ItemName = Callable[[str], str | None]
_CHUNK = 500
TEMPLATE_PARAM_CHARS = 35  # the cloud providers' limit for one template variable


def notice_text(case: Case, item_name: str) -> str:
    """The notice a subscriber gets for the case's current status (plain text, SMS-friendly)."""
    status = CaseStatus(case.status)
    lines = [
        f"【办件进度】您订阅的办件 {case.case_no}（{item_name}）状态更新为：{status.label}"
        f"（{case.status_at:%m月%d日 %H:%M}）。",
        _next_step(status, (case.status_note or "")[:120] or None, case.service_window),
    ]
    if status.is_final:
        lines += ["本办件的进度通知到此结束。", case_rating_prompt()]
    else:
        lines.append("回复“退订”可取消通知。")
    return "\n".join(lines)


def template_notice_text(case: Case) -> str:
    """The notice as an approved SMS template renders it (cloud gateways send nothing else).

    Template variables hold at most 35 characters, so the next step is cut to fit; the full text
    is one lookup away (查件).
    """
    from guidebot.handlers.sms.cloud import render_template

    status = CaseStatus(case.status)
    window = _fit(case.service_window or "受理窗口")
    if status is CaseStatus.AWAITING_CORRECTION:
        return render_template("case_correction", case_no=case.case_no,
                               materials=_fit(case.status_note or "详见受理窗口通知"), window=window)
    if status in (CaseStatus.APPROVED, CaseStatus.COMPLETED):
        return render_template("case_done", case_no=case.case_no, window=window)
    next_step = _next_step(status, (case.status_note or "")[:120] or None, case.service_window)
    return render_template("case_status", case_no=case.case_no, status=status.label,
                           next_step=_fit(next_step or "回复查件可查看详情。"))


def _fit(text: str, limit: int = TEMPLATE_PARAM_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _notice_for(channel: str, case: Case, item_name: str) -> str:
    """Free text everywhere, except SMS through a template-only cloud gateway."""
    if channel == "sms" and template_only_gateway():
        return template_notice_text(case)
    return notice_text(case, item_name)


def notify_status_changes(store: Store, changes: Sequence[StatusChange], item_name: ItemName | None = None) -> int:
    """Queue notices for the cases an import or ``set_status`` changed; returns how many were queued."""
    return notify_cases(store, [change.case_no for change in changes if change.old_status != change.new_status],
                        item_name)


def notify_all_cases(store: Store, item_name: ItemName | None = None) -> int:
    """Catch up: queue a notice for every subscribed case whose status moved since the last one."""
    return _notify(store, None, item_name)


def notify_cases(store: Store, case_nos: Iterable[str], item_name: ItemName | None = None) -> int:
    """Queue notices for these cases' subscribers where the status moved since they last heard."""
    numbers = sorted(set(case_nos))
    return sum(_notify(store, numbers[i : i + _CHUNK], item_name) for i in range(0, len(numbers), _CHUNK))


def _notify(store: Store, case_nos: list[str] | None, item_name: ItemName | None) -> int:
    if case_nos is not None and not case_nos:
        return 0
    at = now()
    moved = or_(
        Subscription.last_status.is_(None),
        Subscription.last_status != Case.status,
        Subscription.last_status_at.is_(None),
        Subscription.last_status_at != Case.status_at,
    )
    query = (
        select(Subscription, Case)
        .join(Case, Case.case_no == Subscription.case_no)
        .where(and_(Subscription.kind == "case", Subscription.active.is_(True), moved))
        .order_by(Subscription.id)
    )
    if case_nos is not None:
        query = query.where(Subscription.case_no.in_(case_nos))
    if store.dialect == "postgresql":
        query = query.with_for_update(of=Subscription, skip_locked=True)
    finished: list[tuple[str, str, str, str]] = []
    with store.session() as session:
        messages: list[NewMessage] = []
        for subscription, case in session.execute(query):
            name = (item_name(case.item_code) if item_name else None) or case.item_name or case.item_code
            key = f"case:{case.case_no}:{case.status}:{_stamp(case.status_at)}:{subscription.channel}:" \
                  f"{subscription.recipient}"
            text = _notice_for(subscription.channel, case, name)
            messages.append(NewMessage(subscription.channel, subscription.recipient, text,
                                       Priority.NOTICE, "case", key[:300]))
            subscription.last_status, subscription.last_status_at = case.status, case.status_at
            if CaseStatus(case.status).is_final:
                subscription.active, subscription.ended_at, subscription.end_reason = False, at, "completed"
                finished.append((subscription.channel, subscription.recipient, case.case_no, case.item_code))
        queued = enqueue(session, messages, at=at)
    for channel, recipient, case_no, item_code in finished:
        arm_case_rating(store, channel, recipient, case_no, item_code)
    return queued


def _stamp(at: dt.datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S")
