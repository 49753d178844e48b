"""A fake Telegram Bot API on 127.0.0.1 that the real python-telegram-bot client talks to.

It speaks the real HTTP protocol (channels.md §1.5): `POST /bot<token>/<method>`, form-urlencoded
or JSON parameters (non-string values JSON-encoded), `{"ok": true, "result": …}` answers and errors
with their real HTTP status (`429` with `parameters.retry_after`, `403`, `400`, `5xx`).

Methods: getMe, getUpdates (offsets, long polling), sendMessage, editMessageText,
editMessageReplyMarkup, answerCallbackQuery, setWebhook, deleteWebhook, getWebhookInfo.
It checks what Telegram checks and the bot could get wrong: the token, HTML that parses (allowed
tags, balanced, entities), text of at most 4,096 characters after parsing, callback_data of
1–64 bytes, getUpdates refused while a webhook is set.

The citizen's side: :meth:`FakeBotAPI.user_says`, :meth:`FakeBotAPI.user_presses` queue updates
(and return them, for posting to a webhook); scripted failures with :meth:`FakeBotAPI.fail_next`
and :meth:`FakeBotAPI.block`; every call is recorded with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAHfakeTokenForTestsOnly_0123456789ab"
BOT_ID = 123456789
BOT_USERNAME = "guidebot_test_bot"
MAX_TEXT = 4096
MAX_LONG_POLL = 2.0  # seconds a getUpdates waits at most (PTB asks for more; tests want fast stops)

_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
                 "span", "blockquote", "tg-emoji"}
_ENTITY_TYPES = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
                 "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "a": "text_link",
                 "code": "code", "pre": "pre", "tg-spoiler": "spoiler", "span": "spoiler",
                 "blockquote": "blockquote"}


# Tags and entities; whatever is left must hold no raw <, > or & (Telegram's rule for HTML mode).
_STRAY = re.compile(r"</?[a-zA-Z][a-zA-Z-]*(\s+[a-z-]+=\"[^\"<>]*\")*\s*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


class ParseError(ValueError):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: the allowed tags only, properly nested; text + entities out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.entities: list[dict[str, Any]] = []
        self.stack: list[tuple[str, int, dict[str, str]]] = []

    def _offset(self) -> int:
        return utf16_len("".join(self.text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            raise ParseError(f"Can't parse entities: unsupported start tag \"{tag}\"")
        attributes = {name: value or "" for name, value in attrs}
        if tag == "a" and not attributes.get("href"):
            raise ParseError("Can't parse entities: <a> without href")
        self.stack.append((tag, self._offset(), attributes))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise ParseError(f"Can't parse entities: can't find end tag corresponding to start tag \"{tag}\"")
        name, start, attributes = self.stack.pop()
        length = self._offset() - start
        if length:
            entity: dict[str, Any] = {"type": _ENTITY_TYPES.get(name, "bold"), "offset": start, "length": length}
            if name == "a":
                entity["url"] = attributes["href"]
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of a message in HTML parse mode, or ParseError like Telegram's 400."""
    stray = _STRAY.sub("", markup)
    for symbol in "<>&":
        if symbol in stray:
            raise ParseError(f"Can't parse entities: unescaped '{symbol}' outside a tag or entity")
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.stack:
        raise ParseError(f"Can't parse entities: unclosed start tag \"{parser.stack[-1][0]}\"")
    if parser.rawdata:  # HTMLParser keeps an incomplete tag or entity here
        raise ParseError("Can't parse entities: incomplete tag")
    return "".join(parser.text), sorted(parser.entities, key=lambda e: e["offset"])


def strip_html(markup: str) -> str:
    return parse_html(markup)[0]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int = 200


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    delay: float


@dataclass
class FakeBotAPI:
    token: str = TOKEN
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._stopping = False
        self._runner: web.AppRunner | None = None

    # -- server ----------------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._stopping = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    # -- the citizen's side ----------------------------------------------------------------

    @staticmethod
    def _user(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"用户{user_id}", "language_code": "zh-hans"}

    def _queue(self, update: dict[str, Any]) -> dict[str, Any]:
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def make_message_update(self, text: str, chat_id: int = 1001, user_id: int | None = None,
                            chat_type: str = "private") -> dict[str, Any]:
        """A message update (not queued): a `bot_command` entity when it starts with '/'."""
        user_id = chat_id if user_id is None else user_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "first_name": f"用户{user_id}"},
            "from": self._user(user_id),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        return {"update_id": next(self._update_ids), "message": message}

    def user_says(self, text: str, chat_id: int = 1001, user_id: int | None = None,
                  chat_type: str = "private") -> dict[str, Any]:
        """Queue a message from a user for getUpdates; returns the update."""
        return self._queue(self.make_message_update(text, chat_id, user_id, chat_type))

    def user_sends_photo(self, chat_id: int = 1001) -> dict[str, Any]:
        update = self.make_message_update("", chat_id)
        del update["message"]["text"]
        update["message"]["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]
        return self._queue(update)

    def make_press(self, message: dict[str, Any], data: str, user_id: int | None = None) -> dict[str, Any]:
        """A callback_query update for pressing the button with `data` under a sent message."""
        buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        if not any(b.get("callback_data") == data for b in buttons):
            raise AssertionError(f"no button with data {data!r} under message {message['message_id']}")
        chat_id = message["chat"]["id"]
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._query_ids)),
                "from": self._user(chat_id if user_id is None else user_id),
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            },
        }

    def user_presses(self, message: dict[str, Any], data: str, user_id: int | None = None) -> dict[str, Any]:
        """Queue a button press under `message` (one of :meth:`sent`); returns the update."""
        return self._queue(self.make_press(message, data, user_id))

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue any update for getUpdates as it is (e.g. one a modified client could produce)."""
        return self._queue(update)

    # -- scripting -------------------------------------------------------------------------

    def fail_next(self, method: str, status: int, description: str, *, retry_after: int | None = None,
                  chat_id: int | None = None, times: int = 1, delay: float = 0.0) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) fail with this HTTP error.

        `delay` answers only after that many seconds (for client timeouts)."""
        for _ in range(times):
            self._failures.append(_Failure(method, status, description, retry_after, chat_id, delay))

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: every sendMessage to them is 403 from now on."""
        self.blocked.add(chat_id)

    # -- what the bot did ------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent successfully (current state, after edits), oldest first."""
        return [m for (chat, _), m in sorted(self.messages.items(), key=lambda kv: kv[1]["message_id"])
                if chat_id is None or chat == chat_id]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [m["text"] for m in self.sent(chat_id)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.01)

    async def wait_sent(self, count: int, chat_id: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` messages were sent (to `chat_id`); returns them all."""
        await self.wait_for(lambda: len(self.sent(chat_id)) >= count, timeout)
        return self.sent(chat_id)

    # -- the API ---------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            raw = await request.json()
            return dict(raw or {})
        params: dict[str, Any] = {}
        for key, value in (await request.post()).items():
            if not isinstance(value, str):
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params

    def _error(self, status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            call.status = 401
            return self._error(401, "Unauthorized")
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, _int(params.get("chat_id"))):
                self._failures.remove(failure)
                if failure.delay:
                    await asyncio.sleep(failure.delay)
                call.status = failure.status
                return self._error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, "_api_" + method, None)
        if handler is None:
            call.status = 404
            return self._error(404, "Not Found: method not found")
        try:
            return await handler(params)
        except ParseError as error:
            call.status = 400
            return self._error(400, f"Bad Request: {error}")
        except _ApiError as error:
            call.status = error.status
            return self._error(error.status, error.description)

    async def _api_getMe(self, _params: dict[str, Any]) -> web.Response:
        return self._ok({"id": BOT_ID, "is_bot": True, "first_name": "办事指南", "username": BOT_USERNAME,
                         "can_join_groups": False, "can_read_all_group_messages": False,
                         "supports_inline_queries": False})

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first")
        offset = _int(params.get("offset")) or 0
        timeout = min(float(params.get("timeout") or 0), MAX_LONG_POLL)
        limit = _int(params.get("limit")) or 100
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0 and not self._stopping:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
        return self._ok(self._updates[:limit])

    def _check_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise _ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        return markup

    def _message_text(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        raw = params.get("text")
        if not isinstance(raw, str):
            raw = "" if raw is None else json.dumps(raw)
        if params.get("parse_mode") == "HTML":
            text, entities = parse_html(raw)
        elif params.get("parse_mode"):
            raise _ApiError(400, "Bad Request: unsupported parse_mode in the fake")
        else:
            text, entities = raw, []
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        return text, entities

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        chat_id = _int(params.get("chat_id"))
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        text, entities = self._message_text(params)
        markup = self._check_markup(params)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "办事指南", "username": BOT_USERNAME},
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if markup:
            message["reply_markup"] = markup
        message["html"] = params.get("text")  # what the bot sent, for assertions (not Telegram's)
        self.messages[(chat_id, message["message_id"])] = message
        return self._ok({k: v for k, v in message.items() if k != "html"})

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (_int(params.get("chat_id")) or 0, _int(params.get("message_id")) or 0)
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    async def _api_editMessageText(self, params: dict[str, Any]) -> web.Response:
        message = self._find(params)
        text, entities = self._message_text(params)
        markup = self._check_markup(params)
        if text == message["text"] and markup == message.get("reply_markup"):
            raise _ApiError(400, "Bad Request: message is not modified")
        message.update(text=text, entities=entities, html=params.get("text"), edited=True)
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return self._ok({k: v for k, v in message.items() if k not in ("html", "edited")})

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> web.Response:
        message = self._find(params)
        markup = self._check_markup(params)
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return self._ok({k: v for k, v in message.items() if k not in ("html", "edited")})

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query id is empty")
        return self._ok(True)

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        secret = params.get("secret_token")
        if secret is not None and not (1 <= len(str(secret)) <= 256):
            raise _ApiError(400, "Bad Request: secret token is invalid")
        self.webhook = {"url": params.get("url", ""), "secret_token": secret,
                        "allowed_updates": params.get("allowed_updates")}
        return self._ok(True)

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return self._ok(True)

    async def _api_getWebhookInfo(self, _params: dict[str, Any]) -> web.Response:
        return self._ok({"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                         "pending_update_count": len(self._updates)})


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def html_of(message: dict[str, Any]) -> str:
    """The HTML the bot sent for a message (unescaped text is in message["text"])."""
    return str(message.get("html", html.escape(message["text"])))
