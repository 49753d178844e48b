"""`guidebot telegram` and `guidebot serve`: clear errors for a bad token, and a real polling run.

The polling runs start the command in a subprocess (run_polling owns its event loop and signal
handlers) against the fake Bot API served from a thread of the test process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guidebot.cli import main
from tests.telegram.conftest import CITIZEN, PROXY_VARIABLES, environment
from tests.telegram.fake_bot_api import TOKEN, FakeBotAPI

SECRET_PART = TOKEN.split(":")[1]


class ThreadedFake:
    """The fake Bot API on its own event loop in a thread, for a bot running in another process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeBotAPI:
        self.thread.start()
        self.fake: FakeBotAPI = self.run(FakeBotAPI().start)
        return self.fake

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        async def call() -> Any:
            result = function(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=10)

    def __exit__(self, *_exc: object) -> None:
        self.run(self.fake.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def threaded_fake() -> Iterator[ThreadedFake]:
    threaded = ThreadedFake()
    with threaded:
        yield threaded


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _subprocess_env(env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES and not k.startswith("GUIDEBOT_")}
    full.update(env, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return full


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "GUIDEBOT_TELEGRAM_TOKEN is not set"),
        ("12345:short", "GUIDEBOT_TELEGRAM_TOKEN is malformed"),
        ("not a token at all", "GUIDEBOT_TELEGRAM_TOKEN is malformed"),
        (TOKEN + " extra", "GUIDEBOT_TELEGRAM_TOKEN is malformed"),
    ],
    ids=["missing", "too-short", "garbage", "trailing-text"],
)
def test_a_missing_or_malformed_token_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], token: str,
                                                       expected: str) -> None:
    _set_env(monkeypatch, environment(tmp_path, "http://127.0.0.1:9/bot", token=token))
    assert main(["telegram"]) == 2
    out = capsys.readouterr()
    assert expected in out.err
    assert "Traceback" not in out.err + out.out
    if token:
        assert token not in out.err


def test_the_token_can_come_from_a_dot_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".env").write_text('GUIDEBOT_TELEGRAM_TOKEN="12345:short"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["telegram"]) == 2
    assert "GUIDEBOT_TELEGRAM_TOKEN is malformed" in capsys.readouterr().err


def test_serve_with_a_malformed_token_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _set_env(monkeypatch, environment(tmp_path, "http://127.0.0.1:9/bot", token="12345:short"))
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "GUIDEBOT_TELEGRAM_TOKEN is malformed" in err
    assert "Traceback" not in err and "12345:short" not in err


def test_a_token_telegram_rejects_is_a_clear_error(tmp_path: Path, threaded_fake: ThreadedFake) -> None:
    revoked = "987654321:" + "R" * 35  # well-formed, but the fake only knows TOKEN: 401
    env = environment(tmp_path, threaded_fake.fake.base_url, token=revoked)
    done = subprocess.run([sys.executable, "-m", "guidebot.cli", "telegram"], env=_subprocess_env(env),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Telegram 拒绝了 GUIDEBOT_TELEGRAM_TOKEN" in done.stderr
    assert "R" * 35 not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_guidebot_telegram_polls_answers_and_stops_on_sigint(tmp_path: Path, threaded_fake: ThreadedFake) -> None:
    fake = threaded_fake.fake
    env = environment(tmp_path, fake.base_url)
    process = subprocess.Popen([sys.executable, "-m", "guidebot.cli", "telegram"], env=_subprocess_env(env),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not fake.calls_of("getUpdates"):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the bot never polled"
            time.sleep(0.05)
        threaded_fake.run(fake.user_says, "结婚登记收费吗", CITIZEN)
        while not fake.sent(CITIZEN):
            assert time.monotonic() < deadline, "no reply"
            time.sleep(0.05)
        assert "不收费" in fake.sent(CITIZEN)[0]["text"]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    methods = [call.method for call in fake.calls]
    assert methods[:3] == ["getMe", "getMe", "deleteWebhook"]  # token check; PTB's start; no webhook
    assert methods[-1] == "getUpdates" and fake.calls[-1].params.get("timeout") == 0  # offset confirmed
    assert SECRET_PART not in stderr
    assert "Traceback" not in stderr
