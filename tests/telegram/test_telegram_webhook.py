"""`guidebot serve` receiving Telegram's webhook over real HTTP (uvicorn on 127.0.0.1).

The PTB application behind it sends its replies to the fake Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from guidebot.app import Guidebot, build
from guidebot.dialog.replies import Inbound, Reply
from guidebot.handlers.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH, webhook_for
from guidebot.settings import Settings
from guidebot.store.db import upgrade
from guidebot.web import build_web_app
from tests.store_fixtures import postgres_schema_url  # noqa: F401 - a fixture
from tests.telegram.conftest import CITIZEN, choice_for, environment, make_settings, text_of
from tests.telegram.fake_bot_api import TOKEN, FakeBotAPI

pytestmark = pytest.mark.asyncio

SECRET = "s3cret-Token_for-tests"
PUBLIC_URL = "https://bot.example.gov.cn/telegram/webhook"


@dataclass
class Server:
    fake: FakeBotAPI
    guidebot: Guidebot
    client: httpx.AsyncClient
    url: str

    async def post(self, body: bytes | dict[str, Any], *, secret: str | None = SECRET,
                   content_type: str = "application/json", **kwargs: Any) -> httpx.Response:
        headers = {"content-type": content_type}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        content = json.dumps(body).encode() if isinstance(body, dict) else body
        return await self.client.post(self.url, content=content, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def serve(bot: Guidebot) -> AsyncIterator[int]:
    """`guidebot serve`'s app under a real uvicorn on a free port of 127.0.0.1."""
    config = uvicorn.Config(build_web_app(bot), host="127.0.0.1", port=0, lifespan="on", log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def webhook(monkeypatch: pytest.MonkeyPatch, fake_api: FakeBotAPI, guidebot: Guidebot) -> AsyncIterator[Server]:
    monkeypatch.setenv("GUIDEBOT_TELEGRAM_WEBHOOK_URL", PUBLIC_URL)
    monkeypatch.setenv("GUIDEBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
    async with serve(guidebot) as port, httpx.AsyncClient(trust_env=False, timeout=10) as client:
        yield Server(fake_api, guidebot, client, f"http://127.0.0.1:{port}{WEBHOOK_PATH}")


async def test_start_registers_the_webhook_with_its_secret(webhook: Server) -> None:
    assert webhook.fake.webhook == {"url": PUBLIC_URL, "secret_token": SECRET,
                                    "allowed_updates": ["message", "callback_query"]}
    assert [call.method for call in webhook.fake.calls] == ["getMe", "setWebhook"]


async def test_an_update_is_answered_before_the_200(webhook: Server) -> None:
    update = webhook.fake.make_message_update("办身份证要带什么材料", CITIZEN)
    response = await webhook.post(update)
    assert response.status_code == 200
    answer, rating = webhook.fake.sent(CITIZEN)  # already there: 200 means processed, not queued
    assert "居民户口簿" in answer["text"] and rating["text"] == "这个回答有帮助吗？请评价："


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]],
                         ids=["no-header", "empty", "wrong", "longer", "shorter"])
async def test_without_the_secret_403_and_nothing_is_processed(webhook: Server, secret: str | None) -> None:
    handled: list[Inbound] = []
    original = webhook.guidebot.engine.handle

    def spy(inbound: Inbound) -> list[Reply]:
        handled.append(inbound)
        return original(inbound)

    webhook.guidebot.engine.handle = spy  # type: ignore[method-assign]
    update = webhook.fake.make_message_update("办身份证要带什么", CITIZEN)
    response = await webhook.post(update, secret=secret)
    assert response.status_code == 403
    await asyncio.sleep(0.2)
    assert handled == [] and webhook.fake.sent() == []
    # and the same update with the secret is then processed normally (it was not remembered)
    assert (await webhook.post(update)).status_code == 200
    assert len(handled) == 1


async def test_a_2_mb_body_is_413(webhook: Server) -> None:
    update = webhook.fake.make_message_update("办身份证" * 350_000, CITIZEN)  # ~2 MB of JSON
    body = json.dumps(update).encode()
    assert len(body) > 2_000_000
    assert (await webhook.post(body)).status_code == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    response = await webhook.client.post(webhook.url, content=chunked(),
                                         headers={"content-type": "application/json", SECRET_HEADER: SECRET})
    assert response.status_code == 413
    assert webhook.fake.sent() == []


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b'{"update_id": 1}', 415),
        ("application/x-www-form-urlencoded", b"update_id=1", 415),
        ("application/json", b"{not json", 400),
        ("application/json", b"[1, 2]", 400),
        ("application/json", b'{"update_id": "7"}', 400),
        ("application/json; charset=utf-8", b'{"update_id": 7}', 200),
    ],
    ids=["text", "form", "bad-json", "not-object", "no-int-id", "json-with-charset"],
)
async def test_json_only(webhook: Server, content_type: str, body: bytes, status: int) -> None:
    assert (await webhook.post(body, content_type=content_type)).status_code == status


async def test_the_same_update_three_times_is_answered_once(webhook: Server) -> None:
    update = webhook.fake.make_message_update("结婚登记收费吗", CITIZEN)
    statuses = [(await webhook.post(update)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(webhook.fake.sent(CITIZEN)) == 2  # the answer and its rating buttons, once


async def test_the_same_update_three_times_at_once_is_answered_once(webhook: Server) -> None:
    original = webhook.guidebot.engine.handle

    def slow(inbound: Inbound) -> list[Reply]:
        import time

        time.sleep(0.3)  # the repeats arrive while the first is still being processed
        return original(inbound)

    webhook.guidebot.engine.handle = slow  # type: ignore[method-assign]
    update = webhook.fake.make_message_update("结婚登记收费吗", CITIZEN)
    responses = await asyncio.gather(*(webhook.post(update) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len(webhook.fake.sent(CITIZEN)) == 2  # the answer and its rating buttons, once


async def test_an_engine_failure_is_500_and_the_redelivery_is_answered(webhook: Server) -> None:
    original = webhook.guidebot.engine.handle
    failures = [RuntimeError("database is down")]

    def flaky(inbound: Inbound) -> list[Reply]:
        if failures:
            raise failures.pop()
        return original(inbound)

    webhook.guidebot.engine.handle = flaky  # type: ignore[method-assign]
    update = webhook.fake.make_message_update("结婚登记收费吗", CITIZEN)
    assert (await webhook.post(update)).status_code == 500
    assert webhook.fake.sent(CITIZEN) == []  # no apology: Telegram delivers it again
    assert (await webhook.post(update)).status_code == 200
    answer, _rating = webhook.fake.sent(CITIZEN)
    assert "不收费" in answer["text"]
    assert (await webhook.post(update)).status_code == 200
    assert len(webhook.fake.sent(CITIZEN)) == 2


async def test_a_clarification_by_button_over_the_webhook(webhook: Server) -> None:
    assert (await webhook.post(webhook.fake.make_message_update("食品经营许可", CITIZEN))).status_code == 200
    question, number = choice_for(webhook.fake.sent(CITIZEN), "变更")
    assert (await webhook.post(webhook.fake.make_press(question, number))).status_code == 200
    assert "【食品经营许可（变更）】" in text_of(webhook.fake.sent(CITIZEN)[2:])
    assert len(webhook.fake.calls_of("answerCallbackQuery")) == 1


async def test_one_chats_updates_are_processed_in_order(webhook: Server) -> None:
    assert (await webhook.post(webhook.fake.make_message_update("食品经营许可", CITIZEN))).status_code == 200
    _, number = choice_for(webhook.fake.sent(CITIZEN), "变更")
    first = webhook.fake.make_message_update("食品经营许可", CITIZEN)
    second = webhook.fake.make_message_update(number, CITIZEN)
    responses = await asyncio.gather(webhook.post(first), webhook.post(second))
    assert [r.status_code for r in responses] == [200, 200]
    assert "【食品经营许可（变更）】" in text_of(webhook.fake.sent(CITIZEN)[-2:])


async def test_the_token_never_reaches_the_logs(webhook: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    webhook.guidebot.engine.handle = lambda inbound: (_ for _ in ()).throw(  # type: ignore[method-assign]
        RuntimeError(f"boom with {TOKEN} inside"))
    assert (await webhook.post(webhook.fake.make_message_update("你好", CITIZEN))).status_code == 500
    assert "dialog engine failed" in caplog.text
    secret_part = TOKEN.split(":")[1]
    assert secret_part not in caplog.text
    for record in caplog.records:
        assert secret_part not in logging.Formatter().format(record)


async def test_without_a_token_serve_runs_without_telegram(tmp_path: Path, fake_api: FakeBotAPI,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bot = build(make_settings(tmp_path, fake_api.base_url, token=""))
    async with serve(bot) as port, httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        response = await client.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", json={"update_id": 1},
                                     headers={SECRET_HEADER: SECRET})
        assert response.status_code == 404
    assert "Telegram webhook inactive: GUIDEBOT_TELEGRAM_TOKEN is not set" in caplog.text
    assert fake_api.calls == []


async def test_while_the_bot_api_is_unreachable_the_webhook_answers_503(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_api: FakeBotAPI) -> None:
    monkeypatch.setenv("GUIDEBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr("guidebot.handlers.telegram.webhook.STARTUP_WAIT", 0.2)
    fake_api.fail_next("getMe", 502, "Bad Gateway", times=1)
    bot = build(make_settings(tmp_path, fake_api.base_url))
    async with serve(bot) as port:
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        async with httpx.AsyncClient(trust_env=False) as client:
            update = fake_api.make_message_update("你好", CITIZEN)
            early = await client.post(url, json=update, headers={SECRET_HEADER: SECRET})
            assert early.status_code == 503  # Telegram keeps it and retries
            hook = webhook_for(bot)
            assert hook is not None
            await asyncio.wait_for(hook.ready.wait(), 5)  # the start is retried after 1 s
            later = await client.post(url, json=update, headers={SECRET_HEADER: SECRET})
            assert later.status_code == 200
    assert len(fake_api.sent(CITIZEN)) == 1
    assert fake_api.webhook == {}  # no GUIDEBOT_TELEGRAM_WEBHOOK_URL: setWebhook is left to the operator



@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    upgrade(url)
    return url


async def test_two_serve_processes_on_one_database_answer_an_update_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_api: FakeBotAPI, shared_database: str) -> None:
    """Telegram redelivers an update (its first delivery timed out) to the other `guidebot serve`."""
    monkeypatch.setenv("GUIDEBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
    environ = {**environment(tmp_path, fake_api.base_url), "GUIDEBOT_DATABASE_URL": shared_database}
    settings = Settings.load(environ=environ, env_file=tmp_path / "absent.env")
    first, second = build(settings), build(settings)
    entered, release = threading.Event(), threading.Event()
    original = first.engine.handle

    def held(inbound: Inbound) -> list[Reply]:
        entered.set()  # the first process is in the middle of the update …
        release.wait(10)
        return original(inbound)

    first.engine.handle = held  # type: ignore[method-assign]
    try:
        async with serve(first) as port_a, serve(second) as port_b, \
                httpx.AsyncClient(trust_env=False, timeout=20) as client:
            a, b = (Server(fake_api, bot, client, f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
                    for bot, port in ((first, port_a), (second, port_b)))
            update = fake_api.make_message_update("结婚登记收费吗", CITIZEN)
            on_a = asyncio.create_task(a.post(update))
            assert await asyncio.to_thread(entered.wait, 10)
            assert (await b.post(update)).status_code == 503  # … so the second leaves it to Telegram's retry
            release.set()
            assert (await on_a).status_code == 200
            assert (await b.post(update)).status_code == 200  # the retry: done already, not answered again
            assert (await a.post(update)).status_code == 200
    finally:
        release.set()
        for bot in (first, second):
            bot.store.close()  # type: ignore[attr-defined]
    answers = [m for m in fake_api.sent(CITIZEN) if "不收费" in m["text"]]
    assert len(answers) == 1
