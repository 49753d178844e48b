"""The Telegram channel's settings: the bot token, the Bot API server, staff ids and the webhook,
validated once at start so that a missing or malformed value is a clear error, never a traceback;
and the log masking every Telegram process installs (tokens and personal data out of the logs)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from guidebot.privacy import MaskingFilter
from guidebot.settings import PREFIX, Settings, SettingsError, read_env_file

__all__ = ["DEFAULT_BASE_URL", "TelegramConfig", "install_log_masking", "normalize_base_url", "validate_token"]

DEFAULT_BASE_URL = "https://api.telegram.org/bot"

# What @BotFather hands out: the bot's numeric id, a colon, then a secret of 35 url-safe characters.
# At least 30 secret characters, so every token accepted here is also redacted by MaskingFilter.
_TOKEN_RE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{30,100}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def validate_token(token: str) -> str:
    """The token if it looks like one @BotFather issues; a clear `SettingsError` otherwise.

    The message never repeats the token: it ends up in terminals and tickets.
    """
    token = token.strip()
    if not token:
        raise SettingsError(
            f"{PREFIX}TELEGRAM_TOKEN is not set. 请先在 Telegram 里找 @BotFather 发送 /newbot 创建机器人，"
            f"再把它给出的令牌写入环境变量或 .env：{PREFIX}TELEGRAM_TOKEN=123456789:AA…"
        )
    if not _TOKEN_RE.fullmatch(token):
        raise SettingsError(
            f"{PREFIX}TELEGRAM_TOKEN is malformed (expected the form 123456789:AA… that @BotFather gives: "
            "digits, a colon, then 30 or more letters, digits, '_' or '-'). 请核对令牌是否完整、没有多余的空格或引号。"
        )
    return token


def normalize_base_url(base_url: str) -> str:
    base_url = (base_url or DEFAULT_BASE_URL).strip()
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"{PREFIX}TELEGRAM_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL} "
            "(or http://127.0.0.1:8081/bot for a self-hosted Bot API server)"
        )
    if parts.path in ("", "/"):
        base_url = base_url.rstrip("/") + "/bot"  # a self-hosted server given as host:port only
    return base_url


@dataclass(frozen=True)
class TelegramConfig:
    """Everything the Telegram channel needs, validated once at start."""

    token: str
    base_url: str = DEFAULT_BASE_URL
    staff_ids: frozenset[int] = frozenset()
    webhook_url: str = ""  # the public HTTPS URL Telegram posts to; empty: do not call setWebhook
    webhook_secret: str = ""

    @property
    def base_file_url(self) -> str:
        if self.base_url.endswith("/bot"):
            return self.base_url[: -len("bot")] + "file/bot"
        return self.base_url.replace("/bot", "/file/bot", 1)

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None,
             env_file: Path | None = None) -> TelegramConfig:
        """From `Settings` plus the webhook variables (environment, then `.env`):

        - `GUIDEBOT_TELEGRAM_WEBHOOK_URL`: the public URL of `/telegram/webhook` behind the reverse
          proxy; when set, `guidebot serve` registers it with setWebhook at start.
        - `GUIDEBOT_TELEGRAM_WEBHOOK_SECRET`: the secret-token header value (1–256 of A-Z a-z 0-9 _ -);
          by default derived from the token, so every process of one deployment agrees on it.
        """
        env = dict(read_env_file(env_file or Path(".env")))
        env.update(os.environ if environ is None else environ)
        token = validate_token(settings.telegram_token)
        webhook_url = env.get(PREFIX + "TELEGRAM_WEBHOOK_URL", "").strip()
        if webhook_url and (urlsplit(webhook_url).scheme not in ("http", "https") or not urlsplit(webhook_url).netloc):
            raise SettingsError(f"{PREFIX}TELEGRAM_WEBHOOK_URL must be the public https:// URL of /telegram/webhook")
        secret = env.get(PREFIX + "TELEGRAM_WEBHOOK_SECRET", "").strip()
        if secret and not _SECRET_RE.fullmatch(secret):
            raise SettingsError(f"{PREFIX}TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if not secret:
            secret = hmac.new(token.encode(), b"guidebot telegram webhook", hashlib.sha256).hexdigest()
        return cls(
            token=token,
            base_url=normalize_base_url(settings.telegram_base_url),
            staff_ids=frozenset(settings.staff_telegram_ids),
            webhook_url=webhook_url,
            webhook_secret=secret,
        )


def install_log_masking() -> None:
    """Mask tokens and personal data in every log record, whoever logs it.

    Adds `MaskingFilter` to the handlers of the root logger (creating a plain stderr handler at
    INFO when there is none) and of uvicorn's loggers, and keeps httpx — which logs every request
    URL, token included — at WARNING.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)  # other libraries: warnings and errors only
        for ours in ("guidebot", "telegram.ext.Application"):
            logging.getLogger(ours).setLevel(logging.INFO)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
                handler.addFilter(MaskingFilter())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
