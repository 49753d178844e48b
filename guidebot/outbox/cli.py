"""Staff commands for everything guidebot sends on its own; ``guidebot/cli.py`` calls :func:`register`.

    guidebot broadcast --text TEXT [--sms-text SHORT] [--department D] [--item CODE] [--at TIME] [--dry-run]
    guidebot outbox status
    guidebot outbox run [--once] [--quiet-hours 21:00-08:00]
    guidebot stats [--since DATE]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
from typing import Any

from guidebot.cli_args import parse_time
from guidebot.settings import Settings

__all__ = ["cmd_broadcast", "cmd_outbox_run", "cmd_outbox_status", "cmd_stats", "register"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    broadcast = subparsers.add_parser("broadcast", help="群发通知给订阅者（默认避开 21:00–08:00）")
    broadcast.add_argument("--text", required=True, help="通知内容")
    broadcast.add_argument("--sms-text", default=None,
                           help="短信订阅者收到的较短内容（默认同 --text）；模板短信网关（aliyun）最多 35 字")
    broadcast.add_argument("--department", default=None, help="只发给订阅了该部门（或全部）通知的人")
    broadcast.add_argument("--item", default=None, help="只发给订阅了该事项（编码）、其部门或全部通知的人")
    broadcast.add_argument("--at", default=None, help="定时发送，如 2025-12-05 09:00（存于数据库，重启不丢）")
    broadcast.add_argument("--dry-run", action="store_true", help="只统计各渠道人数和短信条数，不发送")
    broadcast.add_argument("--by", default=None, help="操作人（默认当前系统用户）")
    broadcast.set_defaults(handler=cmd_broadcast, func=cmd_broadcast)

    outbox = subparsers.add_parser("outbox", help="发件箱：状态、运行发送进程")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    status = outbox_commands.add_parser("status", help="各群发的排队/已发/失败数")
    status.set_defaults(handler=cmd_outbox_status, func=cmd_outbox_status)
    run = outbox_commands.add_parser("run", help="运行发送进程（可多进程共用一个 PostgreSQL）")
    run.add_argument("--once", action="store_true", help="发完当前可发的就退出")
    run.add_argument("--quiet-hours", default=os.environ.get("GUIDEBOT_QUIET_HOURS", "21:00-08:00"),
                     help="免打扰时段，只发回复（默认 21:00-08:00；off 关闭）")
    run.set_defaults(handler=cmd_outbox_run, func=cmd_outbox_run)

    stats = subparsers.add_parser("stats", help="统计：提问、答不上来的问题、事项、好差评、按时办结率")
    stats.add_argument("--since", default=None, help="起始日期 YYYY-MM-DD")
    stats.set_defaults(handler=cmd_stats, func=cmd_stats)


def _open_store() -> Any:
    from guidebot.store.db import open_store

    return open_store(Settings.load().database_url)


def _catalog() -> Any:
    from guidebot.app import load_configured_catalog

    return load_configured_catalog(Settings.load())


def cmd_broadcast(args: argparse.Namespace) -> int:
    """Send (or schedule, or just count) a notice to the notice subscribers."""
    from guidebot.outbox.broadcast import create_broadcast, dry_run

    at = parse_time(args.at) if args.at else None
    department, item = args.department, args.item
    if item and not department:
        known = _catalog().get(item)
        if known is None:
            print(f"事项目录中没有编码为 {item} 的事项")
            return 1
        department = known.department or None
    signature = os.environ.get("GUIDEBOT_SMS_SIGNATURE", "").strip()
    store = _open_store()
    try:
        if args.dry_run:
            plan = dry_run(store, args.text, department, item, at, sms_signature=signature, sms_text=args.sms_text)
            print("试运行，未发送：")
        else:
            plan = create_broadcast(store, args.text, department, item, at, by=args.by or getpass.getuser(),
                                    sms_signature=signature, sms_text=args.sms_text)
            when = f"定时 {plan.send_at:%Y-%m-%d %H:%M}" if plan.scheduled else "已排队"
            print(f"群发 #{plan.broadcast_id}：{when}（免打扰时段 21:00–08:00 内顺延）")
    except ValueError as error:
        print(f"未发送：{error}")
        return 1
    finally:
        store.close()
    print("\n".join(plan.describe()))
    return 0


def cmd_outbox_status(args: argparse.Namespace) -> int:
    """Queued / sent / failed counts, overall and per broadcast."""
    from guidebot.outbox.broadcast import broadcast_report
    from guidebot.outbox.queue import counts_by_status

    store = _open_store()
    try:
        totals = counts_by_status(store)
        reports = broadcast_report(store)
    finally:
        store.close()
    print("发件箱：" + ("，".join(f"{status} {n}" for status, n in sorted(totals.items())) or "空"))
    for report in reports:
        counts = "，".join(f"{status} {n}" for status, n in sorted(report.by_status.items())) or "—"
        preview = report.text.replace("\n", " ")[:24]
        state = f"定时 {report.send_at:%m-%d %H:%M}" if report.status == "scheduled" else f"{report.recipients} 人"
        print(f"#{report.id} {report.created_at:%Y-%m-%d %H:%M} {state}：{counts}  「{preview}…」")
    return 0


def _senders(settings: Settings, store: Any) -> dict[str, Any]:
    """The channel senders that are configured (Telegram token, SMS gateway)."""
    senders: dict[str, Any] = {}
    if settings.telegram_token:
        from guidebot.handlers.telegram.config import TelegramConfig
        from guidebot.handlers.telegram.sender import TelegramSender

        # A malformed token is a clear SettingsError here, not an endless series of retries later.
        config = TelegramConfig.load(settings)
        # With the store the sender tells a rating invitation by its outbox row, not by its wording.
        senders["telegram"] = TelegramSender(config.token, config.base_url, store=store)
    if os.environ.get("GUIDEBOT_SMS_GATEWAY") or os.environ.get("GUIDEBOT_KANNEL_USER"):
        from guidebot.handlers.sms.routes import build_sender
        from guidebot.handlers.sms.settings import SmsSettings

        senders["sms"] = build_sender(SmsSettings.from_env(), store)
    return senders


def cmd_outbox_run(args: argparse.Namespace) -> int:
    """Run the dispatcher until Ctrl-C / SIGTERM (finishing the messages already started)."""
    from guidebot.outbox.dispatcher import Dispatcher, QuietHours
    from guidebot.outbox.notify import notify_all_cases

    settings = Settings.load()
    store = _open_store()
    try:
        senders = _senders(settings, store)
        if not senders:
            print("没有可用的发送渠道：请设置 GUIDEBOT_TELEGRAM_TOKEN 或短信网关（GUIDEBOT_SMS_GATEWAY）")
            return 2
        catalog = _catalog()
        dispatcher = Dispatcher(store, senders, quiet_hours=QuietHours.parse(args.quiet_hours))
        dispatcher.housekeeping.append(lambda: notify_all_cases(store, catalog.item_name))

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, dispatcher.stop)
            stats = await dispatcher.run(until_idle=args.once)
            print("本次发送：" + ("，".join(f"{s} {n}" for s, n in sorted(stats.by_status.items())) or "无"))

        print(f"发送进程 {dispatcher.worker_id} 已启动：{', '.join(senders)}")
        asyncio.run(main())
    finally:
        store.close()
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Questions, unanswered questions, items, ratings, on-time rate, working days to finish."""
    from guidebot.outbox.stats import collect_stats, render_stats

    since = parse_time(args.since) if args.since else None
    catalog = _catalog()
    store = _open_store()
    try:
        stats = collect_stats(store, since, catalog.promised_days)
    finally:
        store.close()
    print("\n".join(render_stats(stats, catalog.item_name)))
    return 0
