"""Whole conversations: the real PTB client long-polls the fake Bot API; guidebot runs on SQLite.

Each test is a transcript of what a citizen or a clerk sends and what arrives in their chat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.dialog.replies import Choice, Choices, Inbound, Link, Reply, Text
from guidebot.handlers.telegram.bot import APOLOGY, NOT_FOR_YOU, UNKNOWN_COMMAND, StaffServices, handlers_of
from tests.telegram.conftest import CITIZEN, OTHER_CITIZEN, STAFF_ID, Harness, buttons, choice_for, text_of
from tests.telegram.fake_bot_api import utf16_len

pytestmark = pytest.mark.asyncio




# -- citizens -------------------------------------------------------------------------------------


async def test_start_and_help_are_in_chinese(polling: Harness) -> None:
    welcome = await polling.say("/start")
    assert "您好！我是测试政务服务中心的办事指南助手" in text_of(welcome)
    assert "010-12345678" in text_of(welcome)
    help_ = await polling.say(f"/help@{'guidebot_test_bot'}")
    assert "您可以这样问我" in text_of(help_)
    assert "工作人员命令" not in text_of(help_)


async def test_a_question_is_answered_and_a_section_button_asks_the_follow_up(polling: Harness) -> None:
    answer, rating = await polling.say("办身份证要带什么材料")
    assert "居民户口簿" in answer["text"] and "近期免冠照片" in answer["text"]
    assert rating["text"] == "这个回答有帮助吗？请评价："  # on by default on Telegram: a tap, free
    shortcuts = buttons(answer)
    assert ("收费", "收费") in shortcuts and ("材料", "材料") not in shortcuts  # not the section just shown

    [fee] = await polling.press(answer, "收费")
    assert "工本费 20 元" in fee["text"]
    assert polling.fake.calls_of("answerCallbackQuery"), "the button's spinner must be stopped"
    assert buttons(polling.fake.sent(CITIZEN)[0]) == shortcuts  # shortcuts stay pressable


async def test_a_clarification_is_chosen_by_button(polling: Harness) -> None:
    messages = await polling.say("我想办食品经营许可")
    question, number = choice_for(messages, "变更")
    answer = await polling.press(question, number)
    assert "【食品经营许可（变更）】" in text_of(answer)
    edited = polling.fake.messages[(CITIZEN, question["message_id"])]
    assert edited["text"].startswith(question["text"])
    assert edited["text"].endswith(f"✅ 已选择：{number}. 变更")
    assert "reply_markup" not in edited, "a choice is made once: the buttons go away"
    assert len(polling.fake.calls_of("editMessageText")) == 1


async def test_a_typed_number_works_like_the_button(polling: Harness) -> None:
    _, number = choice_for(await polling.say("食品经营许可"), "注销")
    answer = await polling.say(number)
    assert "【食品经营许可（注销）】" in text_of(answer)


async def test_two_citizens_have_separate_conversations(polling: Harness) -> None:
    _, number = choice_for(await polling.say("食品经营许可", chat_id=CITIZEN), "注销")
    other = await polling.say(number, chat_id=OTHER_CITIZEN)
    assert "食品经营许可" not in text_of(other)  # no pending choice in the other chat
    mine = await polling.say(number, chat_id=CITIZEN)
    assert "【食品经营许可（注销）】" in text_of(mine)


async def test_an_unknown_question_is_answered_honestly_and_logged_for_staff(polling: Harness) -> None:
    [reply] = await polling.say("火星移民签证怎么办")
    assert "“签证”的事不在" in reply["text"] and "010-12345678" in reply["text"]
    [report] = await polling.say("/unanswered", chat_id=STAFF_ID)
    assert "火星移民签证怎么办（1 次" in report["text"]


async def test_photos_unknown_commands_and_group_chats(polling: Harness) -> None:
    polling.fake.user_sends_photo(CITIZEN)
    [photo_reply] = await polling._new_messages(CITIZEN, 0)
    assert "请用文字" in photo_reply["text"]
    [unknown] = await polling.say("/frobnicate")
    assert unknown["text"] == UNKNOWN_COMMAND
    polling.fake.user_says("办身份证要带什么", chat_id=-5000, user_id=CITIZEN, chat_type="group")
    await polling.settle(quiet=0.4)
    assert polling.fake.sent(-5000) == []  # guidebot talks in private chats only


async def test_catalog_text_is_escaped_and_long_answers_are_split(tmp_path: Path, polling: Harness) -> None:
    # The stack's catalog is small.yaml; this test swaps in an engine reply carrying markup-like
    # catalog text and a 9,000-character guide, as the renderer must handle any catalog.
    materials = [f"{n}. 《申请表》<原件> & 复印件 第{n}份" for n in range(1, 400)]
    reply = Reply((Text("【申请材料】\n" + "\n".join(materials)),
                   Choices("还想了解：", (Choice("收费", "收费"),), numbered=False)))
    polling.guidebot.engine.handle = lambda inbound: [reply]  # type: ignore[method-assign]
    messages = await polling.say("材料")
    assert len(messages) >= 3
    assert all(utf16_len(m["text"]) <= 4096 for m in messages)
    assert text_of(messages).split("\n") == ["【申请材料】", *materials, "还想了解："]
    assert [bool(buttons(m)) for m in messages] == [False] * (len(messages) - 1) + [True]


async def test_form_links_arrive_as_links(polling: Harness) -> None:
    form = Reply((Text("申请表下载："), Link("《食品经营许可申请书》", "https://zwfw.example.gov.cn/forms/1.docx?a=1&b=2")))
    polling.guidebot.engine.handle = lambda inbound: [form]  # type: ignore[method-assign]
    [message] = await polling.say("表格")
    assert message["text"] == "申请表下载：\n《食品经营许可申请书》"
    assert message["entities"] == [{"type": "text_link", "offset": 7, "length": 11,
                                    "url": "https://zwfw.example.gov.cn/forms/1.docx?a=1&b=2"}]


async def test_the_engine_gets_the_telegram_inbound(polling: Harness) -> None:
    seen: list[Inbound] = []

    def record(inbound: Inbound) -> list[Reply]:
        seen.append(inbound)
        return [Reply((Choices("请评价本次回答：", (Choice("满意", "1"), Choice("不满意", "2"))),))]

    polling.guidebot.engine.handle = record  # type: ignore[method-assign]
    [rating] = await polling.say("你好", chat_id=CITIZEN)
    await polling.press(rating, "1")
    await polling.say("你好", chat_id=STAFF_ID)
    citizen, pressed, staff = seen
    assert (citizen.channel, citizen.sender, citizen.text) == ("telegram", str(CITIZEN), "你好")
    assert citizen.is_staff is False
    assert citizen.message_id.isdigit() and pressed.message_id != citizen.message_id
    assert (pressed.sender, pressed.text) == (str(CITIZEN), "1")  # a press is the typed choice
    assert staff.is_staff is True


async def test_an_engine_failure_gets_an_apology_when_polling(polling: Harness) -> None:
    def broken(_inbound: Inbound) -> list[Reply]:
        raise RuntimeError("database is down")

    polling.guidebot.engine.handle = broken  # type: ignore[method-assign]
    [message] = await polling.say("办身份证要带什么")
    assert message["text"] == APOLOGY


# -- staff ----------------------------------------------------------------------------------------


STAFF_COMMANDS = ["/broadcast 明天停电，中心暂停办公", "/stats", "/unanswered", "/case SC2025000001"]


@pytest.mark.parametrize("command", STAFF_COMMANDS)
async def test_staff_commands_politely_refuse_everyone_else(polling: Harness, command: str) -> None:
    [refusal] = await polling.say(command, chat_id=CITIZEN)
    assert refusal["text"] == NOT_FOR_YOU
    assert not any(call.method == "sendMessage" and call.params.get("chat_id") != CITIZEN
                   for call in polling.fake.calls), "nothing goes to anyone else"


async def test_staff_help_lists_the_staff_commands(polling: Harness) -> None:
    messages = await polling.say("/help", chat_id=STAFF_ID)
    assert "/broadcast" in text_of(messages) and "/unanswered" in text_of(messages)


def _write_cases(path: Path) -> Path:
    path.write_text(
        "办件编号,办件状态,状态时间,事项编码,申请人,联系电话,受理时间,受理窗口\n"
        "SC2025000001,受理,2025-09-01 09:00,T-001,欧阳娜娜,13812345678,2025-09-01 09:00,公安综合窗口 3 号\n"
        "SC2025000001,审查中,2025-09-02 10:00,,,,,\n",
        encoding="utf-8",
    )
    return path


async def test_a_case_is_looked_up_with_its_second_factor(tmp_path: Path, polling: Harness) -> None:
    from guidebot.cases.importer import import_cases

    assert not import_cases(polling.guidebot.store, _write_cases(tmp_path / "cases.csv")).errors  # type: ignore[arg-type]
    [ask] = await polling.say("帮我查下办件 SC2025000001 的进度")
    assert "后 4 位" in ask["text"]
    [wrong] = await polling.say("1234")
    assert "没有查到与该办件编号和验证信息相符的办件" in wrong["text"]
    assert "审查" not in wrong["text"]
    await polling.say("查件 SC2025000001")
    [found] = await polling.say("5678")
    assert "办件编号：SC2025000001" in found["text"]
    assert "事项：居民身份证办理" in found["text"]
    assert "当前状态：审查" in found["text"]
    assert "申请人：欧***" in found["text"] and "欧阳娜娜" not in found["text"]


async def test_staff_case_shows_history_with_the_name_masked(tmp_path: Path, polling: Harness) -> None:
    from guidebot.cases.importer import import_cases

    result = import_cases(polling.guidebot.store, _write_cases(tmp_path / "cases.csv"))  # type: ignore[arg-type]
    assert not result.errors, result.errors
    [shown] = await polling.say("/case sc2025000001", chat_id=STAFF_ID)
    assert "办件编号：SC2025000001" in shown["text"]
    assert "事项：居民身份证办理" in shown["text"]
    assert "申请人：欧***" in shown["text"] and "欧阳娜娜" not in shown["text"]
    assert "5678" not in shown["text"]
    assert "办理记录：" in shown["text"]
    [missing] = await polling.say("/case SC2099999999", chat_id=STAFF_ID)
    assert "没有办件编号为 SC2099999999 的办件" in missing["text"]


class RecordingOutbox:
    """Stands in for the outbox's broadcast API: records what staff confirmed."""

    def __init__(self, recipients: int = 3) -> None:
        self.recipients = recipients
        self.sent: list[tuple[str, str]] = []

    def preview(self, text: str) -> tuple[str, list[str]]:
        if len(text) > 100:
            raise ValueError("通知内容过长")
        return text + "（回复“退订”不再接收通知）", [f"收件人：共 {self.recipients} 人"]

    def send(self, text: str, by: str) -> int:
        self.sent.append((text, by))
        return self.recipients


async def test_staff_broadcast_needs_an_explicit_confirmation(polling: Harness) -> None:
    outbox = RecordingOutbox()
    handlers_of(polling.app).services = StaffServices(broadcast=outbox)
    [preview] = await polling.say("/broadcast 明天停电，中心暂停办公。\n请改日再来。", chat_id=STAFF_ID)
    assert preview["text"].startswith("群发预览：\n收件人：共 3 人")
    assert "明天停电，中心暂停办公。\n请改日再来。（回复“退订”不再接收通知）" in preview["text"]
    assert [label for label, _ in buttons(preview)] == ["确认发送", "取消"]
    assert outbox.sent == []  # nothing before the confirmation

    confirm = next(data for label, data in buttons(preview) if label == "确认发送")
    polling.fake.user_presses(preview, confirm, user_id=CITIZEN)  # a forged press by a citizen
    await polling.settle()
    assert outbox.sent == []

    polling.fake.user_presses(preview, confirm, user_id=STAFF_ID)
    await polling.fake.wait_for(lambda: bool(outbox.sent))
    await polling.settle()
    assert outbox.sent == [("明天停电，中心暂停办公。\n请改日再来。", f"telegram:{STAFF_ID}")]
    edited = polling.fake.messages[(STAFF_ID, preview["message_id"])]
    assert edited["text"].startswith("已提交群发：3 位订阅者") and "reply_markup" not in edited

    polling.fake.user_presses(preview | {"reply_markup": {"inline_keyboard": [[
        {"text": "确认发送", "callback_data": confirm}]]}}, confirm, user_id=STAFF_ID)  # pressed twice
    await polling.settle()
    assert len(outbox.sent) == 1


async def test_staff_broadcast_can_be_cancelled_and_refuses_bad_text(polling: Harness) -> None:
    outbox = RecordingOutbox()
    handlers_of(polling.app).services = StaffServices(broadcast=outbox)
    [preview] = await polling.say("/broadcast 测试", chat_id=STAFF_ID)
    cancel = next(data for label, data in buttons(preview) if label == "取消")
    polling.fake.user_presses(preview, cancel, user_id=STAFF_ID)
    await polling.fake.wait_for(lambda: polling.fake.messages[(STAFF_ID, preview["message_id"])].get("edited", False))
    assert polling.fake.messages[(STAFF_ID, preview["message_id"])]["text"] == "已取消群发，没有发送。"
    [too_long] = await polling.say("/broadcast " + "长" * 200, chat_id=STAFF_ID)
    assert too_long["text"] == "无法群发：通知内容过长"
    [usage] = await polling.say("/broadcast", chat_id=STAFF_ID)
    assert usage["text"].startswith("用法：/broadcast")
    assert outbox.sent == []


async def test_staff_without_an_outbox_are_told_it_is_not_available(polling: Harness) -> None:
    handlers_of(polling.app).services = StaffServices()
    [broadcast] = await polling.say("/broadcast 测试", chat_id=STAFF_ID)
    [stats] = await polling.say("/stats", chat_id=STAFF_ID)
    assert broadcast["text"].startswith("群发功能尚未开通") and stats["text"].startswith("统计功能尚未开通")


async def test_unsubscribe_commands_go_to_the_dialog(polling: Harness) -> None:
    seen: list[str] = []

    def record(inbound: Inbound) -> list[Reply]:
        seen.append(inbound.text)
        return [Reply.text("已退订。")]

    polling.guidebot.engine.handle = record  # type: ignore[method-assign]
    await polling.say("/unsubscribe@guidebot_test_bot")
    await polling.say("/stop")
    assert seen == ["/unsubscribe", "/stop"]


async def test_staff_unanswered_when_nothing_is_unanswered(polling: Harness) -> None:
    [report] = await polling.say("/unanswered 5", chat_id=STAFF_ID)
    assert report["text"] == "目前没有未能回答的问题。"

