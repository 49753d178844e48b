"""Dialog transcripts on a small catalog: answers, fields, follow-ups, clarify by number, small talk."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from guidebot.dialog.engine import DialogEngine, distinguishing_labels
from guidebot.dialog.replies import Choices
from guidebot.knowledge.asks import OutsideTopic
from guidebot.knowledge.catalog import Catalog
from guidebot.knowledge.lexicon import bundled_lexicon
from guidebot.knowledge.matching import CatalogIndex
from tests.conftest import Conversation

SMALL = Path(__file__).parent / "data" / "small.yaml"


def test_general_question_gets_the_whole_guide_in_one_message(small_chat: Conversation) -> None:
    reply = small_chat.say("我想办个身份证")
    assert "【居民身份证办理】" in reply
    for expected in ("居民户口簿（原件，1份）", "近期免冠照片（原件，2份）：可现场采集", "工本费 20 元",
                     "承诺 20 个工作日", "公安综合窗口 3 号", "到现场次数】2 次", "示例指南"):
        assert expected in reply


def test_materials_question_answers_materials(small_chat: Conversation) -> None:
    reply = small_chat.say("办身份证要准备啥")
    assert "居民户口簿（原件，1份）" in reply and "工本费" not in reply


def test_field_question_answers_that_field_only(small_chat: Conversation) -> None:
    reply = small_chat.say("结婚登记收费吗")
    assert "【收费】不收费" in reply
    assert "申请材料" not in reply


def test_follow_up_is_about_the_item_last_discussed(small_chat: Conversation) -> None:
    small_chat.say("我想办身份证")
    reply = small_chat.say("那要多久？")
    assert "居民身份证办理" in reply and "承诺 20 个工作日" in reply
    assert "工本费 20 元" in small_chat.say("收费吗")


def test_sub_items_without_a_situation_answer_the_new_one_and_offer_the_rest(small_chat: Conversation) -> None:
    reply = small_chat.say("食品经营许可")
    assert "【食品经营许可（新办）】" in reply
    assert "1. 变更" in reply and "2. 注销" in reply
    answer = small_chat.say("1")
    assert "【食品经营许可（变更）】" in answer
    assert "请回复 1 到" not in answer


def test_clarify_between_items_then_choose_by_number(bundled_chat: Conversation) -> None:
    reply = bundled_chat.say("营业执照变更要什么条件")
    assert "请问您要办的是哪一个" in reply
    offered = [line.split(". ", 1)[1] for line in reply.splitlines() if line[:1].isdigit()]
    assert len(offered) == 2 and "个体工商户变更登记（备案）" in offered
    assert any(name.endswith("公司变更登记") for name in offered)
    first = offered[0]
    chosen = bundled_chat.say("1")
    assert f"【{first}】" in chosen and "【受理条件】" in chosen


def test_clarify_choice_out_of_range(small_chat: Conversation) -> None:
    small_chat.say("食品经营许可")
    assert "请回复 1 到 2 之间的数字" in small_chat.say("9")


def test_what_the_center_does_not_handle_is_named_in_the_reply(bundled_chat: Conversation) -> None:
    """银行卡 and 上海 are out of reach: the citizen is told so, not asked to rephrase."""
    card = bundled_chat.say("银行卡密码忘了咋个办")
    assert "“银行卡”的事不在" in card and "换个说法" not in card
    elsewhere = bundled_chat.say("上海的社保卡在哪补")
    assert "“上海”的事不在" in elsewhere


def test_a_word_about_the_center_itself_reaches_its_staff(small_catalog: Catalog, memory_store) -> None:
    """A clerk's manner is no other office's business: the citizen is heard and given the complaint line."""
    staff = OutsideTopic("对窗口服务的意见", (), ("窗口办事的人态度太差了", "工作人员一直耍手机不理人",
                                                 "想投诉那个窗口的工作人员"), about_center=True)
    lexicon = dataclasses.replace(bundled_lexicon(), outside=(staff,))
    chat = Conversation(DialogEngine(CatalogIndex(small_catalog, lexicon), memory_store))
    reply = chat.say("那个窗口的工作人员态度太差了，喊半天都不理人")
    assert "“对窗口服务的意见”" in reply and "不在" not in reply and "12345" in reply
    assert memory_store.logged[-1]["decision"] == "unknown"


def test_an_item_read_from_the_story_is_named_as_a_guess(bundled_chat: Conversation) -> None:
    """No word of the item's name was said: the reply says which item it took, so a wrong guess is corrected."""
    guessed = bundled_chat.say("考老师的证笔试面试都过了，下一步咋个拿证")
    assert guessed.startswith("按您说的情况，要办的应是“教师资格认定”")
    assert not bundled_chat.say("教师资格认定要带什么").startswith("按您说的情况")


def test_item_without_guide_says_so_and_gives_the_phone(small_chat: Conversation) -> None:
    reply = small_chat.say("无犯罪记录证明怎么开")
    assert "无犯罪记录证明" in reply and "010-12345678" in reply


def test_unknown_is_kind_gives_phone_and_is_logged(small_chat: Conversation, memory_store) -> None:
    reply = small_chat.say("我想买火车票")
    assert "火车票" in reply and "不在" in reply and "010-12345678" in reply and "周一至周五" in reply
    assert memory_store.logged[-1]["decision"] == "unknown"
    assert memory_store.logged[-1]["text"] == "我想买火车票"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("你好", "办事指南助手"),
        ("/start", "办事指南助手"),
        ("帮助", "您可以这样问我"),
        ("谢谢！", "不客气"),
        ("中心地址在哪", "测试路 1 号"),
        ("几点上班", "周一至周五 9:00-17:00"),
        ("中心周末上班吗？", "周末不上班"),
    ],
)
def test_small_talk_and_center_information(small_chat: Conversation, message: str, expected: str) -> None:
    assert expected in small_chat.say(message)


@pytest.mark.parametrize(
    "message",
    ["", "   ", "😀😀😀", "<script>alert(1)</script>", "\x00\x01\x02", "身份证" * 3400, "a" * 10000,
     "&lt;b&gt;", "？？？", "1"],
    ids=["empty", "spaces", "emoji", "markup", "control", "10000-chinese", "10000-latin", "entities", "punct",
         "bare-number"],
)
def test_bad_input_gets_a_sensible_reply(small_chat: Conversation, message: str) -> None:
    reply = small_chat.say(message)
    assert reply.strip()
    assert "Traceback" not in reply
    assert "<script>" not in reply


def test_item_answer_offers_section_shortcuts(small_chat: Conversation) -> None:
    replies = small_chat.replies("办身份证")
    shortcuts = [part for part in replies[0].parts if isinstance(part, Choices) and not part.numbered]
    assert shortcuts and "收费" in [choice.label for choice in shortcuts[0].options]


def test_item_faq_is_answered_with_the_guide(small_chat: Conversation) -> None:
    reply = small_chat.say("身份证可以异地办理吗")
    assert "在全国任一办证点申请" in reply


def test_state_is_per_sender(small_index, memory_store) -> None:
    from guidebot.dialog.engine import DialogEngine

    engine = DialogEngine(small_index, memory_store)
    alice, bob = Conversation(engine, sender="alice"), Conversation(engine, sender="bob")
    alice.say("食品经营许可")
    assert "没有找到" in bob.say("2") or "请直接告诉我" in bob.say("2")
    assert "食品经营许可（注销）" in alice.say("2")


@pytest.mark.parametrize(
    ("names", "labels"),
    [
        (["食品经营许可（新办）", "食品经营许可（变更）"], ["新办", "变更"]),
        (["户口恢复", "户口注销", "户口变更"], ["恢复", "注销", "变更"]),
        (["危险废物经营许可申请（市级）", "危险废物经营许可变更(市级)"], ["申请", "变更"]),
        (["甲", "甲乙"], ["甲", "甲乙"]),
    ],
)
def test_distinguishing_labels(names: list[str], labels: list[str]) -> None:
    assert distinguishing_labels(names) == labels


def test_answer_offers_the_other_situations_of_its_main_item(small_chat: Conversation) -> None:
    reply = small_chat.say("食品经营许可新办")
    assert "【食品经营许可（新办）】" in reply
    assert "其他情况" in reply and "1. 变更" in reply and "2. 注销" in reply
    assert "【食品经营许可（注销）】" in small_chat.say("2")


def test_rating_prompt_never_competes_with_a_numbered_menu(small_index, memory_store) -> None:
    from guidebot.dialog.engine import DialogEngine
    from guidebot.dialog.replies import Reply

    prompted: list[str] = []

    def ask_rating(inbound, item) -> list[Reply]:
        prompted.append(item.code)
        return [Reply.text("这个回答有帮助吗？回复 1-5")]

    chat = Conversation(DialogEngine(small_index, memory_store, on_answer=ask_rating))
    assert "这个回答有帮助吗" in chat.say("结婚登记要带什么")
    reply = chat.say("食品经营许可")  # answer plus a numbered menu of its other situations
    assert "其他情况" in reply and "这个回答有帮助吗" not in reply
    assert prompted == ["T-002"]


def test_field_answer_adds_the_guides_faq_on_that_point(bundled_chat: Conversation) -> None:
    bundled_chat.say("我想办身份证")
    reply = bundled_chat.say("那要多久？")
    assert "【办理时限】" in reply
    assert "问：身份证多久能拿到" in reply and "60 日内" in reply


# -- "这个回答有帮助吗？" per channel (GUIDEBOT_RATING_PROMPT) ---------------------------------------


@pytest.mark.parametrize(
    ("setting", "asking"),
    [
        (None, {"telegram"}),  # the default: buttons on Telegram are free; an SMS segment is not
        ("off", set()),
        ("on", {"telegram", "sms", "console"}),
        ("telegram, console", {"telegram", "console"}),
        ("sms", {"sms"}),
    ],
    ids=["default", "off", "on", "list", "sms-only"],
)
def test_the_rating_prompt_after_an_answer_is_asked_per_channel(
        tmp_path, monkeypatch: pytest.MonkeyPatch, setting: str | None, asking: set[str]) -> None:
    from guidebot.app import build
    from guidebot.dialog.replies import Inbound
    from guidebot.settings import Settings

    if setting is None:
        monkeypatch.delenv("GUIDEBOT_RATING_PROMPT", raising=False)
    else:
        monkeypatch.setenv("GUIDEBOT_RATING_PROMPT", setting)
    bot = build(Settings.load(environ={"GUIDEBOT_DATA_DIR": str(tmp_path), "GUIDEBOT_CATALOG": str(SMALL)}))
    try:
        asked = set()
        for channel in ("telegram", "sms", "console"):
            replies = bot.engine.handle(Inbound(channel=channel, sender="77", text="结婚登记要带什么"))
            text = "\n".join(reply.plain() for reply in replies)
            assert "【结婚登记】" in text
            if "这个回答有帮助吗" in text:
                asked.add(channel)
            # and never beside a numbered menu of situations, where "1" must mean one thing
            menu = "\n".join(r.plain() for r in bot.engine.handle(Inbound(channel=channel, sender="77",
                                                                           text="食品经营许可")))
            assert "其他情况" in menu and "这个回答有帮助吗" not in menu
        assert asked == asking
    finally:
        bot.store.close()  # type: ignore[attr-defined]


def test_a_mistyped_rating_prompt_channel_is_a_settings_error() -> None:
    from guidebot.app import rating_prompt_channels
    from guidebot.settings import SettingsError

    with pytest.raises(SettingsError, match="unknown channel telegarm"):
        rating_prompt_channels("telegarm,sms")
