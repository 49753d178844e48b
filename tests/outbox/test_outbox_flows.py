"""Subscriptions, opt-out, case notifications and 好差评 through the whole dialog, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from guidebot.cases.importer import import_cases
from guidebot.cases.staff import set_status
from guidebot.dialog.case_flow import CaseFlow
from guidebot.dialog.engine import DialogEngine
from guidebot.outbox.models import MessageStatus, OutboxMessage, Priority, Rating, Subscription
from guidebot.outbox.notify import notify_all_cases, notify_status_changes
from guidebot.outbox.queue import NewMessage, enqueue
from guidebot.outbox.ratings import RatingFlow, parse_level
from guidebot.outbox.subscriptions import (
    SubscriptionFlow,
    active_subscriptions,
    is_opt_out,
    item_finder,
    subscribe_notices,
)
from guidebot.store.db import Store
from tests.conftest import Conversation
from tests.store_fixtures import (  # noqa: F401
    new_case_row,
    postgres_schema_url,
    store,
    store_url,
    update_row,
    write_case_csv,
)

CASE = "SX2025092600001"
CHANNEL, SENDER = "telegram", "424242"


@pytest.fixture
def chat(store: Store, small_index, tmp_path: Path) -> Conversation:  # noqa: F811
    result = import_cases(store, write_case_csv(tmp_path / "cases.csv", [new_case_row(CASE, item_code="T-001")]))
    assert result.ok, result
    ratings = RatingFlow(store)
    dialogs = [CaseFlow.build(store, small_index.catalog),
               SubscriptionFlow(store, small_index.catalog, item_finder(small_index)), ratings]
    engine = DialogEngine(small_index, store, sub_dialogs=dialogs, on_answer=ratings.on_answer)
    return Conversation(engine, channel=CHANNEL, sender=SENDER)


def outbox(store: Store) -> list[OutboxMessage]:  # noqa: F811
    with store.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def subscribe_to_case(chat: Conversation) -> str:
    chat.say(f"查件 {CASE}")
    shown = chat.say("5678")
    assert "回复“订阅”获取进度通知" in shown
    return chat.say("订阅")


def test_subscribe_after_lookup_keeps_consent_time_and_channel(chat: Conversation, store: Store) -> None:  # noqa: F811
    reply = subscribe_to_case(chat)
    assert f"已订阅办件 {CASE}" in reply and "退订" in reply
    [subscription] = active_subscriptions(store, CHANNEL, SENDER)
    assert subscription.kind == "case" and subscription.case_no == CASE
    assert subscription.consented_at is not None


def test_subscribe_without_a_lookup_explains(chat: Conversation, store: Store) -> None:  # noqa: F811
    assert "查件" in chat.say("订阅")
    assert active_subscriptions(store, CHANNEL, SENDER) == []


def test_status_changes_notify_subscribers_once_and_end_at_completion(chat: Conversation, store: Store,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    subscribe_to_case(chat)
    updates = write_case_csv(tmp_path / "u1.csv", [update_row(CASE, "审查中", "2025-09-29 09:00")])
    first = import_cases(store, updates)
    assert notify_status_changes(store, first.changes) == 1
    again = import_cases(store, updates)  # the same file twice
    assert notify_status_changes(store, again.changes) == 0
    assert notify_all_cases(store) == 0  # the catch-up finds nothing new either
    [notice] = outbox(store)
    assert notice.recipient == SENDER and notice.channel == CHANNEL and notice.priority == Priority.NOTICE
    assert "审查中" in notice.text and CASE in notice.text

    change = set_status(store, CASE, "准予许可", None, "tester")
    assert notify_status_changes(store, [change]) == 1
    assert notify_status_changes(store, [change]) == 0
    final = outbox(store)[-1]
    assert "准予许可" in final.text and "非常满意" in final.text and "到此结束" in final.text
    assert active_subscriptions(store, CHANNEL, SENDER) == []  # ended by itself
    with store.session() as session:
        assert session.scalar(select(Subscription.end_reason)) == "completed"
    # The final notice invites a rating: the next message is read as one.
    assert "感谢" in chat.say("2")
    with store.session() as session:
        rating = session.scalar(select(Rating))
    assert rating.subject == "case" and rating.case_no == CASE and rating.level == 4


def test_a_crash_between_import_and_notify_is_caught_up(chat: Conversation, store: Store,  # noqa: F811
                                                        tmp_path: Path) -> None:
    subscribe_to_case(chat)
    import_cases(store, write_case_csv(tmp_path / "u.csv", [update_row(CASE, "待补正", "2025-09-29 09:00", "户口簿")]))
    assert notify_all_cases(store) == 1
    assert "户口簿" in outbox(store)[0].text


@pytest.mark.parametrize("word", ["退订", "TD", "td", "取消订阅", "STOP", "stop", "/unsubscribe",
                                  "/unsubscribe@guidebot_bot", " 退订。", "Ｔ Ｄ"])
def test_opt_out_words_stop_everything_with_a_confirmation(chat: Conversation, store: Store,  # noqa: F811
                                                           word: str) -> None:
    subscribe_to_case(chat)
    assert "已订阅" in chat.say("订阅通知")
    with store.session() as session:
        enqueue(session, [NewMessage(CHANNEL, SENDER, "闭厅", Priority.BULK, "broadcast"),
                          NewMessage(CHANNEL, SENDER, "答复", Priority.REPLY, "reply")])
    reply = chat.say(word)
    assert "已为您退订全部通知" in reply and "2 项" in reply
    assert active_subscriptions(store, CHANNEL, SENDER) == []
    bulk, answer = outbox(store)
    assert bulk.status == MessageStatus.CANCELLED.value
    assert answer.status == MessageStatus.QUEUED.value  # a reply to their own message still goes
    assert "没有订阅" in chat.say(word)


@pytest.mark.parametrize("sentence", ["请不要停止办理", "我想退订报纸怎么办", "stop的意思", "取消订阅的手续", "TDS"])
def test_a_sentence_containing_an_opt_out_word_is_not_an_opt_out(chat: Conversation, store: Store,  # noqa: F811
                                                                 sentence: str) -> None:
    subscribe_notices(store, CHANNEL, SENDER)
    assert not is_opt_out(sentence)
    assert "退订" not in chat.say(sentence)
    assert len(active_subscriptions(store, CHANNEL, SENDER)) == 1


def test_notice_subscription_by_department_and_item(chat: Conversation, store: Store, small_index) -> None:  # noqa: F811
    department = next(item.department for item in small_index.catalog.items if item.department)
    assert department in chat.say(f"订阅通知 {department}")
    item = small_index.catalog.items[0]
    assert "没有找到" in chat.say("订阅通知 火星移民")
    scopes = {s.scope for s in active_subscriptions(store, CHANNEL, SENDER)}
    assert scopes == {f"dept:{department}"}
    chat.say(f"订阅通知 {item.name}")
    scopes = {s.scope for s in active_subscriptions(store, CHANNEL, SENDER)}
    assert f"item:{item.code}" in scopes


def test_an_answer_asks_for_a_rating_and_a_bad_one_asks_why(chat: Conversation, store: Store) -> None:  # noqa: F811
    answer = chat.say("结婚登记收费吗")
    assert "这个回答有帮助吗" in answer and "非常不满意" in answer
    assert "哪里需要改进" in chat.say("5")  # 5 = 非常不满意 on the menu
    assert "已记录" in chat.say("窗口说的和这里不一样，电话13812345678")
    with store.session() as session:
        rating = session.scalar(select(Rating))
    assert rating.level == 1 and rating.flagged and rating.subject == "answer" and rating.item_code
    assert "13812345678" not in rating.reason  # masked


def test_a_good_rating_by_word(chat: Conversation, store: Store) -> None:  # noqa: F811
    chat.say("结婚登记收费吗")
    assert "感谢" in chat.say("非常满意")
    with store.session() as session:
        rating = session.scalar(select(Rating))
    assert rating.level == 5 and not rating.flagged


def test_a_digit_not_right_after_the_prompt_is_not_a_rating(chat: Conversation, store: Store) -> None:  # noqa: F811
    chat.say("结婚登记收费吗")
    chat.say("你好")
    chat.say("1")
    with store.session() as session:
        assert session.scalar(select(Rating)) is None


def test_rating_levels() -> None:
    assert [parse_level(w) for w in ("1", "２", "3", "4", "5")] == [5, 4, 3, 2, 1]
    assert parse_level("基本满意") == 3 and parse_level("非常不满意") == 1
    assert parse_level("6") is None and parse_level("满意吗") is None
