"""guidebot in Telegram: one python-telegram-bot application for polling, webhook and tests.

The adapter is thin. Citizens' text, `/start`, `/help` and button presses become an `Inbound` for
`DialogEngine.handle`, the only place that decides what to say; the replies are rendered by
`render.py` (HTML, inline buttons, 4,096-character parts). The staff commands (`/broadcast`,
`/stats`, `/unanswered`, `/case`) answer only the Telegram user ids in
`GUIDEBOT_STAFF_TELEGRAM_IDS` and politely refuse everyone else.

:func:`add_handlers` is the one place every handler is registered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from typing import Any, Protocol
from urllib.parse import urlsplit

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from guidebot.app import Guidebot
from guidebot.dialog.replies import Inbound, Reply
from guidebot.handlers.telegram.config import TelegramConfig
from guidebot.handlers.telegram.ratings import CASE_RATING_PATTERN, arm_button_rating, parse_case_rating
from guidebot.handlers.telegram.render import Rendered, render_replies, split_lines
from guidebot.handlers.telegram.shared import DRAFT_TTL, Drafts, SharedState
from guidebot.privacy import mask_name

__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "EngineFailed",
    "StaffServices",
    "TelegramHandlers",
    "add_handlers",
    "build_application",
    "check_token",
    "handlers_of",
    "run_polling",
    "staff_services",
]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
HANDLERS_KEY = "guidebot.telegram.handlers"
DIALOG_COMMANDS = ("unsubscribe", "stop")  # passed to the dialog as typed: it answers 退订 and its synonyms

NOT_FOR_YOU = ("抱歉，这个命令仅供政务服务中心工作人员使用。\n"
               "您可以直接发送想办的事，例如“办身份证要带什么”，或发送 /help 查看我能做什么。")
UNKNOWN_COMMAND = "抱歉，我不认识这个命令。请直接用文字说说您要办的事，或发送 /help 查看我能做什么。"
APOLOGY = "抱歉，系统暂时出了点问题，请稍后再发一次。"
NOT_AVAILABLE = "{what}功能尚未开通（需要消息发件箱模块），请稍后再试或联系系统管理员。"
STAFF_HELP = (
    "工作人员命令：\n"
    "/broadcast 内容 — 群发通知（先预览，确认后发送）\n"
    "/stats [天数] — 使用统计（默认近 7 天）\n"
    "/unanswered [条数] — 最常见的未能回答的问题\n"
    "/case 办件编号 — 查看办件及办理记录"
)


# ----------------------------------------------------------------------------- staff services


class BroadcastOutbox(Protocol):
    """What /broadcast needs from the outbox."""

    def preview(self, text: str) -> tuple[str, list[str]]:
        """The text as it will be sent and lines describing the recipients; ValueError if unusable."""
        ...

    def send(self, text: str, by: str) -> int:
        """Queue the broadcast for every recipient; returns how many."""
        ...


@dataclass(frozen=True)
class StaffServices:
    """Staff functions that live outside this adapter; None where not available (yet)."""

    broadcast: BroadcastOutbox | None = None
    stats: Callable[[int], list[str]] | None = None  # the last N days, as text lines


class _OutboxBroadcast:
    """/broadcast through `guidebot.outbox.broadcast` (dry run for the preview, then create)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.sms_signature = os.environ.get("GUIDEBOT_SMS_SIGNATURE", "").strip()

    def preview(self, text: str) -> tuple[str, list[str]]:
        from guidebot.outbox.broadcast import dry_run

        plan = dry_run(self.store, text, sms_signature=self.sms_signature)
        return plan.text, plan.describe()

    def send(self, text: str, by: str) -> int:
        from guidebot.outbox.broadcast import create_broadcast

        return create_broadcast(self.store, text, by=by, sms_signature=self.sms_signature).total


def _outbox_stats(bot: Guidebot) -> Callable[[int], list[str]]:
    """/stats through `guidebot.outbox.stats` plus the outbox's counts by status."""
    catalog = bot.catalog

    item_name, promised_days = catalog.item_name, catalog.promised_days

    def stats(days: int) -> list[str]:
        from guidebot.outbox.queue import counts_by_status
        from guidebot.outbox.stats import collect_stats, render_stats
        from guidebot.store.db import now

        since = dt.datetime.combine(now().date() - dt.timedelta(days=days - 1), dt.time())
        lines = render_stats(collect_stats(bot.store, since, promised_days, top=5), item_name)  # type: ignore[arg-type]
        counts = counts_by_status(bot.store)  # type: ignore[arg-type]
        lines.append("发件箱：" + ("，".join(f"{status} {n}" for status, n in sorted(counts.items())) or "空"))
        return lines

    return stats


def staff_services(bot: Guidebot) -> StaffServices:
    """The outbox's broadcast and statistics for this guidebot, as far as the outbox offers them."""
    from guidebot.store.db import Store

    if not isinstance(bot.store, Store):
        return StaffServices()
    has_broadcast = find_spec("guidebot.outbox.broadcast") is not None
    has_stats = find_spec("guidebot.outbox.stats") is not None
    return StaffServices(broadcast=_OutboxBroadcast(bot.store) if has_broadcast else None,
                         stats=_outbox_stats(bot) if has_stats else None)


# ----------------------------------------------------------------------------- handlers


class EngineFailed(Exception):
    """The dialog engine raised: nothing was said and the conversation state was not saved, so
    the update can safely be processed again (the webhook answers 500 and Telegram redelivers)."""


@dataclass
class TelegramHandlers:
    """The handler callbacks, sharing one guidebot, its settings and the staff services."""

    guidebot: Guidebot
    config: TelegramConfig
    services: StaffServices = field(default_factory=StaffServices)
    redeliverable: bool = False  # webhook: a failed update is answered 500 and redelivered
    failed_updates: set[int] = field(default_factory=set)
    # /broadcast previews live in the store, so 确认发送 works on any process of this bot (and once).
    drafts: Drafts = field(init=False)

    def __post_init__(self) -> None:
        self.drafts = Drafts(SharedState(self.guidebot.store))

    # -- helpers ---------------------------------------------------------------------------

    def is_staff(self, user: User | None) -> bool:
        return user is not None and user.id in self.config.staff_ids

    async def send(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, messages: list[Rendered]) -> None:
        for message in messages:
            await context.bot.send_message(
                chat_id,
                message.text,
                parse_mode=ParseMode.HTML,
                reply_markup=message.keyboard,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )

    async def say(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str,
                  keyboard: InlineKeyboardMarkup | None = None) -> None:
        """Send adapter text (already safe plain text), escaped and split like any reply."""
        chunks = split_lines([html.escape(line, quote=False) for line in text.split("\n")])
        messages = [Rendered(chunk) for chunk in chunks]
        if keyboard is not None and messages:
            messages[-1] = Rendered(messages[-1].text, keyboard)
        await self.send(context, chat_id, messages)

    async def dialog(self, update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> list[Reply]:
        """One turn of the dialog: the text as an Inbound to the engine, its replies sent back."""
        chat, user = update.effective_chat, update.effective_user
        assert chat is not None
        message = update.message
        inbound = Inbound(
            channel=CHANNEL,
            sender=str(chat.id),
            text=text,
            received_at=message.date if message is not None else dt.datetime.now(dt.UTC),
            message_id=str(update.update_id),
            is_staff=self.is_staff(user),
        )
        try:
            replies = await asyncio.to_thread(self.guidebot.engine.handle, inbound)
        except Exception as error:
            raise EngineFailed(type(error).__name__) from error
        await self.send(context, chat.id, render_replies(replies))
        return replies

    # -- citizens --------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: the welcome and what guidebot can do (the engine's words)."""
        await self.dialog(update, context, "/start")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: how to ask; staff also get their commands."""
        await self.dialog(update, context, "/help")
        if self.is_staff(update.effective_user) and update.effective_chat is not None:
            await self.say(context, update.effective_chat.id, STAFF_HELP)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Free text: a question, a choice number, a case number, 订阅/退订 … — all for the engine."""
        assert update.message is not None
        await self.dialog(update, context, update.message.text or "")

    async def command_for_dialog(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unsubscribe, /stop …: commands the dialog understands as typed words (退订)."""
        assert update.message is not None
        command, _, rest = (update.message.text or "").partition(" ")
        await self.dialog(update, context, " ".join(filter(None, (command.split("@", 1)[0], rest))))

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, sticker, voice …: the engine answers an empty message by asking for words."""
        await self.dialog(update, context, "")

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command guidebot does not have."""
        assert update.effective_chat is not None
        await self.say(context, update.effective_chat.id, UNKNOWN_COMMAND)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A citizen's button: its data is the text they could have typed, so it goes to the engine.

        A numbered choice (clarification, rating …) is answered once: the question message is
        edited to show the choice and loses its buttons. Section shortcuts stay pressable.
        """
        query = update.callback_query
        assert query is not None
        await _answer_query(query)
        data = query.data or ""
        if not data:
            return
        await self.dialog(update, context, data)
        if data.isdigit() and isinstance(query.message, Message):
            await _mark_chosen(query, query.message, data)

    async def case_rating_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A 好差评 button under a case's final notice (`rate:<case_no>:<n>`, sent by the outbox).

        The press re-arms that case's rating and then goes to the engine as the digit, so it is
        recorded like a typed rating (subject "case"; a 差评 asks for a reason) — even when the
        citizen wrote something else between the notice and the press.
        """
        query, chat = update.callback_query, update.effective_chat
        assert query is not None
        await _answer_query(query)
        parsed = parse_case_rating(query.data)
        message = query.message
        if parsed is None or chat is None or not isinstance(message, Message):
            return
        # Clients choose what callback data they send; Telegram chooses the message. Only a button
        # really under this message counts (a forged case number, or a keyboard already used, does not).
        if not _has_button(message, query.data or ""):
            log.info("telegram: rating press for a button not under its message ignored")
            return
        case_no, number = parsed
        if not await asyncio.to_thread(arm_button_rating, self.guidebot.store, str(chat.id), case_no):
            await _edit(query, f"{message.text or ''}\n\n✅ 您已评价过本办件，感谢！")
            return
        await self.dialog(update, context, number)
        await _mark_chosen(query, message, query.data or "")

    # -- staff -----------------------------------------------------------------------------

    async def _staff_only(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        if self.is_staff(update.effective_user):
            return True
        if update.effective_chat is not None:
            await self.say(context, update.effective_chat.id, NOT_FOR_YOU)
        return False

    async def broadcast(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/broadcast TEXT: preview a notice to every subscriber, sent only after 确认发送."""
        if not await self._staff_only(update, context):
            return
        chat, user, message = update.effective_chat, update.effective_user, update.message
        assert chat is not None and user is not None and message is not None
        outbox = self.services.broadcast
        if outbox is None:
            await self.say(context, chat.id, NOT_AVAILABLE.format(what="群发"))
            return
        text = _command_argument(message)
        if not text:
            await self.say(context, chat.id, "用法：/broadcast 通知内容（可以多行）。发送前会先给您预览并请您确认。")
            return
        try:
            as_sent, lines = await asyncio.to_thread(outbox.preview, text)
        except ValueError as error:
            await self.say(context, chat.id, f"无法群发：{error}")
            return
        key = secrets.token_urlsafe(6)
        await asyncio.to_thread(self.drafts.add, user.id, key, text)
        keyboard = InlineKeyboardMarkup([[
            InlineKeyboardButton("确认发送", callback_data=f"staff:bc:ok:{key}"),
            InlineKeyboardButton("取消", callback_data=f"staff:bc:no:{key}"),
        ]])
        valid = f"确认后才会发送（{int(DRAFT_TTL // 60)} 分钟内有效）。"
        preview = "\n".join(["群发预览：", *lines, "", "内容：", as_sent, "", valid])
        await self.say(context, chat.id, preview, keyboard)

    async def broadcast_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """确认发送 / 取消 under a broadcast preview (staff only, and only the one who drafted it)."""
        query = update.callback_query
        assert query is not None
        user = update.effective_user
        if not self.is_staff(user) or user is None:
            await _answer_query(query, "仅供工作人员使用")
            return
        parts = (query.data or "").split(":")
        action, key = (parts[2], parts[3]) if len(parts) == 4 else ("", "")
        # Taken atomically: of two presses (here or on another process) only one finds the draft.
        draft = await asyncio.to_thread(self.drafts.take, user.id, key) if key else None
        if draft is None:  # expired, already confirmed or cancelled, or drafted by someone else
            await _answer_query(query, "这条预览已失效，请重新发送 /broadcast")
            await _edit(query, "（预览已失效，请重新发送 /broadcast）")
            return
        outbox = self.services.broadcast
        if action != "ok" or outbox is None:
            await _answer_query(query, "已取消")
            await _edit(query, "已取消群发，没有发送。")
            return
        await _answer_query(query, "已提交")
        try:
            queued = await asyncio.to_thread(outbox.send, draft.text, f"telegram:{user.id}")
        except ValueError as error:
            await _edit(query, f"无法群发：{error}")
            return
        await _edit(query, f"已提交群发：{queued} 位订阅者，将按发送速率陆续送达（免打扰时段 21:00–08:00 内顺延）。")

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stats [DAYS]: questions, unanswered questions, ratings, on-time rate, outbox (default 7 days)."""
        if not await self._staff_only(update, context):
            return
        chat, message = update.effective_chat, update.message
        assert chat is not None and message is not None
        if self.services.stats is None:
            await self.say(context, chat.id, NOT_AVAILABLE.format(what="统计"))
            return
        argument = _command_argument(message)
        days = min(int(argument), 366) if argument.isdigit() and int(argument) > 0 else 7
        lines = await asyncio.to_thread(self.services.stats, days)
        await self.say(context, chat.id, "\n".join(lines))

    async def unanswered(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unanswered [N]: the questions asked most often that guidebot could not answer."""
        if not await self._staff_only(update, context):
            return
        chat, message = update.effective_chat, update.message
        assert chat is not None and message is not None
        top = getattr(self.guidebot.store, "top_unanswered", None)
        if top is None:
            await self.say(context, chat.id, "未能回答的问题需要数据库记录，当前运行方式没有保存。")
            return
        argument = _command_argument(message)
        limit = min(int(argument), 50) if argument.isdigit() and int(argument) > 0 else 10
        questions = await asyncio.to_thread(top, limit)
        if not questions:
            await self.say(context, chat.id, "目前没有未能回答的问题。")
            return
        lines = [f"最常见的未能回答的问题（前 {len(questions)} 条）："]
        lines += [f"{number}. {question.text}（{question.count} 次，最近 {question.last_asked:%m-%d %H:%M}）"
                  for number, question in enumerate(questions, 1)]
        await self.say(context, chat.id, "\n".join(lines))

    async def case(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/case NUMBER: one case with its history, the applicant's name masked."""
        if not await self._staff_only(update, context):
            return
        chat, message = update.effective_chat, update.message
        assert chat is not None and message is not None
        number = _command_argument(message)
        if not number:
            await self.say(context, chat.id, "用法：/case 办件编号")
            return
        lines = await asyncio.to_thread(self._case_lines, number)
        await self.say(context, chat.id, "\n".join(lines))

    def _case_lines(self, number: str) -> list[str]:
        from guidebot.store.db import Store

        store = self.guidebot.store
        if not isinstance(store, Store):
            return ["办件查询需要数据库，当前运行方式没有保存办件。"]
        from guidebot.cases.lookup import build_case_view, render_case_view
        from guidebot.cases.staff import get_case
        from guidebot.store.db import now

        record = get_case(store, number)
        if record is None:
            return [f"没有办件编号为 {number[:40]} 的办件。"]
        catalog = self.guidebot.catalog

        view = build_case_view(record.case, record.events, catalog.item_name, catalog.promised_days, now().date())
        view = replace(view, applicant=mask_name(view.applicant))
        return render_case_view(view, history=True)

    # -- errors ----------------------------------------------------------------------------

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log every failure (masked); an engine failure is redelivered (webhook) or apologised for."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if isinstance(error, EngineFailed):
            log.error("dialog engine failed on telegram update %s", update_id, exc_info=error.__cause__ or error)
            if self.redeliverable and update_id is not None:
                self.failed_updates.add(update_id)
            elif isinstance(update, Update) and update.effective_chat is not None:
                try:
                    await self.say(context, update.effective_chat.id, APOLOGY)
                except TelegramError:
                    log.warning("could not send the apology for update %s", update_id)
            return
        if isinstance(error, Forbidden):
            log.info("telegram update %s: the user blocked the bot before the reply", update_id)
            return
        log.error("telegram update %s failed", update_id, exc_info=error)


def _command_argument(message: Message) -> str:
    """What follows `/command` (and `@botname`) in a message, newlines kept."""
    text = message.text or ""
    entity = next((e for e in message.entities if e.type == "bot_command" and e.offset == 0), None)
    rest = text[entity.length:] if entity is not None else text.partition(" ")[2]
    return rest.strip()


async def _answer_query(query: CallbackQuery, text: str | None = None) -> None:
    try:
        await query.answer(text)
    except BadRequest:  # too old (a redelivered update) or already answered
        log.debug("callback query %s could not be answered", query.id)


async def _edit(query: CallbackQuery, text: str) -> None:
    try:
        await query.edit_message_text(html.escape(text, quote=False), parse_mode=ParseMode.HTML, reply_markup=None)
    except BadRequest:
        log.debug("callback message could not be edited")


def _has_button(message: Message, data: str) -> bool:
    markup = message.reply_markup
    return markup is not None and any(button.callback_data == data for row in markup.inline_keyboard
                                      for button in row)


async def _mark_chosen(query: CallbackQuery, message: Message, data: str) -> None:
    label = data
    if message.reply_markup is not None:
        for row in message.reply_markup.inline_keyboard:
            for button in row:
                if button.callback_data == data:
                    label = button.text
    try:
        await query.edit_message_text(
            f"{message.text_html}\n\n✅ 已选择：{html.escape(label, quote=False)}",
            parse_mode=ParseMode.HTML,
            reply_markup=None,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    except BadRequest:  # not modified (pressed twice), too long, or gone
        log.debug("chosen option could not be marked on the message")


# ----------------------------------------------------------------------------- the one registration list


def add_handlers(app: Application[Any, Any, Any, Any, Any, Any], h: TelegramHandlers) -> None:
    """The ONE place every Telegram handler is registered (first match wins)."""
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE & private
    app.add_handlers([
        # citizens
        CommandHandler("start", h.start, filters=new_message),
        CommandHandler("help", h.help, filters=new_message),
        CommandHandler(DIALOG_COMMANDS, h.command_for_dialog, filters=new_message),
        # staff (everyone else is told politely it is not for them)
        CommandHandler("broadcast", h.broadcast, filters=new_message),
        CommandHandler("stats", h.stats, filters=new_message),
        CommandHandler("unanswered", h.unanswered, filters=new_message),
        CommandHandler("case", h.case, filters=new_message),
        # buttons: staff confirmations, case ratings from the outbox, then every citizen button (its
        # data is typed text)
        CallbackQueryHandler(h.broadcast_button, pattern=r"^staff:bc:"),
        CallbackQueryHandler(h.case_rating_button, pattern=CASE_RATING_PATTERN),
        CallbackQueryHandler(h.button),
        # everything else a citizen sends
        MessageHandler(new_message & filters.COMMAND, h.unknown_command),
        MessageHandler(new_message & filters.TEXT, h.text),
        MessageHandler(new_message, h.not_text),
    ])
    app.add_error_handler(h.error)


def build_application(bot: Guidebot, config: TelegramConfig | None = None, *, webhook: bool = False,
                      services: StaffServices | None = None) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB application for `bot`: polling by default, or with no updater for a webhook.

    Replies go through PTB's AIORateLimiter (30/s overall, 20/min per group, 429 retried twice);
    bulk sends use the outbox's `TelegramSender`, which has its own limits.
    """
    config = config or TelegramConfig.load(bot.settings)
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(config.base_file_url)
        .rate_limiter(AIORateLimiter(overall_max_rate=30, overall_time_period=1,
                                     group_max_rate=20, group_time_period=60, max_retries=2))
        .concurrent_updates(False)
    )
    if webhook:
        builder = builder.updater(None)
    app = builder.build()
    handlers = TelegramHandlers(bot, config, services or staff_services(bot), redeliverable=webhook)
    app.bot_data[HANDLERS_KEY] = handlers
    add_handlers(app, handlers)
    return app


def handlers_of(app: Application[Any, Any, Any, Any, Any, Any]) -> TelegramHandlers:
    handlers: TelegramHandlers = app.bot_data[HANDLERS_KEY]
    return handlers


async def check_token(config: TelegramConfig) -> str:
    """Ask the Bot API who the token belongs to (getMe); returns the bot's @username.

    Raises `telegram.error.InvalidToken` (rejected) or `NetworkError` (unreachable) before any
    polling starts, so the command can say so in one line instead of PTB's retry-loop traceback.
    """
    async with Bot(config.token, base_url=config.base_url, base_file_url=config.base_file_url) as probe:
        return probe.username


def run_polling(bot: Guidebot, config: TelegramConfig, *, drop_pending_updates: bool = False) -> None:
    """Long polling until Ctrl-C / SIGTERM (getMe, deleteWebhook, then getUpdates in a loop)."""
    username = asyncio.run(check_token(config))
    log.info("guidebot telegram: @%s", username)
    app = build_application(bot, config)
    log.info("guidebot telegram: long polling via %s", urlsplit(config.base_url).netloc)
    app.run_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=drop_pending_updates)
