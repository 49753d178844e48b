"""Staff broadcasts: who gets a notice, what it costs on SMS, now or at a set time.

- :func:`dry_run` counts the recipients per channel and, for SMS, the segments (GSM-7 160 per
  single message / 153 per part; UCS-2 — any Chinese text — 70 / 67), writing nothing.
- :func:`create_broadcast` stores the broadcast and, when it is due, one outbox row per
  recipient in the same transaction.  A broadcast for later is stored as ``scheduled``; the
  dispatcher writes its rows when the time comes (:func:`release_due_broadcasts`), so it
  survives a restart and reaches whoever is subscribed at that time.
- Quiet hours are the dispatcher's business: a broadcast created at 22:00 waits until 08:00.
- SMS may get their own, shorter text (``sms_text``; else the main text).  Through a
  template-only cloud gateway (``GUIDEBOT_SMS_GATEWAY=aliyun``) SMS rows are the approved
  ``notice`` template with that text as its ``content`` parameter; a text that does not fit the
  parameter (35 characters) is refused before anything is written, and the dry run warns.

The audience is the active notice subscribers ("订阅通知") not on the stop list: all of them for a
broadcast without filter; with ``department``/``item``, those subscribed to everything, to that
department, or to that item (an item subscription remembers its item's department).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
from dataclasses import dataclass, field, replace

from sqlalchemy import DateTime, Select, Text, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from guidebot.outbox.models import (
    Broadcast,
    BroadcastStatus,
    MessageStatus,
    OutboxMessage,
    Priority,
    RecipientStop,
    Subscription,
)
from guidebot.outbox.queue import _dialect, _insert
from guidebot.store.db import Store, now

__all__ = [
    "OPT_OUT_FOOTER",
    "BroadcastPlan",
    "BroadcastReport",
    "SmsCost",
    "broadcast_report",
    "create_broadcast",
    "dry_run",
    "release_due_broadcasts",
    "sms_segments",
    "template_only_gateway",
]

OPT_OUT_FOOTER = "（回复“退订”不再接收通知）"
MAX_TEXT = 1000
SMS_CHANNEL = "sms"

# GSM 03.38 basic set, and the extension set whose characters take two septets.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class SmsCost:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets or UTF-16 code units
    segments: int


def sms_segments(text: str) -> SmsCost:
    """How many SMS segments ``text`` takes: GSM-7 ≤160 single / 153 per part, UCS-2 ≤70 / 67."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsCost(encoding, units, segments)


def template_only_gateway() -> bool:
    """Whether SMS go through a cloud gateway that sends approved templates only."""
    return os.environ.get("GUIDEBOT_SMS_GATEWAY", "kannel").strip().lower() == "aliyun"


@functools.lru_cache(maxsize=4)
def _configured_center(catalog_path: str | None) -> str:
    from guidebot.app import load_configured_catalog
    from guidebot.settings import Settings

    return load_configured_catalog(Settings.load()).center.name


def center_name() -> str:
    """The center's name as the notice template's ``center`` (from the catalog in use; cached)."""
    from guidebot.settings import Settings

    path = Settings.load().catalog_path
    return _configured_center(str(path) if path else None)


@dataclass(frozen=True)
class BroadcastPlan:
    """A broadcast as created (``broadcast_id`` set) or as a dry run would create it."""

    broadcast_id: int | None
    text: str  # as sent, with the opt-out footer
    department: str | None
    item_code: str | None
    send_at: dt.datetime
    scheduled: bool  # True: waits in the database for send_at; rows are written then
    recipients: dict[str, int] = field(default_factory=dict)  # per channel (now, for a scheduled one)
    sms: SmsCost | None = None
    sms_text: str | None = None  # what SMS rows get, when it differs from ``text``
    warnings: tuple[str, ...] = ()  # what would refuse it (a dry run shows them; creating raises)

    @property
    def total(self) -> int:
        return sum(self.recipients.values())

    @property
    def sms_segments_total(self) -> int:
        return (self.sms.segments if self.sms else 0) * self.recipients.get("sms", 0)

    def describe(self) -> list[str]:
        """Lines for the terminal and the Telegram /broadcast preview (warnings first)."""
        lines = [f"⚠ {warning}" for warning in self.warnings]
        lines.append(f"收件人：共 {self.total} 人")
        for channel, count in sorted(self.recipients.items()):
            line = f"  {channel}: {count} 人"
            if channel == SMS_CHANNEL and self.sms is not None:
                line += (f"，每条 {self.sms.segments} 段（{self.sms.encoding}，{self.sms.units} 字符），"
                         f"共 {self.sms_segments_total} 段")
            lines.append(line)
        if self.sms_text is not None and (self.recipients.get(SMS_CHANNEL) or self.scheduled):
            lines.append(f"短信内容：{self.sms_text}")
        return lines


@dataclass(frozen=True)
class _Texts:
    """A broadcast's texts as sent: everyone's, and the SMS one when it differs."""

    text: str
    sms_text: str | None
    problem: str | None  # why SMS cannot carry it (template-only gateway), or None


def _texts(text: str, sms_text: str | None, center: str | None) -> _Texts:
    body = _message_text(text)
    if sms_text is not None and not sms_text.strip():
        sms_text = None
    if not template_only_gateway():
        return _Texts(body, _message_text(sms_text) if sms_text is not None else None, None)
    from guidebot.handlers.sms.cloud import MAX_PARAM_CHARS, TemplateError, render_template

    # The approved notice template carries the text as one parameter; the opt-out wording, if
    # the provider wants it, is part of the registered template itself.
    content = " ".join((sms_text if sms_text is not None else text).split())
    which = "短信内容（--sms-text）" if sms_text is not None else "通知内容"
    if len(content) > MAX_PARAM_CHARS:
        return _Texts(body, None, f"短信网关只能发送已备案的模板短信：{which}最多 {MAX_PARAM_CHARS} 字，现为 "
                                  f"{len(content)} 字。请另写一条不超过 {MAX_PARAM_CHARS} 字的短信内容"
                                  "（guidebot broadcast --sms-text …），短信订阅者收到它，其他渠道收到完整通知。")
    try:
        return _Texts(body, render_template("notice", center=center or center_name(), content=content), None)
    except TemplateError as error:  # the center's name itself is too long for the parameter
        return _Texts(body, None, f"短信模板无法生成：{error}")


def _message_text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("通知内容不能为空")
    if len(cleaned) > MAX_TEXT:
        raise ValueError(f"通知内容过长（{len(cleaned)} 字，最多 {MAX_TEXT} 字）")
    return cleaned + OPT_OUT_FOOTER


def _audience(department: str | None, item_code: str | None) -> Select[tuple[str, str]]:
    """The distinct (channel, recipient) pairs a broadcast goes to, as a query."""
    query = select(Subscription.channel, Subscription.recipient).where(
        Subscription.kind == "notices",
        Subscription.active.is_(True),
        ~exists().where(RecipientStop.channel == Subscription.channel,
                        RecipientStop.recipient == Subscription.recipient),
    )
    if department or item_code:
        scope = [Subscription.scope == "all"]
        if department:
            scope.append(Subscription.department == department)
        if item_code:
            scope.append(Subscription.item_code == item_code)
        query = query.where(or_(*scope))
    return query.distinct()


def _recipients(session: Session, department: str | None, item_code: str | None) -> dict[str, int]:
    audience = _audience(department, item_code).subquery()
    counts = session.execute(select(audience.c.channel, func.count()).group_by(audience.c.channel)).all()
    return {channel: int(n) for channel, n in counts}


def _plan(texts: _Texts, recipients: dict[str, int], department: str | None, item_code: str | None,
          send_at: dt.datetime, scheduled: bool, broadcast_id: int | None, sms_signature: str) -> BroadcastPlan:
    # A scheduled broadcast reaches whoever is subscribed then, so an SMS problem counts even
    # when nobody gets SMS today.
    sms_reached = bool(recipients.get(SMS_CHANNEL)) or scheduled
    warnings = (texts.problem,) if texts.problem and sms_reached else ()
    sms_body = texts.sms_text or texts.text
    sms = sms_segments(sms_signature + sms_body) if recipients.get(SMS_CHANNEL) else None
    return BroadcastPlan(broadcast_id, texts.text, department, item_code, send_at, scheduled, recipients, sms,
                         texts.sms_text, warnings)


def dry_run(store: Store, text: str, department: str | None = None, item: str | None = None,
            at: dt.datetime | None = None, *, sms_signature: str = "", sms_text: str | None = None,
            center: str | None = None) -> BroadcastPlan:
    """What :func:`create_broadcast` would do, writing nothing; what would refuse it is in ``warnings``."""
    current = now()
    send_at = at or current
    texts = _texts(text, sms_text, center)
    with store.session() as session:
        recipients = _recipients(session, department, item)
    return _plan(texts, recipients, department, item, send_at, send_at > current, None, sms_signature)


def _materialize(session: Session, broadcast: Broadcast, at: dt.datetime) -> int:
    """One outbox row per recipient, written by the database itself (INSERT … SELECT)."""
    audience = _audience(broadcast.department, broadcast.item_code).subquery()
    text = literal(broadcast.text, Text())
    if broadcast.sms_text is not None:
        text = case((audience.c.channel == SMS_CHANNEL, literal(broadcast.sms_text, Text())), else_=text)
    rows = select(
        audience.c.channel,
        audience.c.recipient,
        text,
        literal(int(Priority.BULK)),
        literal("broadcast"),
        literal(f"broadcast:{broadcast.id}:") + audience.c.channel + literal(":") + audience.c.recipient,
        literal(broadcast.id),
        literal(MessageStatus.QUEUED.value),
        literal(0),
        literal(at, DateTime()),
        literal(at, DateTime()),
        literal(at, DateTime()),
    ).where(audience.c.channel.is_not(None))  # a WHERE keeps SQLite's parser off "ON CONFLICT" ambiguity
    columns = ["channel", "recipient", "text", "priority", "kind", "dedupe_key", "broadcast_id", "status",
               "attempts", "not_before", "created_at", "updated_at"]
    insert = _insert(_dialect(session), OutboxMessage).from_select(columns, rows)
    added = session.execute(insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(OutboxMessage.id))
    return len(added.all())


def create_broadcast(store: Store, text: str, department: str | None = None, item: str | None = None,
                     at: dt.datetime | None = None, *, by: str = "staff", sms_signature: str = "",
                     sms_text: str | None = None, center: str | None = None) -> BroadcastPlan:
    """Store a broadcast; when due now, its outbox rows are written in the same transaction.

    ``sms_text``: what SMS subscribers get instead of ``text``.  Raises ValueError — before
    anything is written — when the text is empty or too long, or SMS cannot carry it (the
    dry run's warning).
    """
    current = now()
    send_at = at or current
    scheduled = send_at > current
    texts = _texts(text, sms_text, center)
    with store.session() as session:
        plan = _plan(texts, _recipients(session, department, item), department, item, send_at, scheduled, None,
                     sms_signature)
        if plan.warnings:
            raise ValueError(plan.warnings[0])
        broadcast = Broadcast(text=texts.text, sms_text=texts.sms_text, department=department, item_code=item,
                              send_at=send_at,
                              status=(BroadcastStatus.SCHEDULED if scheduled else BroadcastStatus.QUEUED).value,
                              created_at=current, created_by=by[:128], recipients=0)
        session.add(broadcast)
        session.flush()
        if not scheduled:
            broadcast.recipients = _materialize(session, broadcast, current)
    return replace(plan, broadcast_id=broadcast.id)


def release_due_broadcasts(store: Store, at: dt.datetime | None = None) -> int:
    """Write the rows of every scheduled broadcast whose time has come; returns how many."""
    at = at or now()
    with store.session() as session:
        due = session.scalars(
            select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SCHEDULED.value, Broadcast.send_at <= at)
        ).all()
    released = 0
    for broadcast_id in due:
        with store.session() as session:
            # The conditional update is the claim: of two dispatchers, one gets the row.
            taken = session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.SCHEDULED.value)
                .values(status=BroadcastStatus.QUEUED.value)
            ).rowcount
            if not taken:
                continue
            broadcast = session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            broadcast.recipients = _materialize(session, broadcast, at)
            released += 1
    return released


@dataclass(frozen=True)
class BroadcastReport:
    id: int
    created_at: dt.datetime
    send_at: dt.datetime
    status: str
    text: str
    recipients: int
    by_status: dict[str, int]


def broadcast_report(store: Store, limit: int = 20) -> list[BroadcastReport]:
    """The latest broadcasts with their rows counted by status (newest first)."""
    with store.session() as session:
        broadcasts = session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)).all()
        ids = [b.id for b in broadcasts]
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        if ids:
            rows = session.execute(
                select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
                .where(OutboxMessage.broadcast_id.in_(ids))
                .group_by(OutboxMessage.broadcast_id, OutboxMessage.status)
            ).all()
            for broadcast_id, status, n in rows:
                counts[broadcast_id][status] = int(n)
        return [BroadcastReport(b.id, b.created_at, b.send_at, b.status, b.text, b.recipients, counts[b.id])
                for b in broadcasts]
