"""Subscriptions with consent, and the conversation that gives and takes it back.

    citizen (after a case lookup): 订阅            → this case's every status change, on this channel
    citizen: 订阅通知                               → the center's notices (all)
    citizen: 订阅通知 公安局 / 订阅通知 身份证      → only one department's / one item's notices
    citizen: 退订 · TD · 取消订阅 · STOP · /unsubscribe → everything stops, with a confirmation

Keywords are matched against the **whole message** (after removing spaces and punctuation,
ignoring case): "请不要停止办理" contains none of them as a message and is answered as usual.
Every consent keeps its time and channel (``subscriptions.consented_at``/``channel``); an
opt-out ends all of the recipient's subscriptions and cancels their queued notices.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guidebot.dialog.engine import ConversationState
from guidebot.dialog.replies import Inbound, Reply
from guidebot.knowledge.catalog import Catalog, Item
from guidebot.knowledge.matching import CatalogIndex, Decision
from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority, Subscription
from guidebot.outbox.queue import _dialect, _insert, resume_recipient
from guidebot.store.db import Store, now
from guidebot.store.models import Case

__all__ = [
    "CASE_OFFER",
    "FLOW_KEY",
    "OPT_OUT_WORDS",
    "SubscriptionFlow",
    "SubscriptionInfo",
    "active_subscriptions",
    "is_opt_out",
    "item_finder",
    "offer_case_subscription",
    "subscribe_case",
    "subscribe_notices",
    "unsubscribe_all",
]

FLOW_KEY = "subscription"  # state.flow[FLOW_KEY] = {"case_no": …}: the case offered after a lookup
CASE_OFFER = "回复“订阅”获取进度通知（办件状态有变化时主动告诉您）。"

# Whole-message keywords, compared after _keyword(): lower case, no spaces or punctuation.
OPT_OUT_WORDS = frozenset({
    "退订", "td", "t", "取消订阅", "stop", "unsubscribe", "退订通知", "取消通知", "退订全部", "全部退订",
    "取消全部订阅", "停止通知", "不要再发了", "别再发了",
})
CASE_SUBSCRIBE_WORDS = frozenset({"订阅", "订阅进度", "订阅办件", "订阅办件进度", "进度通知", "订阅通知进度"})
NOTICE_SUBSCRIBE = re.compile(r"^(?:订阅|接收|开通)(?:中心)?(?:通知|公告|消息)(.*)$")


def _keyword(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").strip().lower()
    if text.startswith("/"):
        text = text.split("@", 1)[0]  # Telegram: /unsubscribe@guidebot_bot
    return re.sub(r"[\W_]+", "", text)


def is_opt_out(text: str) -> bool:
    """True when the whole message is an opt-out word (退订/TD/取消订阅/STOP//unsubscribe …)."""
    return _keyword(text) in OPT_OUT_WORDS


def offer_case_subscription(state: ConversationState, case_no: str) -> str:
    """Remember the case just shown so that "订阅" subscribes to it; returns the offer line."""
    state.flow[FLOW_KEY] = {"case_no": case_no}
    return CASE_OFFER


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    kind: str
    scope: str
    case_no: str | None
    department: str | None
    item_code: str | None
    consented_at: dt.datetime


def _upsert(session: Session, channel: str, recipient: str, kind: str, scope: str, at: dt.datetime,
            case_no: str | None = None, department: str | None = None, item_code: str | None = None,
            last_status: str | None = None, last_status_at: dt.datetime | None = None) -> None:
    renewed = {"consented_at": at, "active": True, "ended_at": None, "end_reason": None, "department": department,
               "item_code": item_code, "last_status": last_status, "last_status_at": last_status_at}
    values = {"channel": channel, "recipient": recipient, "kind": kind, "scope": scope, "case_no": case_no, **renewed}
    statement = _insert(_dialect(session), Subscription).values(**values)
    session.execute(statement.on_conflict_do_update(index_elements=["channel", "recipient", "scope"], set_=renewed))


def subscribe_case(store: Store, channel: str, recipient: str, case_no: str, at: dt.datetime | None = None) -> None:
    """Consent to notifications of one case's status changes on ``channel``."""
    at = at or now()
    with store.session() as session:
        case = session.get(Case, case_no)
        if case is None:
            raise LookupError(f"no case {case_no}")
        # What the citizen has just seen is not news: only later changes are notified.
        _upsert(session, channel, recipient, "case", f"case:{case_no}", at, case_no=case_no,
                last_status=case.status, last_status_at=case.status_at)
    resume_recipient(store, channel, recipient)  # they just wrote to us: reachable again


def subscribe_notices(store: Store, channel: str, recipient: str, department: str | None = None,
                      item: Item | None = None, at: dt.datetime | None = None) -> str:
    """Consent to the center's notices: all, one department's, or one item's. Returns the scope."""
    at = at or now()
    if item is not None:
        scope, department, item_code = f"item:{item.code}", item.department or None, item.code
    elif department:
        scope, item_code = f"dept:{department}", None
    else:
        scope, item_code = "all", None
    with store.session() as session:
        _upsert(session, channel, recipient, "notices", scope, at, department=department, item_code=item_code)
    resume_recipient(store, channel, recipient)
    return scope


def active_subscriptions(store: Store, channel: str, recipient: str) -> list[SubscriptionInfo]:
    with store.session() as session:
        rows = session.scalars(
            select(Subscription).where(Subscription.channel == channel, Subscription.recipient == recipient,
                                       Subscription.active.is_(True)).order_by(Subscription.id)
        ).all()
        return [SubscriptionInfo(s.kind, s.scope, s.case_no, s.department, s.item_code, s.consented_at) for s in rows]


def unsubscribe_all(store: Store, channel: str, recipient: str, at: dt.datetime | None = None) -> int:
    """End every subscription of this recipient and cancel their queued notices; returns how many ended."""
    at = at or now()
    with store.session() as session:
        ended = session.execute(
            update(Subscription)
            .where(Subscription.channel == channel, Subscription.recipient == recipient,
                   Subscription.active.is_(True))
            .values(active=False, ended_at=at, end_reason="optout")
        ).rowcount
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.channel == channel, OutboxMessage.recipient == recipient,
                   OutboxMessage.status == MessageStatus.QUEUED.value, OutboxMessage.priority > Priority.REPLY)
            .values(status=MessageStatus.CANCELLED.value, error="unsubscribed", updated_at=at)
        )
    return ended or 0


ItemFinder = Callable[[str], Item | None]


class SubscriptionFlow:
    """A SubDialog: 订阅 (the case just looked up), 订阅通知 [部门/事项], and the opt-out words."""

    def __init__(self, store: Store, catalog: Catalog | None = None, find_item: ItemFinder | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.find_item = find_item
        departments = {item.department for item in catalog.items if item.department} if catalog else set()
        self.departments = sorted(departments, key=len, reverse=True)

    def handle(self, inbound: Inbound, text: str, state: ConversationState) -> list[Reply] | None:
        key = _keyword(inbound.text)
        if key in OPT_OUT_WORDS:
            return self._opt_out(inbound, state)
        if key in CASE_SUBSCRIBE_WORDS:
            return self._subscribe_case(inbound, state)
        notices = NOTICE_SUBSCRIBE.match(key)
        if notices:
            return self._subscribe_notices(inbound, notices.group(1))
        return None

    def _opt_out(self, inbound: Inbound, state: ConversationState) -> list[Reply]:
        state.flow.pop(FLOW_KEY, None)
        ended = unsubscribe_all(self.store, inbound.channel, inbound.sender)
        if not ended:
            return [Reply.text("您目前没有订阅任何通知，我们不会主动给您发消息。")]
        return [Reply.text(f"已为您退订全部通知（共 {ended} 项），今后不再主动给您发消息。",
                           "如需恢复，回复“订阅通知”；查询办件后回复“订阅”可重新订阅进度。")]

    def _subscribe_case(self, inbound: Inbound, state: ConversationState) -> list[Reply]:
        offer = state.flow.pop(FLOW_KEY, None) or {}
        case_no = offer.get("case_no")
        if not case_no:
            return [Reply.text("订阅办件进度：请先发送“查件 办件编号”完成查询，再回复“订阅”。",
                               "订阅中心通知（如闭厅、延时服务）：回复“订阅通知”。")]
        subscribe_case(self.store, inbound.channel, inbound.sender, case_no)
        return [Reply.text(f"已订阅办件 {case_no} 的进度通知：状态有变化时我会通过这里告诉您，办结后自动结束。",
                           "回复“退订”可随时取消。")]

    def _subscribe_notices(self, inbound: Inbound, rest: str) -> list[Reply]:
        rest = rest.strip()
        department = next((d for d in self.departments if rest and (rest in d or d in rest)), None) if rest else None
        item = None
        if rest and department is None and self.find_item is not None:
            item = self.find_item(rest)
        if rest and department is None and item is None:
            return [Reply.text(f"没有找到与“{rest[:20]}”对应的部门或事项。",
                               "回复“订阅通知”接收中心全部通知，或写明部门，例如“订阅通知 公安局”。")]
        scope = subscribe_notices(self.store, inbound.channel, inbound.sender, department=department, item=item)
        what = f"“{item.name}”的相关通知" if item else f"{department}的相关通知"
        if scope == "all":
            what = "中心的全部通知"
        return [Reply.text(f"已订阅{what}（如闭厅、调整办公时间等），将通过这里发送。", "回复“退订”可随时取消。")]


def item_finder(index: CatalogIndex) -> ItemFinder:
    """"订阅通知 身份证" → the one item the matcher is sure of, else None."""

    def find(text: str) -> Item | None:
        result = index.match(text)
        return result.choices[0].item if result.decision is Decision.ANSWER and result.choices else None

    return find
