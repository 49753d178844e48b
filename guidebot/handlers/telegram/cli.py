"""`guidebot telegram`: run the Telegram bot by long polling (development, small centers).

For a webhook behind a reverse proxy use `guidebot serve` instead (see README, "Telegram").
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from guidebot.settings import Settings

__all__ = ["cmd_telegram", "register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("telegram", help="Telegram 机器人：长轮询运行 (run the Telegram bot by polling)")
    parser.add_argument("--drop-pending-updates", action="store_true",
                        help="ignore the messages that arrived while the bot was not running")
    parser.set_defaults(handler=cmd_telegram)


def cmd_telegram(args: argparse.Namespace) -> int:
    """Validate the token, build guidebot, then poll Telegram until Ctrl-C or SIGTERM."""
    from telegram.error import InvalidToken, NetworkError

    from guidebot.app import build
    from guidebot.handlers.telegram.bot import run_polling
    from guidebot.handlers.telegram.config import TelegramConfig, install_log_masking

    settings = Settings.load()
    config = TelegramConfig.load(settings)  # a missing or malformed token: SettingsError, a clear message
    install_log_masking()
    bot = build(settings)
    try:
        run_polling(bot, config, drop_pending_updates=args.drop_pending_updates)
    except InvalidToken:
        print("Telegram 拒绝了 GUIDEBOT_TELEGRAM_TOKEN（令牌错误或已被撤销）。请在 @BotFather 里用 /mybots → API Token "
              "核对或重新生成令牌。 / The Bot API rejected GUIDEBOT_TELEGRAM_TOKEN.", file=sys.stderr)
        return 2
    except NetworkError as error:
        host = urlsplit(config.base_url).netloc
        print(f"无法连接 Telegram Bot API（{host}）：{type(error).__name__}。请检查网络、代理或 "
              "GUIDEBOT_TELEGRAM_BASE_URL。 / Cannot reach the Bot API.", file=sys.stderr)
        return 1
    return 0
