"""The 好差评 invitation in an outbox message: recognised by its row (kind, dedupe key) or its text,
and the buttons' data naming the case (end to end with the dispatcher: test_telegram_outbox.py)."""

from __future__ import annotations

import pytest

from guidebot.handlers.telegram.ratings import case_from_key, case_rating_keyboard, parse_case_rating, rating_invitation
from guidebot.outbox.ratings import case_rating_prompt

FINAL_NOTICE = ("【办件进度】您订阅的办件 SC2025000001（居民身份证办理）状态更新为：已办结（09月10日 15:00）。\n"
                "请到 3 号窗口领取。\n本办件的进度通知到此结束。\n" + case_rating_prompt())
CASE_KEY = "case:SC2025000001:已办结:20250910T150000:telegram:1001"


@pytest.mark.parametrize(
    ("text", "kind", "key", "case_no"),
    [
        (FINAL_NOTICE, None, None, "SC2025000001"),  # no row: the text decides, the case from the text
        (FINAL_NOTICE, "case", CASE_KEY.replace("SC2025000001", "SC-2025-7"), "SC-2025-7"),  # the key wins
        ("您的办件已办结。\n" + case_rating_prompt(), "case", CASE_KEY, "SC2025000001"),
        ("您的办件已办结。\n" + case_rating_prompt(), None, None, None),  # buttons without a case: digits
        ("请为本次服务评价", "rating", "rating:SC2025000001", "SC2025000001"),
    ],
    ids=["text", "key", "key-only", "no-case", "rating-row"],
)
def test_a_rating_invitation_is_recognised(text: str, kind: str | None, key: str | None, case_no: str | None) -> None:
    invitation = rating_invitation(text, kind, key)
    assert invitation is not None and invitation.case_no == case_no
    assert case_rating_prompt() not in invitation.text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (FINAL_NOTICE, "broadcast"),  # a staff notice quoting the invitation
        (FINAL_NOTICE.replace(case_rating_prompt(), "回复“退订”可取消通知。"), "case"),  # not final
        (FINAL_NOTICE + "\n（回复“退订”不再接收通知）", None),
    ],
    ids=["broadcast-row", "case-not-final", "prompt-not-last"],
)
def test_other_messages_invite_nothing(text: str, kind: str | None) -> None:
    assert rating_invitation(text, kind, CASE_KEY) is None


def test_case_numbers_in_keys_and_button_data() -> None:
    assert case_from_key(CASE_KEY) == "SC2025000001"
    assert case_from_key("broadcast:7:1001") is None and case_from_key(None) is None
    data = [button.callback_data for row in case_rating_keyboard("SC2025000001").inline_keyboard for button in row]
    assert data == [f"rate:SC2025000001:{n}" for n in range(1, 6)]
    assert [parse_case_rating(d) for d in data][3] == ("SC2025000001", "4")
    too_long = "SC" + "9" * 60  # over Telegram's 64 bytes with the prefix: the digits instead
    assert [b.callback_data for row in case_rating_keyboard(too_long).inline_keyboard for b in row] == [
        "1", "2", "3", "4", "5"]
    assert parse_case_rating("rate:SC1:6") is None and parse_case_rating("2") is None
