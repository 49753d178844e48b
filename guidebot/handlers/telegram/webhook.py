"""Telegram's webhook inside `guidebot serve` (one starlette app, one uvicorn server).

`POST /telegram/webhook` takes an update only when

- the `X-Telegram-Bot-Api-Secret-Token` header equals the secret (constant-time) — else **403**,
  and nothing is read or processed;
- the body is `application/json` — else **415** — of at most 1 MiB — else **413** (checked on
  `Content-Length` and again while reading, for chunked bodies) — holding an object with an
  integer `update_id` — else **400**.

The 2xx is sent only after the update has been processed: the dialog ran, its state was saved and
the replies went to Telegram. If the dialog engine failed (nothing said, no state saved) the answer
is **500** and Telegram delivers the update again. A repeated `update_id` — Telegram retrying after
a timeout, or the same update posted concurrently — is processed once:

- within one process, a repeat waits for the first and gets its status (in memory, last 10,000);
- across processes sharing the database (several `guidebot serve` behind one proxy), each update
  id is claimed in the store before it is processed (`shared.UpdateLedger`): a repeat of an update
  already processed gets 200 without being processed again; one still being processed elsewhere
  gets **503**, so Telegram tries again later and then finds it done (or, if that process failed
  or died, processes it).

Updates of one chat are processed one at a time, in arrival order, within a process; Telegram
itself sends a chat's next update only after the previous one was answered.

With no `GUIDEBOT_TELEGRAM_TOKEN` the route is not mounted and a log line says so; `guidebot serve`
then runs without Telegram (SMS gateways, staff pages). A malformed token stops the start with a
clear `SettingsError`. When `GUIDEBOT_TELEGRAM_WEBHOOK_URL` is set, setWebhook is called at start
with the secret; if the Bot API cannot be reached yet, the start is retried in the background and
the route answers 503 (Telegram retries) meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from guidebot.app import Guidebot
from guidebot.handlers.telegram.bot import ALLOWED_UPDATES, build_application, handlers_of
from guidebot.handlers.telegram.config import TelegramConfig, install_log_masking
from guidebot.handlers.telegram.shared import Claim, SharedState, UpdateLedger

__all__ = ["MAX_BODY_BYTES", "SECRET_HEADER", "WEBHOOK_PATH", "TelegramWebhook", "lifespan", "routes"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024  # a real update is a few kB; Telegram's own limit for text is 4,096 characters
REMEMBERED_UPDATES = 10_000
STARTUP_WAIT = 10.0  # seconds the server start waits for the Bot API before going on without it
MAX_RETRY_DELAY = 60.0


def _status(code: int, message: str) -> Response:
    return JSONResponse({"ok": code < 300, "error": message} if code >= 300 else {"ok": True}, status_code=code)


class _ChatLocks:
    """One asyncio lock per chat while it has updates in flight."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


class TelegramWebhook:
    """The webhook endpoint and the PTB application behind it."""

    def __init__(self, bot: Guidebot, config: TelegramConfig, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.bot = bot
        self.config = config
        self.max_body = max_body
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.ready = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None
        self._seen: OrderedDict[int, asyncio.Task[int]] = OrderedDict()
        self._chats = _ChatLocks()
        self.ledger = UpdateLedger(SharedState(bot.store))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, wait: float | None = None) -> None:
        """Build and start the application; wait up to `wait` seconds (default STARTUP_WAIT) for the
        Bot API, then let the server start anyway while the start is retried in the background."""
        self.application = build_application(self.bot, self.config, webhook=True)
        self._starter = asyncio.create_task(self._start_when_reachable(), name="telegram-webhook-start")
        await asyncio.wait({self._starter}, timeout=STARTUP_WAIT if wait is None else wait)

    async def _start_when_reachable(self) -> None:
        app = self.application
        assert app is not None
        delay = 1.0
        while True:
            try:
                await app.initialize()  # getMe: checks the token
                if self.config.webhook_url:
                    await app.bot.set_webhook(self.config.webhook_url, secret_token=self.config.webhook_secret,
                                              allowed_updates=ALLOWED_UPDATES)
                break
            except InvalidToken:
                log.error("Telegram rejected GUIDEBOT_TELEGRAM_TOKEN (revoked or mistyped?): the Telegram webhook "
                          "stays inactive. Check the token with @BotFather and restart.")
                return
            except (NetworkError, TelegramError) as error:
                log.warning("Telegram Bot API not reachable yet (%s); the webhook answers 503 and start is retried "
                            "in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
        await app.start()
        self.ready.set()
        if self.config.webhook_url:
            log.info("Telegram webhook active at %s (registered with setWebhook)", WEBHOOK_PATH)
        else:
            log.info("Telegram webhook active at %s; GUIDEBOT_TELEGRAM_WEBHOOK_URL is not set, so setWebhook was "
                     "not called: register the public URL yourself with the same secret token", WEBHOOK_PATH)

    async def stop(self) -> None:
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        pending = [task for task in self._seen.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=30)
        app = self.application
        if app is not None:
            if app.running:
                await app.stop()
            await app.shutdown()
        self.ready.clear()

    # -- the endpoint ----------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        supplied = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(supplied.encode(), self.config.webhook_secret.encode()):
            return _status(403, "forbidden")
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return _status(415, "application/json only")
        declared = request.headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > self.max_body):
            return _status(413 if declared.isdigit() else 400, "body too large" if declared.isdigit() else "bad length")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_body:
                    return _status(413, "body too large")
        except ClientDisconnect:
            return _status(400, "client disconnected")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _status(400, "invalid JSON")
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            return _status(400, "not a Telegram update")
        if not self.ready.is_set():
            return _status(503, "telegram channel starting")
        status = await self._take(data)
        return _status(status, "update not processed" if status >= 300 else "")

    async def _take(self, data: dict[str, Any]) -> int:
        update_id: int = data["update_id"]
        task = self._seen.get(update_id)
        if task is None:
            task = asyncio.create_task(self._process(update_id, data), name=f"telegram-update-{update_id}")
            self._seen[update_id] = task
            self._forget_old()
        # Shielded: a client that hangs up does not cancel the processing half-way.
        return await asyncio.shield(task)

    def _forget_old(self) -> None:
        while len(self._seen) > REMEMBERED_UPDATES:
            oldest = next(iter(self._seen.values()))
            if not oldest.done():
                break
            self._seen.popitem(last=False)

    async def _process(self, update_id: int, data: dict[str, Any]) -> int:
        app = self.application
        assert app is not None
        try:
            update = Update.de_json(data, app.bot)
        except Exception:
            log.warning("telegram update %s could not be parsed", update_id)
            return 400
        chat, user = update.effective_chat, update.effective_user
        key = str(chat.id) if chat is not None else f"user:{user.id}" if user is not None else "-"
        async with self._chats.hold(key):
            try:
                claim = await asyncio.to_thread(self.ledger.claim, key, update_id)
            except Exception:
                log.exception("telegram update %s: could not be claimed in the store", update_id)
                self._seen.pop(update_id, None)
                return 500
            if claim is Claim.DONE:
                log.info("telegram update %s was already processed (redelivery)", update_id)
                return 200
            if claim is Claim.BUSY:
                log.info("telegram update %s is being processed by another process; Telegram will retry", update_id)
                self._seen.pop(update_id, None)  # the retry looks in the store again
                return 503
            status = await self._run(app, update, update_id)
            try:
                await asyncio.to_thread(self.ledger.finish, key, update_id, processed=status == 200)
            except Exception:  # the replies went out; at worst a redelivery is answered again
                log.exception("telegram update %s: could not be marked in the store", update_id)
        if status != 200:
            self._seen.pop(update_id, None)  # Telegram's redelivery is processed again
        return status

    async def _run(self, app: Application[Any, Any, Any, Any, Any, Any], update: Update, update_id: int) -> int:
        try:
            await app.process_update(update)
        except Exception:
            log.exception("telegram update %s: processing failed", update_id)
            return 500
        handlers = handlers_of(app)
        if update_id in handlers.failed_updates:
            handlers.failed_updates.discard(update_id)
            return 500
        return 200


# -- the web.py contract ----------------------------------------------------------------------

_WEBHOOKS: dict[int, TelegramWebhook] = {}


def routes(bot: Guidebot) -> list[BaseRoute]:
    """`POST /telegram/webhook`, or nothing when no token is configured."""
    if not bot.settings.telegram_token.strip():
        return []
    config = TelegramConfig.load(bot.settings)  # a malformed token is a SettingsError here, before serving
    webhook = TelegramWebhook(bot, config)
    _WEBHOOKS[id(bot)] = webhook
    return [Route(WEBHOOK_PATH, webhook.endpoint, methods=["POST"])]


def webhook_for(bot: Guidebot) -> TelegramWebhook | None:
    """The webhook `routes(bot)` created (tests use it to wait until it is ready)."""
    return _WEBHOOKS.get(id(bot))


@contextlib.asynccontextmanager
async def lifespan(bot: Guidebot) -> AsyncIterator[None]:
    """Start the PTB application (and setWebhook) with the server; stop it after the last update."""
    install_log_masking()
    webhook = _WEBHOOKS.get(id(bot))
    if webhook is None:
        log.info("Telegram webhook inactive: GUIDEBOT_TELEGRAM_TOKEN is not set (guidebot serve runs without "
                 "Telegram)")
        yield
        return
    await webhook.start()
    try:
        yield
    finally:
        await webhook.stop()
        _WEBHOOKS.pop(id(bot), None)
