"""Case lookup transcripts through the whole dialog engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.cases.importer import import_cases
from guidebot.dialog.case_flow import CaseFlow
from guidebot.dialog.engine import DialogEngine
from guidebot.store.db import Store
from tests.conftest import Conversation
from tests.store_fixtures import new_case_row, postgres_schema_url, store, store_url, write_case_csv  # noqa: F401

CASE = "SX2025092600001"


@pytest.fixture
def chat(store: Store, small_index, tmp_path: Path) -> Conversation:  # noqa: F811
    result = import_cases(store, write_case_csv(tmp_path / "cases.csv", [new_case_row(CASE, item_code="T-001")]))
    assert result.ok, result
    engine = DialogEngine(small_index, store, sub_dialogs=[CaseFlow.build(store, small_index.catalog)])
    return Conversation(engine, channel="test", sender="13800000000")


def test_lookup_with_the_right_factor_shows_the_case(chat: Conversation) -> None:
    assert "办件编号" in chat.say("我想查一下我的办件进度")
    asked = chat.say(f"编号是{CASE}")
    assert "后 4 位" in asked
    shown = chat.say("5678")
    assert "张*" in shown and "张三" not in shown
    assert "居民身份证办理" in shown  # the item's name comes from the catalog
    assert "已受理" in shown


def test_id_number_factor_works_too(chat: Conversation) -> None:
    chat.say(f"查件 {CASE}")
    assert "张*" in chat.say("123x")


def test_wrong_factor_and_unknown_number_get_identical_replies(chat: Conversation, store: Store,  # noqa: F811
                                                               small_index) -> None:
    chat.say(f"查件 {CASE}")
    wrong_factor = chat.say("0000")
    other = Conversation(chat.engine, channel="test", sender="13900000000")
    other.say("查件 SX2099999999999")
    unknown_number = other.say("5678")
    assert wrong_factor == unknown_number
    assert "张" not in wrong_factor


def test_rate_limit_is_reached_and_said_clearly(chat: Conversation) -> None:
    chat.say(f"查件 {CASE}")
    for _ in range(5):
        reply = chat.say("0000")
    assert "暂停" in reply or "用完" in reply
    again = chat.say(f"查件 {CASE}")
    assert "暂停" in again
    assert "张*" not in chat.say("5678")  # even the right factor is refused while limited


def test_a_new_question_leaves_the_lookup(chat: Conversation) -> None:
    chat.say(f"查件 {CASE}")
    reply = chat.say("结婚登记收费吗")
    assert "不收费" in reply
    assert "结婚登记" in reply


def test_cancel(chat: Conversation) -> None:
    chat.say("查件")
    assert "退出" in chat.say("取消")
