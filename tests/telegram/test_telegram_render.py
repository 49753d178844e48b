"""Reply → Telegram HTML and buttons (no network)."""

from __future__ import annotations

import pytest

from guidebot.dialog.replies import Choice, Choices, Link, Reply, Text
from guidebot.handlers.telegram.render import (
    MAX_MESSAGE_LENGTH,
    render_replies,
    render_reply,
    split_lines,
    telegram_length,
)
from tests.telegram.fake_bot_api import parse_html


def keyboard_data(rendered: object) -> list[list[tuple[str, str]]]:
    markup = rendered.keyboard  # type: ignore[attr-defined]
    if markup is None:
        return []
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("A & B", "A &amp; B"),
        ("费用 < 20 元 > 10 元", "费用 &lt; 20 元 &gt; 10 元"),
        ("<b>不是粗体</b>", "&lt;b&gt;不是粗体&lt;/b&gt;"),
        ("&amp; 已转义的", "&amp;amp; 已转义的"),
    ],
    ids=["script", "ampersand", "angles", "tag", "entity-text"],
)
def test_everything_written_is_escaped(written: str, shown: str) -> None:
    [message] = render_reply(Reply.text(written))
    assert message.text == shown
    assert parse_html(message.text)[0] == written  # Telegram shows exactly what was written


def test_link_is_an_anchor_with_escaped_label_and_url() -> None:
    [message] = render_reply(Reply((Text("表格："), Link("申请表<新>", "https://example.gov.cn/f?a=1&b=\"2\""))))
    text, entities = parse_html(message.text)
    assert text == "表格：\n申请表<新>"
    assert entities == [{"type": "text_link", "offset": 4, "length": 6,
                         "url": "https://example.gov.cn/f?a=1&b=\"2\""}]


def test_link_without_a_web_scheme_is_plain_text() -> None:
    [message] = render_reply(Reply((Link("表格", "javascript:alert(1)"),)))
    assert "<a" not in message.text
    assert parse_html(message.text)[0] == "表格：javascript:alert(1)"


def test_numbered_choices_are_buttons_whose_data_is_the_number() -> None:
    options = (Choice("新办", "1"), Choice("变更", "2"), Choice("注销", "3"))
    reply = Reply((Choices("请问您是哪一种？回复数字即可：", options),))
    [message] = render_reply(reply)
    assert message.text == "请问您是哪一种？回复数字即可："
    assert keyboard_data(message) == [[("1. 新办", "1")], [("2. 变更", "2")], [("3. 注销", "3")]]


def test_long_choice_labels_are_listed_in_the_text_and_shortened_on_buttons() -> None:
    long_name = "对建设工程消防设计审查验收及其他相关事项的行政许可申请（新办、变更、延续）"
    reply = Reply((Choices("找到几个相近的事项：", (Choice(long_name, "1"), Choice("结婚登记", "2"))),))
    [message] = render_reply(reply)
    assert f"1. {long_name}" in message.text
    [[(label, data)], _] = keyboard_data(message)
    assert data == "1" and label.endswith("…") and len(label) <= 33


def test_section_shortcuts_share_a_row_and_send_the_section_word() -> None:
    shortcuts = Choices("还想了解：", tuple(Choice(w, w) for w in ("收费", "时限", "地点", "流程")), numbered=False)
    [message] = render_reply(Reply((Text("【申请材料】"), shortcuts)))
    assert message.text == "【申请材料】\n还想了解："
    assert keyboard_data(message) == [[("收费", "收费"), ("时限", "时限"), ("地点", "地点"), ("流程", "流程")]]


def test_callback_data_never_exceeds_64_bytes() -> None:
    long_reply = "评价 " + "很满意" * 10  # 3 + 90 bytes
    reply = Reply((Choices("请评价：", (Choice("满意", "满意"), Choice("很满意", long_reply)), numbered=False),))
    [message] = render_reply(reply)
    assert keyboard_data(message) == [[("满意", "满意")]]
    assert f"回复“{long_reply}”" in parse_html(message.text)[0]
    for row in keyboard_data(message):
        assert all(len(data.encode()) <= 64 for _, data in row)


def test_long_answer_splits_on_line_boundaries_with_buttons_on_the_last_part() -> None:
    lines = [f"{n}. 材料第{n}项：居民户口簿原件及复印件一份（需加盖公章）" for n in range(1, 301)]
    shortcuts = Choices("还想了解：", (Choice("收费", "收费"),), numbered=False)
    messages = render_reply(Reply((Text("\n".join(lines)), shortcuts)))
    assert len(messages) >= 3
    assert all(telegram_length(m.text) <= MAX_MESSAGE_LENGTH for m in messages)
    assert [m.keyboard is None for m in messages] == [True] * (len(messages) - 1) + [False]
    shown = "\n".join(m.text for m in messages).split("\n")
    assert shown == [*lines, "还想了解："]  # no line cut, lost or duplicated


def test_a_line_longer_than_a_message_is_cut_outside_entities() -> None:
    line = "甲&乙<" * 3000  # escapes to 11 characters per 4 written
    messages = render_reply(Reply.text(line))
    assert len(messages) > 1
    assert all(telegram_length(m.text) <= MAX_MESSAGE_LENGTH for m in messages)
    assert "".join(parse_html(m.text)[0] for m in messages) == line  # every part parses


def test_emoji_count_double_towards_the_limit() -> None:
    chunks = split_lines(["😀" * 3000], limit=MAX_MESSAGE_LENGTH)
    assert [telegram_length(c) for c in chunks] == [4096, 1904]


def test_blank_lines_do_not_start_a_part_and_empty_replies_render_nothing() -> None:
    assert split_lines(["a", "", "b"], limit=2) == ["a", "b"]
    assert render_reply(Reply(())) == []
    assert len(render_replies([Reply.text("一"), Reply.text("二")])) == 2
