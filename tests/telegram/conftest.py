"""Telegram test harness: the fake Bot API on 127.0.0.1, a whole guidebot on SQLite, and the real
python-telegram-bot client pointed at the fake (polling here, webhook in test_webhook.py).

No request leaves 127.0.0.1: proxies are removed from the environment and NO_PROXY is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from guidebot.app import Guidebot, build
from guidebot.handlers.telegram.bot import ALLOWED_UPDATES, build_application
from guidebot.settings import Settings
from tests.telegram.fake_bot_api import TOKEN, FakeBotAPI

DATA = Path(__file__).parent.parent / "data"
STAFF_ID = 900
CITIZEN = 1001
OTHER_CITIZEN = 1002
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("GUIDEBOT_TELEGRAM_WEBHOOK_URL", "GUIDEBOT_TELEGRAM_WEBHOOK_SECRET", "GUIDEBOT_TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory


def environment(tmp_path: Path, base_url: str, *, token: str = TOKEN, catalog: Path | None = None,
                staff: str = str(STAFF_ID)) -> dict[str, str]:
    return {
        "GUIDEBOT_DATA_DIR": str(tmp_path / "data"),
        "GUIDEBOT_CATALOG": str(catalog or DATA / "small.yaml"),
        "GUIDEBOT_TELEGRAM_TOKEN": token,
        "GUIDEBOT_TELEGRAM_BASE_URL": base_url,
        "GUIDEBOT_STAFF_TELEGRAM_IDS": staff,
    }


def make_settings(tmp_path: Path, base_url: str, **kwargs: Any) -> Settings:
    return Settings.load(environ=environment(tmp_path, base_url, **kwargs), env_file=tmp_path / "absent.env")


@pytest_asyncio.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


@pytest.fixture
def catalog_path() -> Path:
    """The catalog the whole-stack guidebot loads; tests override it for special catalogs."""
    return DATA / "small.yaml"


@pytest.fixture
def guidebot(tmp_path: Path, fake_api: FakeBotAPI, catalog_path: Path) -> Iterator[Guidebot]:
    """The whole guidebot (SQLite store, case dialogs if present) configured for the fake API."""
    bot = build(make_settings(tmp_path, fake_api.base_url, catalog=catalog_path))
    yield bot
    close = getattr(bot.store, "close", None)
    if close is not None:
        close()


@dataclass
class Harness:
    """A running bot and the fake API; `say`/`press` play the citizen and return the new messages."""

    fake: FakeBotAPI
    app: Any
    guidebot: Guidebot
    seen: dict[int, int] = field(default_factory=dict)

    async def settle(self, quiet: float = 0.25, timeout: float = 5.0) -> None:
        """Wait until the bot has made no API call (besides polling) for `quiet` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = -1
        quiet_since = loop.time()
        while loop.time() < deadline:
            count = len([c for c in self.fake.calls if c.method != "getUpdates"])
            if count != last:
                last, quiet_since = count, loop.time()
            elif loop.time() - quiet_since >= quiet:
                return
            await asyncio.sleep(0.02)

    async def _new_messages(self, chat_id: int, before: int) -> list[dict[str, Any]]:
        await self.fake.wait_for(lambda: len(self.fake.sent(chat_id)) > before
                                 or any(c.status >= 400 for c in self.fake.calls[-3:]))
        await self.settle()
        return self.fake.sent(chat_id)[before:]

    async def say(self, text: str, chat_id: int = CITIZEN, user_id: int | None = None) -> list[dict[str, Any]]:
        before = len(self.fake.sent(chat_id))
        self.fake.user_says(text, chat_id, user_id)
        return await self._new_messages(chat_id, before)

    async def press(self, message: dict[str, Any], data: str, user_id: int | None = None) -> list[dict[str, Any]]:
        chat_id = message["chat"]["id"]
        before = len(self.fake.sent(chat_id))
        answered = len(self.fake.calls_of("answerCallbackQuery"))
        self.fake.user_presses(message, data, user_id)
        await self.fake.wait_for(lambda: len(self.fake.calls_of("answerCallbackQuery")) > answered)
        return await self._new_messages(chat_id, before)


@contextlib.asynccontextmanager
async def running(fake: FakeBotAPI, bot: Guidebot) -> AsyncIterator[Harness]:
    """guidebot's PTB application long-polling the fake API (the `guidebot telegram` path)."""
    app = build_application(bot)
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(timeout=1, poll_interval=0, allowed_updates=ALLOWED_UPDATES)
        await app.start()
        yield Harness(fake, app, bot)
        await app.updater.stop()
        await app.stop()


@pytest_asyncio.fixture
async def polling(fake_api: FakeBotAPI, guidebot: Guidebot) -> AsyncIterator[Harness]:
    async with running(fake_api, guidebot) as harness:
        yield harness


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback_data) of every inline button under a message."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(button["text"], button.get("callback_data", "")) for row in rows for button in row]


def choice_for(messages: list[dict[str, Any]], label: str) -> tuple[dict[str, Any], str]:
    """The message offering numbered choices, and the number of the one labelled `label`."""
    for message in messages:
        for text, data in buttons(message):
            if data.isdigit() and text == f"{data}. {label}":
                return message, data
    raise AssertionError(f"no numbered choice {label!r} in {[m['text'] for m in messages]}")


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(message["text"] for message in messages)


def most_in_any_second(times: list[float]) -> int:
    """The largest number of events inside any closed one-second interval."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
