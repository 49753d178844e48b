"""A message the cloud provider accepted but whose answer was lost is not sent twice by the outbox:
the retry asks the provider's send records for the row's OutId first (local fake of the API)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from guidebot.handlers.sms.cloud import AliyunSender, render_template
from guidebot.handlers.sms.kannel import RateLimiter
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority
from guidebot.outbox.queue import NewMessage, enqueue
from guidebot.store.db import Store
from tests.sms.fake_aliyun import FakeAliyun
from tests.sms.test_cloud import fake, provider, settings  # noqa: F401
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401


@pytest.mark.asyncio
async def test_a_send_whose_answer_was_lost_is_not_repeated(store: Store, settings: SmsSettings,  # noqa: F811
                                                            fake: FakeAliyun) -> None:  # noqa: F811
    text = render_template("case_done", case_no="SX2025092600001", window="综合窗口3号")
    with store.session() as session:
        enqueue(session, [NewMessage("sms", "+8613800138000", text, Priority.NOTICE, "case")])
    fake.stall_after_accept = 3.0  # accepted, but the answer comes after the dispatcher gave up
    async with AliyunSender(settings, limiter=RateLimiter(1000)) as sender:
        await Dispatcher(store, {"sms": sender}, quiet_hours=None, send_timeout=0.5).run(until_idle=True)
        with store.session() as session:
            row = session.scalars(select(OutboxMessage)).one()
        assert row.status == MessageStatus.QUEUED.value and row.error == "timeout"
        assert len(fake.sent) == 1
        later = row.not_before + dt.timedelta(seconds=1)
        await Dispatcher(store, {"sms": sender}, quiet_hours=None, clock=lambda: later).run(until_idle=True)
    with store.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert row.status == MessageStatus.SENT.value and row.attempts == 2
    assert [s.out_id for s in fake.sent] == [str(row.id)]  # the provider sent it once
    assert fake.queries == 1
