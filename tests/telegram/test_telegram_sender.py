"""The outbox's Telegram sender against the fake Bot API: outcomes, 429 pauses, 403 stops, rates.

Arrival times are measured where Telegram would measure them: at the (fake) API.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from guidebot.handlers.telegram.ratings import TELEGRAM_PROMPT
from guidebot.handlers.telegram.sender import TelegramSender
from guidebot.outbox.sender import Sender, SendOutcome, SendResult
from tests.telegram.conftest import most_in_any_second
from tests.telegram.fake_bot_api import TOKEN, FakeBotAPI, utf16_len
from tests.telegram.test_telegram_ratings import FINAL_NOTICE

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def sender(fake_api: FakeBotAPI) -> AsyncIterator[TelegramSender]:
    async with TelegramSender(TOKEN, fake_api.base_url, timeout=1.0) as telegram:
        yield telegram


def arrivals(fake: FakeBotAPI, chat_id: int | None = None) -> list[float]:
    return [call.at for call in fake.calls_of("sendMessage")
            if chat_id is None or int(call.params["chat_id"]) == chat_id]


async def test_it_is_an_outbox_sender() -> None:
    telegram = TelegramSender(TOKEN, "http://127.0.0.1:9/bot")
    assert isinstance(telegram, TelegramSender)
    checked: Sender = telegram  # the Protocol the dispatcher calls
    assert (checked.channel, checked.max_per_second, checked.per_recipient_interval) == ("telegram", 30.0, 1.0)


async def test_a_message_is_sent_as_plain_text(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    result = await sender.send("1001", "办件 SC2025000001 已办结 <请> & 领取")
    [message] = fake_api.sent(1001)
    assert result == SendResult(SendOutcome.SENT, provider_id=str(message["message_id"]))
    assert message["text"] == "办件 SC2025000001 已办结 <请> & 领取"  # no parse mode: nothing to escape


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "outcome"),
    [
        (429, "Too Many Requests: retry after 3", 3, SendOutcome.THROTTLED),
        (403, "Forbidden: bot was blocked by the user", None, SendOutcome.STOPPED),
        (403, "Forbidden: user is deactivated", None, SendOutcome.STOPPED),
        (400, "Bad Request: chat not found", None, SendOutcome.STOPPED),
        (400, "Bad Request: message text is empty", None, SendOutcome.FAILED),
        (500, "Internal Server Error", None, SendOutcome.RETRY),
        (502, "Bad Gateway", None, SendOutcome.RETRY),
        (503, "Service Unavailable", None, SendOutcome.RETRY),
    ],
    ids=["429", "403-blocked", "403-deactivated", "400-chat-not-found", "400-other", "500", "502", "503"],
)
async def test_telegram_errors_map_to_outbox_outcomes(fake_api: FakeBotAPI, sender: TelegramSender, status: int,
                                                      description: str, retry_after: int | None,
                                                      outcome: SendOutcome) -> None:
    fake_api.fail_next("sendMessage", status, description, retry_after=retry_after)
    result = await sender.send("1001", "通知")
    assert result.outcome is outcome
    assert result.retry_after == (float(retry_after) if retry_after else None)
    assert fake_api.sent() == []
    assert TOKEN.split(":")[1] not in result.error


async def test_a_timeout_is_retried_later(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    fake_api.fail_next("sendMessage", 500, "late", delay=1.5)  # answers after the 1 s read timeout
    result = await sender.send("1001", "通知")
    assert result.outcome is SendOutcome.RETRY


async def test_an_unreachable_api_and_a_rejected_token_are_retried(fake_api: FakeBotAPI) -> None:
    async with TelegramSender(TOKEN, "http://127.0.0.1:9/bot", timeout=1.0) as nowhere:
        assert (await nowhere.send("1001", "通知")).outcome is SendOutcome.RETRY
    async with TelegramSender("111:" + "X" * 35, fake_api.base_url) as revoked:
        result = await revoked.send("1001", "通知")
    assert result.outcome is SendOutcome.RETRY and "X" * 35 not in result.error


async def test_a_recipient_that_is_not_a_chat_id_fails(sender: TelegramSender) -> None:
    assert (await sender.send("+8613812345678x", "通知")).outcome is SendOutcome.FAILED


async def test_a_429_pauses_all_sending_for_retry_after(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    fake_api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    throttled = await sender.send("1001", "通知一")
    assert throttled == SendResult(SendOutcome.THROTTLED, retry_after=1.0, error=throttled.error)
    refused_at = fake_api.calls_of("sendMessage")[0].at
    results = await asyncio.gather(*(sender.send(str(chat), "通知二") for chat in (1002, 1003, 1004)))
    assert {r.outcome for r in results} == {SendOutcome.SENT}
    assert min(arrivals(fake_api)[1:]) - refused_at >= 1.0  # nobody was sent anything meanwhile


async def test_one_chat_gets_at_most_one_message_a_second(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    results = await asyncio.gather(*(sender.send("1001", f"第{n}条") for n in range(3)),
                                   sender.send("1002", "别人的"))
    assert {r.outcome for r in results} == {SendOutcome.SENT}
    times = arrivals(fake_api, 1001)
    assert len(times) == 3
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))
    assert arrivals(fake_api, 1002)[0] - times[0] < 0.5  # another chat does not wait for it


async def test_a_long_text_goes_in_parts_split_on_lines(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    lines = [f"第{n}行：请携带身份证原件到窗口领取" for n in range(1, 400)]
    result = await sender.send("1001", "\n".join(lines))
    parts = fake_api.sent(1001)
    assert result.outcome is SendOutcome.SENT and result.provider_id == str(parts[0]["message_id"])
    assert len(parts) >= 2 and all(utf16_len(p["text"]) <= 4096 for p in parts)
    assert "\n".join(p["text"] for p in parts).split("\n") == lines
    times = arrivals(fake_api, 1001)
    assert times[1] - times[0] >= 1.0


async def test_a_blocked_subscriber_is_stopped_and_skipped_next_time(fake_api: FakeBotAPI,
                                                                     sender: TelegramSender) -> None:
    """Until the outbox's broadcast is wired in (see test_telegram_outbox.py), the skip is what the
    dispatcher does with a STOPPED outcome: the recipient is not sent to again."""
    subscribers = {str(chat) for chat in range(2001, 2011)}
    fake_api.block(2005)
    stopped: set[str] = set()

    async def broadcast(text: str) -> None:
        audience = sorted(subscribers - stopped)
        for recipient, result in zip(audience, await asyncio.gather(*(sender.send(r, text) for r in audience)),
                                     strict=True):
            if result.outcome is SendOutcome.STOPPED:
                stopped.add(recipient)

    await broadcast("第一次通知")
    assert stopped == {"2005"}
    await broadcast("第二次通知")
    second = [c for c in fake_api.calls_of("sendMessage") if c.params["text"] == "第二次通知"]
    assert sorted(int(c.params["chat_id"]) for c in second) == [c for c in range(2001, 2011) if c != 2005]
    assert len(fake_api.sent()) == 18


async def test_a_burst_of_sends_never_exceeds_30_messages_in_any_second(
        fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    """The sender keeps the limit on its own, whatever pace it is called at (the 1,000-subscriber
    broadcast through the outbox's dispatcher is in test_telegram_outbox.py)."""
    recipients = [str(chat) for chat in range(100_000, 100_200)]
    results = await asyncio.gather(*(sender.send(r, "明天（周六）中心正常办公。") for r in recipients))
    assert [r.outcome for r in results] == [SendOutcome.SENT] * 200
    times = arrivals(fake_api)
    assert len(times) == 200
    assert most_in_any_second(times) <= 30


async def test_an_invitation_is_sent_with_the_buttons(fake_api: FakeBotAPI, sender: TelegramSender) -> None:
    result = await sender.send("1001", FINAL_NOTICE)
    [message] = fake_api.sent(1001)
    assert result.outcome is SendOutcome.SENT
    assert message["text"].endswith("本办件的进度通知到此结束。\n" + TELEGRAM_PROMPT)
    rows = message["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in rows] == ["1. 非常满意", "2. 满意", "3. 基本满意", "4. 不满意", "5. 非常不满意"]
