"""The SMS conversation every gateway shares: choices and case digits as on Telegram, 更多 pages,
duplicates answered once, TD/退订 and the stop list."""

from __future__ import annotations

import pytest

from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.dialog.replies import Inbound
from guidebot.handlers.sms.render import MORE_HINT, count_segments
from guidebot.handlers.sms.service import (
    CHANNEL,
    NO_MORE_TEXT,
    OPTED_OUT_TEXT,
    RESUMED_TEXT,
    SESSION_SLOT,
    SmsConversations,
    StopList,
    message_key,
    strip_reply_prefix,
)
from guidebot.knowledge.matching import CatalogIndex

PHONE = "+8613800138000"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def sms(bundled_index: CatalogIndex, store: MemoryStore) -> SmsConversations:
    return SmsConversations(DialogEngine(bundled_index, store), store, max_segments=3)


def say(sms: SmsConversations, text: str, key: str = "") -> str:
    answer = sms.answer(PHONE, text, key=key)
    assert answer.text is not None
    return answer.text


def test_the_engine_sees_the_sms_channel_and_its_state_is_kept_apart(sms: SmsConversations,
                                                                     store: MemoryStore) -> None:
    say(sms, "营业执照变更")
    assert store.load_state(CHANNEL, PHONE)["choices"]  # the engine's own state, under "sms"
    assert set(store.load_state(SESSION_SLOT, PHONE)) == {"seen", "more"}


def test_a_choice_by_number_works_as_on_any_channel(sms: SmsConversations, bundled_index: CatalogIndex) -> None:
    menu = say(sms, "营业执照变更")
    assert "回复1 " in menu
    direct = DialogEngine(bundled_index, MemoryStore())
    direct.handle(Inbound("telegram", "1", "营业执照变更"))
    expected = direct.handle(Inbound("telegram", "1", "1"))[0].plain()
    assert say(sms, "1").split("\n")[0] == expected.split("\n")[0]


def test_the_menu_typed_literally_works(sms: SmsConversations) -> None:
    say(sms, "营业执照变更")
    assert "【" in say(sms, "回复 2")


@pytest.mark.parametrize(("typed", "read"), [
    ("回复1", "1"), ("回复 更多", "更多"), ("回复：2", "2"), ("1", "1"),
    ("回复我一下怎么办身份证要带什么", "回复我一下怎么办身份证要带什么"),
])
def test_reply_prefix(typed: str, read: str) -> None:
    assert strip_reply_prefix(typed) == read


def test_more_pages_through_a_long_answer_then_says_there_is_no_more(sms: SmsConversations) -> None:
    first = say(sms, "办身份证要带什么材料")
    assert first.endswith(MORE_HINT) and count_segments(first).parts <= 3
    pages = [first]
    while pages[-1].endswith(MORE_HINT):
        pages.append(say(sms, "更多"))
        assert count_segments(pages[-1]).parts <= 3
    assert "户口簿" in "".join(pages) and len(pages) >= 2
    assert say(sms, "更多") == NO_MORE_TEXT


def test_a_new_question_replaces_the_pages(sms: SmsConversations) -> None:
    say(sms, "办身份证要带什么材料")
    say(sms, "结婚登记收费吗")
    assert say(sms, "更多") == NO_MORE_TEXT


def test_a_repeated_delivery_is_answered_once(sms: SmsConversations) -> None:
    key = message_key("kannel-id-1", PHONE, "结婚登记收费吗", "")
    assert "不收费" in say(sms, "结婚登记收费吗", key=key)
    again = sms.answer(PHONE, "结婚登记收费吗", key=key)
    assert again.text is None and again.duplicate
    other = message_key("kannel-id-2", PHONE, "结婚登记收费吗", "")
    assert "不收费" in say(sms, "结婚登记收费吗", key=other)  # the same words sent again are a new message


def test_message_key_falls_back_to_sender_text_and_time() -> None:
    assert message_key("", PHONE, "你好", "1700000000") == message_key("", PHONE, "你好", "1700000000")
    assert message_key("", PHONE, "你好", "1700000000") != message_key("", PHONE, "你好", "1700000001")
    assert message_key("", PHONE, "你好", "") == ""


@pytest.mark.parametrize("word", ["TD", "td", "退订", "T", "退订。", " TD ", "R", "取消订阅"])
def test_opt_out_words_stop_the_number(sms: SmsConversations, store: MemoryStore, word: str) -> None:
    opted: list[str] = []
    sms.on_opt_out = opted.append
    assert say(sms, word) == OPTED_OUT_TEXT
    assert StopList(store).reason(PHONE) == "optout"
    assert opted == [PHONE]


def test_opt_out_is_only_the_whole_message(sms: SmsConversations, store: MemoryStore) -> None:
    say(sms, "我想退订报纸怎么办")
    assert StopList(store).reason(PHONE) is None


def test_resume_lifts_an_opt_out(sms: SmsConversations, store: MemoryStore) -> None:
    say(sms, "TD")
    assert say(sms, "恢复订阅") == RESUMED_TEXT
    assert StopList(store).reason(PHONE) is None


def test_a_number_stopped_as_invalid_is_taken_back_when_it_writes(sms: SmsConversations, store: MemoryStore) -> None:
    StopList(store).stop(PHONE, "invalid")
    say(sms, "你好")
    assert StopList(store).reason(PHONE) is None


def test_an_opt_out_recorded_by_the_outbox_survives_the_citizens_next_question(sms: SmsConversations,
                                                                              store: MemoryStore) -> None:
    StopList(store).stop(PHONE, "number stopped (optout)")  # a send refused after TD, as the outbox records it
    say(sms, "结婚登记收费吗")
    assert StopList(store).reason(PHONE) == "number stopped (optout)"


def test_an_opted_out_citizen_can_still_ask(sms: SmsConversations, store: MemoryStore) -> None:
    say(sms, "TD")
    assert "不收费" in say(sms, "结婚登记收费吗")
    assert StopList(store).reason(PHONE) == "optout"


def test_empty_text_gets_a_polite_prompt(sms: SmsConversations) -> None:
    assert "请" in say(sms, "")
