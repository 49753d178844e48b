"""The SMS channel on the outbox's tables: its stop list is the outbox's, and delivery reports
update the rows the dispatcher sent (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from guidebot.dialog.engine import DialogEngine
from guidebot.handlers.sms.routes import outbox_report_sink
from guidebot.handlers.sms.service import OPTED_OUT_TEXT, DeliveryReport, SmsConversations, StopList
from guidebot.knowledge.matching import CatalogIndex
from guidebot.outbox import queue
from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority
from guidebot.outbox.queue import NewMessage
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.store.db import Store
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401

PHONE = "+8613800138000"


def _row(store: Store, recipient: str = PHONE, kind: str = "broadcast") -> int:  # noqa: F811
    with store.session() as session:
        queue.enqueue(session, [NewMessage("sms", recipient, "通知", Priority.BULK, kind)])
        return session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id.desc())).first()


def _status(store: Store, row_id: int) -> tuple[str, str | None]:  # noqa: F811
    with store.session() as session:
        row = session.get(OutboxMessage, row_id)
        return row.status, row.error


def test_the_stop_list_is_the_outboxs(store: Store) -> None:  # noqa: F811
    stops = StopList(store)
    assert stops.in_outbox
    queued = _row(store)
    stops.stop(PHONE, "optout")
    assert stops.reason(PHONE) == "optout"
    assert _status(store, queued)[0] == MessageStatus.STOPPED.value  # what was queued does not go
    with store.session() as session:
        assert queue.enqueue(session, [NewMessage("sms", PHONE, "再通知", Priority.BULK, "broadcast")]) == 0
    assert not stops.resume(PHONE, keep_opt_out=True)
    assert stops.resume(PHONE) and stops.reason(PHONE) is None


def test_td_through_sms_stops_the_number_in_the_outbox(store: Store, small_index: CatalogIndex) -> None:  # noqa: F811
    sms = SmsConversations(DialogEngine(small_index, store), store)
    assert sms.answer(PHONE, "退订").text == OPTED_OUT_TEXT
    with store.session() as session:
        assert queue.enqueue(session, [NewMessage("sms", PHONE, "通知", Priority.BULK, "broadcast")]) == 0
        # A reply to the citizen's own message still goes.
        assert queue.enqueue(session, [NewMessage("sms", PHONE, "答复", Priority.REPLY, "reply")]) == 1


def _sent(store: Store, row_id: int) -> None:  # noqa: F811
    [claimed] = queue.claim(store, "sms", "w", 10)
    assert claimed.id == row_id
    queue.record_outcome(store, claimed, "w", SendResult(SendOutcome.SENT, provider_id=str(row_id)))


def test_a_delivery_report_updates_the_row(store: Store) -> None:  # noqa: F811
    row_id = _row(store)
    _sent(store, row_id)
    sink = outbox_report_sink(store)
    assert asyncio.run(sink(DeliveryReport(str(row_id), SendOutcome.DELIVERED, PHONE)))
    assert _status(store, row_id)[0] == MessageStatus.DELIVERED.value


def test_a_failed_report_records_the_error(store: Store) -> None:  # noqa: F811
    row_id = _row(store)
    _sent(store, row_id)
    asyncio.run(outbox_report_sink(store)(DeliveryReport(str(row_id), SendOutcome.FAILED, PHONE, "stat:UNDELIV")))
    assert _status(store, row_id) == (MessageStatus.FAILED.value, "stat:UNDELIV")


def test_a_report_for_an_unknown_row_says_so(store: Store) -> None:  # noqa: F811
    assert not asyncio.run(outbox_report_sink(store)(DeliveryReport("999999", SendOutcome.DELIVERED, PHONE)))
    assert asyncio.run(outbox_report_sink(store)(DeliveryReport("999999", SendOutcome.SENT, PHONE)))


def test_with_the_subscription_dialog_td_is_answered_by_it_and_still_stops_the_number(
        store: Store, small_index: CatalogIndex) -> None:  # noqa: F811
    from guidebot.outbox.subscriptions import SubscriptionFlow, active_subscriptions

    engine = DialogEngine(small_index, store, sub_dialogs=[SubscriptionFlow(store, small_index.catalog)])
    sms = SmsConversations(engine, store)
    assert sms.engine_subscriptions
    assert "已订阅" in (sms.answer(PHONE, "订阅通知").text or "")
    reply = sms.answer(PHONE, "TD").text or ""
    assert "已为您退订全部通知（共 1 项）" in reply
    assert active_subscriptions(store, "sms", PHONE) == []
    assert StopList(store).reason(PHONE) == "optout"
    assert "已订阅" in (sms.answer(PHONE, "订阅通知").text or "")  # subscribing again lifts the stop
    assert StopList(store).reason(PHONE) is None
