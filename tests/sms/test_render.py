"""SMS rendering: plain text, "回复1 …" menus, segments counted as the gateway splits, pages behind 更多."""

from __future__ import annotations

import pytest

from guidebot.dialog.replies import Choice, Choices, Link, Reply, Text
from guidebot.handlers.sms.render import (
    MORE_HINT,
    count_segments,
    is_gsm7,
    paginate,
    render_replies,
    render_reply,
    sanitize,
)


@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    pytest.param("a" * 160, "gsm7", 160, 1, id="gsm-160-one-part"),
    pytest.param("a" * 161, "gsm7", 161, 2, id="gsm-161-two-parts"),
    pytest.param("a" * 306, "gsm7", 306, 2, id="gsm-306-two-parts-of-153"),
    pytest.param("a" * 307, "gsm7", 307, 3, id="gsm-307-three-parts"),
    pytest.param("{" * 80, "gsm7", 160, 1, id="gsm-extension-chars-count-twice"),
    pytest.param("字" * 70, "ucs2", 70, 1, id="ucs2-70-one-part"),
    pytest.param("字" * 71, "ucs2", 71, 2, id="ucs2-71-two-parts"),
    pytest.param("字" * 134, "ucs2", 134, 2, id="ucs2-134-two-parts-of-67"),
    pytest.param("字" * 135, "ucs2", 135, 3, id="ucs2-135-three-parts"),
    pytest.param("a" * 100 + "字", "ucs2", 101, 2, id="one-chinese-char-makes-it-ucs2"),
    pytest.param("`", "ucs2", 1, 1, id="backtick-is-not-gsm"),
])
def test_segments(text: str, encoding: str, units: int, parts: int) -> None:
    segments = count_segments(text)
    assert (segments.encoding, segments.units, segments.parts) == (encoding, units, parts)


def test_gsm7_alphabet() -> None:
    assert is_gsm7("Hello, world! @£$¥ 100%")
    assert not is_gsm7("你好")
    assert not is_gsm7("😀")


@pytest.mark.parametrize(("raw", "plain"), [
    pytest.param("**材料**：身份证", "材料：身份证", id="bold"),
    pytest.param("<b>收费</b><br>不收费", "收费\n不收费", id="html"),
    pytest.param("[网上办理](https://zwfw.example.gov.cn/)", "网上办理：https://zwfw.example.gov.cn/", id="md-link"),
    pytest.param("您好😀👍🏻，请问", "您好，请问", id="emoji-removed"),
    pytest.param("第一行\n\n\n第二行  \r\n第三行", "第一行\n第二行\n第三行", id="blank-lines"),
    pytest.param("a\x00b\u200bc", "abc", id="control-and-zero-width"),
    pytest.param("## 标题\n正文", "标题\n正文", id="heading"),
    pytest.param("申请人：张*，电话 138****5678，证件 110***********1234",
                 "申请人：张*，电话 138****5678，证件 110***********1234", id="masked-values-keep-their-stars"),
    pytest.param("**材料**：**身份证**、户口簿", "材料：身份证、户口簿", id="two-bold-words"),
    pytest.param("`代码` __下划__", "代码 下划", id="code-and-underline"),
])
def test_sanitize_gives_plain_text(raw: str, plain: str) -> None:
    assert sanitize(raw) == plain


def test_numbered_choices_become_reply_digit_lines() -> None:
    reply = Reply((Choices("找到几个相近的事项，请问您要办的是哪一个？回复数字即可：",
                           (Choice("公司设立登记", "1"), Choice("个体工商户设立登记", "2"))),))
    assert render_reply(reply) == ("找到几个相近的事项，请问您要办的是哪一个？\n"
                                   "回复1 公司设立登记\n回复2 个体工商户设立登记")


def test_shortcuts_become_words_to_reply() -> None:
    reply = Reply((Text("【收费】不收费"), Choices("还想了解：", (Choice("材料", "材料"), Choice("时限", "时限")),
                                                 numbered=False)))
    assert render_reply(reply) == "【收费】不收费\n还想了解，请回复：材料／时限"


def test_links_and_several_replies() -> None:
    replies = [Reply((Text("网上也能办"), Link("四川政务服务网", "https://www.sczwfw.gov.cn/"))), Reply.text("谢谢")]
    assert render_replies(replies) == "网上也能办\n四川政务服务网：https://www.sczwfw.gov.cn/\n谢谢"


def test_a_short_text_is_one_page() -> None:
    assert paginate("结婚登记不收费。", 3) == ["结婚登记不收费。"]
    assert paginate("字" * 201, 3) == ["字" * 201]


@pytest.mark.parametrize("max_segments", [1, 2, 3, 5])
def test_long_text_is_paged_within_the_cap_and_nothing_is_lost(max_segments: int) -> None:
    lines = [f"{i}. 居民户口簿（原件）：首次申领、补领及未满 16 周岁的必须提供，请一次带齐。" for i in range(1, 12)]
    text = "\n".join(lines)
    pages = paginate(text, max_segments)
    assert len(pages) > 1
    for page in pages[:-1]:
        assert page.endswith(MORE_HINT)
        assert count_segments(page).parts <= max_segments
    assert count_segments(pages[-1]).parts <= max_segments
    rebuilt = "".join(page.removesuffix(MORE_HINT) for page in pages)
    assert rebuilt.replace("\n", "") == text.replace("\n", "")


def test_pages_break_at_line_ends_when_they_can() -> None:
    text = "\n".join(["一二三四五六七八九十" * 5] * 10)
    pages = paginate(text, 2)
    assert all(page.removesuffix(MORE_HINT).endswith("十") for page in pages)


def test_an_endless_text_is_cut_short_after_the_page_limit() -> None:
    pages = paginate("字" * 100_000, 3)
    assert len(pages) == 20
    assert pages[-1].endswith("…")
    assert all(count_segments(page).parts <= 3 for page in pages)


def test_zero_segments_is_refused() -> None:
    with pytest.raises(ValueError):
        paginate("x", 0)
