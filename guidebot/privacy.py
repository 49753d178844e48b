"""The one place where personal data is masked before it is shown or logged.

Rules (documented in docs/cases.md):

- mobile phone numbers keep the first 3 and last 4 digits: ``138****5678``;
- identity card numbers keep the first 3 and last 4 characters: ``110***********1234``;
- a person's name keeps its first character: ``张*``, ``欧***``;
- free text (log lines, the query log) has every mobile number and ID number inside it masked,
  and anything shaped like a Telegram bot token redacted.

Names inside free text cannot be recognised reliably, so code must never put a raw name into
a log message: mask it with :func:`mask_name` first.
"""

from __future__ import annotations

import logging
import re
import unicodedata

__all__ = [
    "MaskingFilter",
    "mask_id",
    "mask_name",
    "mask_phone",
    "mask_text",
]

_KEEP_HEAD = 3
_KEEP_TAIL = 4


def _mask_middle(value: str) -> str:
    """Keep 3 leading and 4 trailing characters; shorter values are starred completely
    except their last character at most, so a short value never shows in full."""
    if len(value) > _KEEP_HEAD + _KEEP_TAIL:
        hidden = len(value) - _KEEP_HEAD - _KEEP_TAIL
        return value[:_KEEP_HEAD] + "*" * hidden + value[-_KEEP_TAIL:]
    if len(value) <= 1:
        return "*" * len(value)
    return "*" * (len(value) - 1) + value[-1]


def mask_phone(phone: str) -> str:
    """Mask a phone number: ``"13812345678" -> "138****5678"``.

    Separators and a ``+86`` prefix are dropped first, so every spelling of one number masks to
    the same text.
    """
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return _mask_middle(digits)


def mask_id(id_number: str) -> str:
    """Mask an identity card number: ``"110101199001011234" -> "110***********1234"``."""
    cleaned = re.sub(r"\s", "", unicodedata.normalize("NFKC", id_number)).upper()
    return _mask_middle(cleaned)


def mask_name(name: str) -> str:
    """Mask a person's name keeping its first character: ``"张三" -> "张*"``, ``"欧阳娜娜" -> "欧***"``.

    A one-character name becomes ``"*"``: showing it would show the whole name.
    """
    stripped = name.strip()
    if len(stripped) <= 1:
        return "*" * len(stripped)
    return stripped[0] + "*" * (len(stripped) - 1)


# An 18-character resident ID (17 digits + digit or X) or an old 15-digit one, not part of a
# longer run of digits/letters.  Case numbers of that exact shape get masked too: over-masking
# a log line is the safe error.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
# A mainland mobile number, optionally with +86/86 and space or hyphen groupings
# (138 1234 5678, 138-1234-5678).
_MOBILE_RE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9])")
# A Telegram bot token: "<bot id>:<35-ish url-safe characters>".
_BOT_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]{30,}")


def mask_text(text: str) -> str:
    """Mask every phone number and ID number inside free text; redact bot tokens."""
    if not text:
        return text
    text = _BOT_TOKEN_RE.sub("[REDACTED-TOKEN]", text)
    text = _ID_RE.sub(lambda match: mask_id(match.group()), text)
    return _MOBILE_RE.sub(lambda match: mask_phone(match.group()), text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks personal data and secrets in every record it passes.

    Attach it to handlers (``handler.addFilter(MaskingFilter())``) so records from every library
    are covered.  The message is formatted once here and its arguments dropped, so the masked
    text is what every formatter sees; a formatted traceback is masked as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
