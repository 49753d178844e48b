"""Replies as SMS: plain text, "回复1 …" menus, segments counted, long answers paged behind "回复 更多".

One SMS holds 160 GSM-7 characters or 70 UCS-2 characters; a longer text goes as concatenated
parts of 153 / 67 (the 6-byte UDH takes the rest). A single Chinese character makes the whole
text UCS-2. The gateway does the splitting; this module decides how much to send at once: at
most ``max_segments`` parts, the rest kept as further pages the citizen asks for with "更多".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from guidebot.dialog.replies import Choices, Link, Reply, Text

__all__ = [
    "MORE_HINT",
    "Segments",
    "count_segments",
    "is_gsm7",
    "paginate",
    "render_replies",
    "render_reply",
    "sanitize",
]

# GSM 03.38 default alphabet and the characters of its extension table (each costs 2 septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€")

UCS2_SINGLE, UCS2_PART = 70, 67
GSM_SINGLE, GSM_PART = 160, 153

MORE_HINT = "\n回复 更多 看后续"
MAX_PAGES = 20
_BREAK_AFTER = "。；！？!?;"
_SOFT_BREAK_AFTER = "，、,：:） )"


@dataclass(frozen=True)
class Segments:
    """How a text travels as SMS: its encoding, its length in that encoding's units, its parts."""

    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int

    @property
    def per_part(self) -> int:
        if self.encoding == "gsm7":
            return GSM_SINGLE if self.parts <= 1 else GSM_PART
        return UCS2_SINGLE if self.parts <= 1 else UCS2_PART


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM-7 alphabet (basic or extension table)."""
    return all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text)


def _units(text: str, gsm: bool) -> int:
    if gsm:
        return sum(2 if c in _GSM_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-be")) // 2


def count_segments(text: str) -> Segments:
    """The parts a gateway splits ``text`` into: ≤160/153 GSM-7 or ≤70/67 UCS-2 per part."""
    gsm = is_gsm7(text)
    units = _units(text, gsm)
    single, part = (GSM_SINGLE, GSM_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    parts = 1 if units <= single else -(-units // part)
    return Segments("gsm7" if gsm else "ucs2", units, parts)


def capacity(max_segments: int, gsm: bool) -> int:
    """How many units fit into ``max_segments`` parts."""
    if gsm:
        return GSM_SINGLE if max_segments == 1 else GSM_PART * max_segments
    return UCS2_SINGLE if max_segments == 1 else UCS2_PART * max_segments


# -- plain text ------------------------------------------------------------------------------

_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{1,80})\]\((https?://[^)\s]+)\)")
_HTML_BREAK = re.compile(r"<\s*(br|/p|p)\s*/?\s*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?\s*(b|i|u|em|strong|code|pre|a|span|p|s)(\s[^<>]*)?>", re.IGNORECASE)
# Markup around words only: masked numbers (138****5678, 张*) keep their stars.
_EMPHASIS = re.compile(r"(?<![*\w])\*\*(?=[^*\s])([^*\n]+?)(?<=[^*\s])\*\*(?![*\w])"
                       r"|(?<!\w)__(?=\S)([^_\n]+?)(?<=\S)__(?!\w)|`+([^`\n]+)`+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_SPACES = re.compile(r"[ \u3000\u00a0]{2,}")


def sanitize(text: str) -> str:
    """Plain SMS text: no markup, no emoji or other characters UCS-2 cannot carry, no blank lines."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _MARKDOWN_LINK.sub(r"\1：\2", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = _EMPHASIS.sub(lambda m: next(group for group in m.groups() if group is not None), text)
    text = _HEADING.sub("", text)
    kept = []
    for c in text:
        if ord(c) > 0xFFFF:  # emoji and rare CJK extensions: not in UCS-2
            continue
        category = unicodedata.category(c)
        if c != "\n" and category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        if category == "Mn" and 0xFE00 <= ord(c) <= 0xFE0F:  # variation selectors
            continue
        kept.append(c)
    text = _SPACES.sub(" ", "".join(kept))
    lines = (line.strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_REPLY_DIGIT_PROMPT = re.compile(r"[，,。]?\s*回复数字即可[：:]?\s*$")


def render_part(part: Text | Link | Choices) -> str:
    if isinstance(part, Text):
        return sanitize(part.text)
    if isinstance(part, Link):
        return sanitize(f"{part.label}：{part.url}")
    if part.numbered:
        prompt = _REPLY_DIGIT_PROMPT.sub("", part.prompt).strip()
        lines = [prompt] if prompt else []
        lines += [f"回复{choice.reply} {choice.label}" for choice in part.options]
        return sanitize("\n".join(lines))
    prompt = part.prompt.strip().rstrip("：:").strip()
    words = "／".join(choice.reply for choice in part.options)
    return sanitize(f"{prompt}，请回复：{words}" if prompt else f"请回复：{words}")


def render_reply(reply: Reply) -> str:
    """One reply as SMS text: text as is, links as "label：url", choices as "回复1 …" lines."""
    return "\n".join(chunk for chunk in (render_part(part) for part in reply.parts) if chunk)


def render_replies(replies: Iterable[Reply]) -> str:
    return "\n".join(chunk for chunk in (render_reply(reply) for reply in replies) if chunk)


# -- pages -----------------------------------------------------------------------------------


def _cut(text: str, room: int, gsm: bool) -> int:
    """Where to end a page of at most ``room`` units: at a line end, else a sentence end, else
    a comma, else exactly at the limit."""
    used, end = 0, 0
    for index, char in enumerate(text):
        used += _units(char, gsm)
        if used > room:
            break
        end = index + 1
    if end >= len(text):
        return len(text)
    floor = max(1, int(end * 0.6))
    for breaks in ("\n", _BREAK_AFTER, _SOFT_BREAK_AFTER):
        best = max((i + 1 for i in range(floor - 1, end) if text[i] in breaks), default=0)
        if best >= floor:
            return best
    return max(end, 1)


def paginate(text: str, max_segments: int = 3, hint: str = MORE_HINT) -> list[str]:
    """Pages of at most ``max_segments`` parts each; every page but the last ends with ``hint``.

    The encoding is decided once for the whole text, so every page is counted the way the
    gateway will send it. At most MAX_PAGES pages; a longer text is cut short on the last page.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text).parts <= max_segments:
        return [text] if text else []
    gsm = is_gsm7(text) and is_gsm7(hint)
    limit = capacity(max_segments, gsm)
    room = limit - _units(hint, gsm)
    if room < 10:
        raise ValueError("the 更多 hint leaves no room for text in one page")
    pages: list[str] = []
    rest = text
    while rest:
        if _units(rest, gsm) <= limit or len(pages) == MAX_PAGES - 1:
            if _units(rest, gsm) > limit:
                rest = rest[: _cut(rest, limit - 1, gsm)].rstrip() + "…"
            pages.append(rest)
            break
        end = _cut(rest, room, gsm)
        pages.append(rest[:end].rstrip("\n ") + hint)
        rest = rest[end:].lstrip("\n ")
    return pages
