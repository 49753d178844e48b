"""A dialog `Reply` as Telegram messages: HTML text plus inline buttons, split at Telegram's limit.

- Everything the citizen or the catalog wrote is HTML-escaped; the only markup is what this module
  adds (`<a href>` for a `Link`).
- `Choices` become inline buttons whose `callback_data` is exactly the text the citizen could have
  typed (the number of a choice, or a section word such as 材料), so a press goes through the same
  `DialogEngine.handle` path as a typed reply. Numbered choices get one button per row; shortcuts
  (材料 · 收费 · 时限 …) share rows. A reply too long for Telegram's 64-byte `callback_data` is
  listed in the text for typing instead of getting a button.
- A message longer than 4,096 characters is split on line boundaries (a single longer line is cut
  between characters, never inside an HTML entity or tag); the buttons go with the last part.
  Lengths are counted in UTF-16 code units on the HTML source, which is never shorter than what
  Telegram counts after parsing, so a part never exceeds the limit.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from guidebot.dialog.replies import Choices, Link, Reply, Text

__all__ = [
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_MESSAGE_LENGTH",
    "Rendered",
    "render_replies",
    "render_reply",
    "split_lines",
    "telegram_length",
]

MAX_MESSAGE_LENGTH = 4096  # telegram.constants.MessageLimit.MAX_TEXT_LENGTH
MAX_CALLBACK_DATA_BYTES = 64  # telegram.constants.InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
SHORTCUTS_PER_ROW = 5
BUTTON_LABEL_CHARS = 30  # a longer label is shortened on the button and listed in full in the text
LONG_LABELS_LISTED = 20  # numbered labels longer than this are also listed in the message text


@dataclass(frozen=True)
class Rendered:
    """One Telegram message: HTML text and, optionally, its inline keyboard."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _fits_callback(data: str) -> bool:
    return 0 < len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES


def _short(label: str) -> str:
    return label if len(label) <= BUTTON_LABEL_CHARS else label[: BUTTON_LABEL_CHARS - 1] + "…"


def _link_html(link: Link) -> str:
    scheme = urlsplit(link.url.strip()).scheme.lower()
    if scheme in ("http", "https", "tg"):
        return f'<a href="{html.escape(link.url.strip(), quote=True)}">{_escape(link.label or link.url)}</a>'
    # Not a link Telegram would open: show it as text rather than as a broken anchor.
    return _escape(f"{link.label}：{link.url}" if link.label else link.url)


def _choices(part: Choices) -> tuple[list[str], list[list[InlineKeyboardButton]]]:
    """The text lines and button rows for one `Choices`."""
    lines = [_escape(part.prompt)] if part.prompt else []
    rows: list[list[InlineKeyboardButton]] = []
    if part.numbered:
        list_in_text = any(len(option.label) > LONG_LABELS_LISTED for option in part.options)
        for number, option in enumerate(part.options, 1):
            if _fits_callback(option.reply):
                rows.append([InlineKeyboardButton(f"{number}. {_short(option.label)}", callback_data=option.reply)])
                if list_in_text:
                    lines.append(_escape(f"{number}. {option.label}"))
            else:
                lines.append(_escape(f"{number}. {option.label}（回复“{option.reply}”）"))
        return lines, rows
    row: list[InlineKeyboardButton] = []
    typed: list[str] = []
    for option in part.options:
        if _fits_callback(option.reply):
            row.append(InlineKeyboardButton(_short(option.label), callback_data=option.reply))
            if len(row) == SHORTCUTS_PER_ROW:
                rows.append(row)
                row = []
        else:
            typed.append(f"{option.label}（回复“{option.reply}”）")
    if row:
        rows.append(row)
    if typed:
        lines.append(_escape(" · ".join(typed)))
    return lines, rows


def render_reply(reply: Reply, limit: int = MAX_MESSAGE_LENGTH) -> list[Rendered]:
    """One `Reply` as one or more messages (more only when it is longer than `limit`)."""
    lines: list[str] = []
    rows: list[list[InlineKeyboardButton]] = []
    for part in reply.parts:
        if isinstance(part, Text):
            lines.extend(_escape(line) for line in part.text.split("\n"))
        elif isinstance(part, Link):
            lines.append(_link_html(part))
        else:
            choice_lines, choice_rows = _choices(part)
            lines.extend(choice_lines)
            rows.extend(choice_rows)
    chunks = split_lines(lines, limit)
    if not chunks:
        if not rows:
            return []
        chunks = ["请选择："]  # Telegram needs some text under a keyboard
    keyboard = InlineKeyboardMarkup(rows) if rows else None
    return [Rendered(chunk) for chunk in chunks[:-1]] + [Rendered(chunks[-1], keyboard)]


def render_replies(replies: Iterable[Reply], limit: int = MAX_MESSAGE_LENGTH) -> list[Rendered]:
    """Every reply the engine returned, in order, as Telegram messages."""
    return [message for reply in replies for message in render_reply(reply, limit)]


def split_lines(lines: Sequence[str], limit: int = MAX_MESSAGE_LENGTH, *, markup: bool = True) -> list[str]:
    """Pack lines into messages of at most `limit` characters, breaking only between lines.

    Blank lines at the edges of a part are dropped; a line longer than `limit` on its own is cut
    into pieces (see :func:`_cut_line`; with `markup=False` the lines are plain text and are cut
    between any two characters).
    """
    pieces: list[str] = []
    for line in lines:
        if telegram_length(line) <= limit:
            pieces.append(line)
        else:
            pieces.extend(_cut_line(line, limit) if markup else _pack(list(line), limit))
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        extra = telegram_length(piece) + (1 if current else 0)
        if current and size + extra > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
            extra = telegram_length(piece)
        if not current and not piece.strip():
            continue  # no part starts with a blank line
        current.append(piece)
        size += extra
    if current:
        chunks.append("\n".join(current))
    return [chunk.strip("\n") for chunk in chunks if chunk.strip()]


def _cut_line(line: str, limit: int) -> list[str]:
    """Cut one over-long HTML line into pieces of at most `limit`, never inside `&…;` or `<…>`.

    Only text produced by this module reaches here: escaped text and whole `<a …>…</a>` anchors.
    An anchor is kept whole when it fits; otherwise (a link longer than a message) it is cut as
    text after dropping the markup.
    """
    tokens: list[str] = []
    i = 0
    while i < len(line):
        if line.startswith("<a ", i):
            end = line.find("</a>", i)
            anchor = line[i : end + 4] if end != -1 else line[i:]
            if telegram_length(anchor) <= limit:
                tokens.append(anchor)
            else:
                tokens.extend(_escape(ch) for ch in html.unescape(_strip_tags(anchor)))
            i += len(anchor)
        elif line[i] == "&":
            end = line.find(";", i)
            end = i if end == -1 or end - i > 10 else end
            tokens.append(line[i : end + 1])
            i = end + 1
        else:
            tokens.append(line[i])
            i += 1
    return _pack(tokens, limit)


def _pack(tokens: Sequence[str], limit: int) -> list[str]:
    """Concatenate tokens into pieces of at most `limit` (a token is never divided)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for token in tokens:
        width = telegram_length(token)
        if current and size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(token)
        size += width
    if current:
        pieces.append("".join(current))
    return pieces


def _strip_tags(markup: str) -> str:
    out: list[str] = []
    inside = False
    for ch in markup:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)
