"""Telegram with the outbox: subscriptions, staff broadcasts, case notices and ratings, end to end.

Citizens and staff talk to the real PTB client (long polling the fake Bot API); the outbox's own
dispatcher sends what was queued through `TelegramSender` to the same fake.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from guidebot.handlers.telegram.sender import TelegramSender
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import MessageStatus, OutboxMessage, Rating, RecipientStop
from guidebot.store.db import Store
from tests.telegram.conftest import (
    STAFF_ID,
    Harness,
    buttons,
    choice_for,
    most_in_any_second,
    text_of,
)
from tests.telegram.fake_bot_api import TOKEN, FakeBotAPI

pytestmark = pytest.mark.asyncio

NOTICE = "明天（周六）上午中心正常办公。"
AS_SENT = NOTICE + "（回复“退订”不再接收通知）"


async def dispatch(harness: Harness, *, with_store: bool = False) -> dict[str, int]:
    """Run the outbox's dispatcher with the Telegram sender until nothing is left to send
    (`with_store`: the sender reads each row's kind and dedupe key)."""
    store = harness.guidebot.store
    assert isinstance(store, Store)
    async with TelegramSender(TOKEN, harness.fake.base_url, store=store if with_store else None) as sender:
        stats = await Dispatcher(store, {"telegram": sender}, quiet_hours=None).run(until_idle=True)
    return stats.by_status


async def subscribe(harness: Harness, *chats: int) -> None:
    for chat in chats:
        [reply] = await harness.say("订阅通知", chat_id=chat)
        assert reply["text"].startswith("已订阅中心的全部通知")


async def staff_broadcast(harness: Harness, text: str) -> dict[str, Any]:
    """/broadcast, check the preview, press 确认发送; returns the preview message (now edited)."""
    [preview] = await harness.say(f"/broadcast {text}", chat_id=STAFF_ID)
    assert preview["text"].startswith("群发预览：\n收件人：共 ")
    confirm = next(data for label, data in buttons(preview) if label == "确认发送")
    answered = len(harness.fake.calls_of("answerCallbackQuery"))
    harness.fake.user_presses(preview, confirm, user_id=STAFF_ID)
    await harness.fake.wait_for(lambda: len(harness.fake.calls_of("answerCallbackQuery")) > answered)
    await harness.settle()
    return preview


def received(fake: FakeBotAPI, text: str) -> list[int]:
    return sorted(message["chat"]["id"] for message in fake.sent() if message["text"] == text)


async def test_a_staff_broadcast_reaches_every_subscriber_and_nobody_else(polling: Harness) -> None:
    await subscribe(polling, 2001, 2002, 2003)
    await polling.say("你好", chat_id=2099)  # talks to the bot, never subscribed
    preview = await staff_broadcast(polling, NOTICE)
    assert preview["text"].startswith("已提交群发：3 位订阅者")
    assert received(polling.fake, AS_SENT) == []  # queued, not yet sent

    assert await dispatch(polling) == {"sent": 3}
    assert received(polling.fake, AS_SENT) == [2001, 2002, 2003]
    assert len(polling.fake.sent(2099)) == 1  # only the answer to its greeting
    assert all(m["text"] != AS_SENT for m in polling.fake.sent(STAFF_ID))


async def test_a_blocked_subscriber_is_stopped_and_the_next_broadcast_skips_them(polling: Harness) -> None:
    await subscribe(polling, 2001, 2002, 2003, 2004)
    polling.fake.block(2002)
    await staff_broadcast(polling, NOTICE)
    assert await dispatch(polling) == {"sent": 3, "stopped": 1}
    store = polling.guidebot.store
    assert isinstance(store, Store)
    with store.session() as session:
        stops = session.execute(select(RecipientStop.channel, RecipientStop.recipient)).all()
    assert stops == [("telegram", "2002")]

    [preview] = await polling.say("/broadcast 第二条通知", chat_id=STAFF_ID)
    assert preview["text"].startswith("群发预览：\n收件人：共 3 人")
    confirm = next(data for label, data in buttons(preview) if label == "确认发送")
    polling.fake.user_presses(preview, confirm, user_id=STAFF_ID)
    await polling.settle()
    assert await dispatch(polling) == {"sent": 3}
    attempts_2002 = [c for c in polling.fake.calls_of("sendMessage") if int(c.params["chat_id"]) == 2002]
    assert len(attempts_2002) == 2  # "订阅通知" reply and the first broadcast's 403; nothing after
    assert received(polling.fake, "第二条通知（回复“退订”不再接收通知）") == [2001, 2003, 2004]


async def test_unsubscribing_in_telegram_ends_the_notices(polling: Harness) -> None:
    await subscribe(polling, 2001, 2002)
    [bye] = await polling.say("/unsubscribe", chat_id=2002)
    assert bye["text"].startswith("已为您退订全部通知")
    await staff_broadcast(polling, NOTICE)
    assert await dispatch(polling) == {"sent": 1}
    assert received(polling.fake, AS_SENT) == [2001]


def _case_file(path: Path, *rows: str) -> Path:
    header = "办件编号,办件状态,状态时间,事项编码,申请人,联系电话,受理时间,受理窗口\n"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return path


async def test_a_subscribed_case_is_notified_when_it_changes_and_rated_at_completion(
        tmp_path: Path, polling: Harness) -> None:
    from guidebot.cases.importer import import_cases
    from guidebot.outbox.notify import notify_status_changes

    store = polling.guidebot.store
    assert isinstance(store, Store)
    first = _case_file(tmp_path / "1.csv",
                       "SC2025000001,受理,2025-09-01 09:00,T-001,欧阳娜娜,13812345678,2025-09-01 09:00,3 号窗口")
    assert not import_cases(store, first).errors
    await polling.say("查件 SC2025000001")
    found = await polling.say("5678")
    assert "回复“订阅”获取进度通知" in text_of(found)
    [subscribed] = await polling.say("订阅")
    assert subscribed["text"].startswith("已订阅办件 SC2025000001 的进度通知")

    later = _case_file(tmp_path / "2.csv", "SC2025000001,已办结,2025-09-10 15:00,,,,,")
    result = import_cases(store, later)
    assert notify_status_changes(store, result.changes, lambda code: "居民身份证办理") == 1
    assert await dispatch(polling) == {"sent": 1}
    notice = polling.fake.sent(1001)[-1]
    assert notice["text"].startswith("【办件进度】您订阅的办件 SC2025000001（居民身份证办理）状态更新为：已办结")
    assert notice["text"].endswith("请为本次服务评价：")
    assert buttons(notice)[1] == ("2. 满意", "rate:SC2025000001:2")

    [thanks] = await polling.say("2")  # typing the digit right after the invitation works as before
    assert thanks["text"].startswith("感谢您的评价")
    with store.session() as session:
        assert session.execute(select(Rating.subject, Rating.case_no, Rating.level)).all() == [
            ("case", "SC2025000001", 4)]
        rows = session.scalars(select(OutboxMessage.status)).all()
    assert rows == [MessageStatus.SENT.value]


async def finished_case(tmp_path: Path, harness: Harness, *, with_store: bool) -> dict[str, Any]:
    """Case SC2025000001 looked up and subscribed in chat 1001, then 已办结; returns the final notice."""
    from guidebot.cases.importer import import_cases
    from guidebot.outbox.notify import notify_status_changes

    store = harness.guidebot.store
    assert isinstance(store, Store)
    assert not import_cases(store, _case_file(
        tmp_path / "1.csv", "SC2025000001,受理,2025-09-01 09:00,T-001,欧阳娜娜,13812345678,2025-09-01 09:00,3 号窗口",
    )).errors
    await harness.say("查件 SC2025000001")
    await harness.say("5678")
    await harness.say("订阅")
    result = import_cases(store, _case_file(tmp_path / "2.csv", "SC2025000001,已办结,2025-09-10 15:00,,,,,"))
    assert notify_status_changes(store, result.changes) == 1
    assert await dispatch(harness, with_store=with_store) == {"sent": 1}
    return harness.fake.sent(1001)[-1]


@pytest.mark.parametrize("with_store", [True, False], ids=["row-decides", "text-decides"])
async def test_the_completion_notice_has_rating_buttons_and_a_press_rates_the_case(
        tmp_path: Path, polling: Harness, with_store: bool) -> None:
    notice = await finished_case(tmp_path, polling, with_store=with_store)
    assert "状态更新为：已办结" in notice["text"] and "回复数字" not in notice["text"]
    assert buttons(notice) == [(f"{n}. {word}", f"rate:SC2025000001:{n}")
                               for n, word in enumerate(["非常满意", "满意", "基本满意", "不满意", "非常不满意"], 1)]
    stale = copy.deepcopy(notice)  # the message as a second, quicker tap would still show it

    # The citizen writes something else first: the outbox's one-message arm is gone, the button still counts.
    await polling.say("结婚登记收费吗")
    [sorry] = await polling.press(notice, "rate:SC2025000001:4")  # 4. 不满意: a 差评
    assert sorry["text"].startswith("很抱歉没能让您满意。请用一句话告诉我们哪里需要改进")
    edited = polling.fake.messages[(1001, notice["message_id"])]
    assert edited["text"].endswith("✅ 已选择：4. 不满意") and "reply_markup" not in edited
    [noted] = await polling.say("窗口排队太久，电话 13812345678 打不通")
    assert noted["text"].startswith("已记录您的意见")

    store = polling.guidebot.store
    assert isinstance(store, Store)
    with store.session() as session:
        assert session.execute(select(Rating.subject, Rating.case_no, Rating.item_code, Rating.level,
                                      Rating.flagged)).all() == [("case", "SC2025000001", "T-001", 2, True)]
        reason = session.scalar(select(Rating.reason))
    assert reason is not None and "窗口排队太久" in reason and "13812345678" not in reason

    # A second tap on the old keyboard is not a second rating.
    before = len(polling.fake.sent(1001))
    answered = len(polling.fake.calls_of("answerCallbackQuery"))
    polling.fake.user_presses(stale, "rate:SC2025000001:1")
    await polling.fake.wait_for(lambda: len(polling.fake.calls_of("answerCallbackQuery")) > answered)
    await polling.settle()
    assert len(polling.fake.sent(1001)) == before
    assert polling.fake.messages[(1001, notice["message_id"])]["text"].endswith("✅ 您已评价过本办件，感谢！")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rating)) == 1


async def test_a_rating_button_for_another_case_than_its_message_is_ignored(tmp_path: Path, polling: Harness) -> None:
    notice = await finished_case(tmp_path, polling, with_store=True)
    forged = copy.deepcopy(notice)  # a client may send any callback data; the message is Telegram's
    forged["reply_markup"]["inline_keyboard"][0][0]["callback_data"] = "rate:SC2099999999:1"
    answered = len(polling.fake.calls_of("answerCallbackQuery"))
    press = polling.fake.make_press(forged, "rate:SC2099999999:1")
    press["callback_query"]["message"] = notice
    polling.fake.queue_update(press)
    await polling.fake.wait_for(lambda: len(polling.fake.calls_of("answerCallbackQuery")) > answered)
    await polling.settle()
    store = polling.guidebot.store
    assert isinstance(store, Store)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rating)) == 0
    assert "reply_markup" in polling.fake.messages[(1001, notice["message_id"])]


async def test_a_broadcast_quoting_the_invitation_gets_no_buttons(polling: Harness) -> None:
    from guidebot.outbox.ratings import case_rating_prompt

    await subscribe(polling, 2001)
    await staff_broadcast(polling, "办件 SC2025000001（示例）已办结。\n" + case_rating_prompt())
    assert await dispatch(polling, with_store=True) == {"sent": 1}
    [broadcast] = [m for m in polling.fake.sent(2001) if m["text"].startswith("办件 SC2025000001")]
    assert "reply_markup" not in broadcast


async def test_rating_buttons_after_an_answer_by_default(polling: Harness) -> None:
    answer, prompt = await polling.say("办身份证要带什么材料")
    assert "居民户口簿" in answer["text"]
    assert prompt["text"] == "这个回答有帮助吗？请评价："
    assert [label for label, _ in buttons(prompt)] == ["1. 非常满意", "2. 满意", "3. 基本满意", "4. 不满意",
                                                      "5. 非常不满意"]
    _, number = choice_for([prompt], "满意")
    [thanks] = await polling.press(prompt, number)
    assert thanks["text"].startswith("感谢您的评价")
    edited = polling.fake.messages[(1001, prompt["message_id"])]
    assert edited["text"].endswith("✅ 已选择：2. 满意") and "reply_markup" not in edited
    store = polling.guidebot.store
    assert isinstance(store, Store)
    with store.session() as session:
        assert session.execute(select(Rating.subject, Rating.item_code, Rating.level)).all() == [
            ("answer", "T-001", 4)]


async def test_staff_stats_come_from_the_outbox(polling: Harness) -> None:
    await polling.say("火星移民签证怎么办")
    messages = await polling.say("/stats", chat_id=STAFF_ID)
    shown = text_of(messages)
    assert shown.startswith("统计自 ")
    assert "答不上来的问题（最常问）" in shown and "火星移民签证怎么办" in shown
    assert "好差评：共 0 条" in shown and "发件箱：" in shown


async def test_a_1000_subscriber_broadcast_never_exceeds_30_messages_in_any_second(polling: Harness) -> None:
    from guidebot.outbox.subscriptions import subscribe_notices

    store = polling.guidebot.store
    assert isinstance(store, Store)
    for chat in range(100_000, 101_000):
        subscribe_notices(store, "telegram", str(chat))
    preview = await staff_broadcast(polling, NOTICE)
    assert preview["text"].startswith("已提交群发：1000 位订阅者")
    assert await dispatch(polling) == {"sent": 1000}
    times = [call.at for call in polling.fake.calls_of("sendMessage") if int(call.params["chat_id"]) >= 100_000]
    assert len(times) == 1000 and len(received(polling.fake, AS_SENT)) == 1000
    assert most_in_any_second(times) <= 30
    assert max(times) - min(times) < 1000 / 30 * 1.2  # and close to the limit, not far below it
